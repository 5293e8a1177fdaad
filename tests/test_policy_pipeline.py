"""The whole stage on a small demo workspace: register, list, show, diff, replay (CLI and library)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from leadroute.cli import app
from models.policy import Policy, RoutingState
from models.simulation import simulate_company
from pipelines.demo import build_demo, simulation_config
from pipelines.demo_policies import DEMO_POLICIES, register_demo_policies
from pipelines.policies import list_policies, load_roster, resolve
from pipelines.replay import TruthScorer, run_replay
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse

runner = CliRunner()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(home=tmp_path_factory.mktemp("policy") / "ws").ensure()
    build_demo(settings, n_leads=3000, seed=1)
    return settings


def test_demo_policies_register_once_and_replay_with_truth(workspace: Settings) -> None:
    first = register_demo_policies(workspace)
    again = register_demo_policies(workspace)
    assert [p.name for p in first] == list(DEMO_POLICIES)
    # (build_demo may already have registered them: either way, registering again changes nothing.)
    assert not any(p.created for p in again)
    assert [p.version for p in again] == [p.version for p in first] == [1] * len(DEMO_POLICIES)
    listed = list_policies(workspace)
    assert listed.height == len(DEMO_POLICIES)
    assert (workspace.policies_dir / "seed@v1.yaml").exists()

    values = {}
    for name in DEMO_POLICIES:
        result = run_replay(workspace, name)
        assert result.metrics.unrouted == 0
        assert result.metrics.n_leads == result.truth["n_leads"] > 2500
        assert result.decisions["propensity"].min() > 0
        values[name] = result.truth["expected_conversions"]
        logged = result.truth["logged_expected_conversions"]
    # The truth-informed best fit beats the legacy routing and pure round robin on the true value.
    assert values["best_fit"] > logged > values["round_robin"]


def test_replay_one_lead_at_a_time_equals_the_batch_on_the_demo(workspace: Settings) -> None:
    config = simulation_config(Warehouse(workspace.warehouse_path))
    assert config is not None
    company = simulate_company(config)
    leads = company.leads.head(600)
    policy = Policy(resolve(workspace, "seed").spec, load_roster(workspace), scorer=TruthScorer(company, leads))
    batch = policy.replay(leads, rng=np.random.default_rng(0)).decisions
    state = RoutingState(policy.roster.size)
    one = [policy.route_one(lead, state, np.random.default_rng(0)) for lead in leads.to_dicts()]
    assert [(d.team, d.rep_id) for d in one] == list(batch.select("team", "rep_id").iter_rows())
    assert {d.rule for d in one} == {"hot", "warm", "cold"}
    assert all(d.notify for d in one if d.rule in ("hot", "cold") and d.rep_id)


def test_cli_policy_commands_and_replay(workspace: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADROUTE_HOME", str(workspace.home))
    changed = tmp_path / "seed.yaml"
    text = resolve(workspace, "seed").text.replace("value: 80}", "value: 85}")
    changed.write_text(text, encoding="utf-8")

    validated = runner.invoke(app, ["policy", "validate", str(changed), "--json"])
    assert validated.exit_code == 0, validated.output
    assert json.loads(validated.stdout.strip().splitlines()[-1])["valid"] is True
    registered = runner.invoke(app, ["policy", "register", str(changed), "--json"])
    assert json.loads(registered.stdout.strip().splitlines()[-1])["version"] == 2
    diff = runner.invoke(app, ["policy", "diff", "seed@1", "seed@2", "--json"])
    assert json.loads(diff.stdout.strip().splitlines()[-1])["changes"] == [
        "rule 'hot' now applies when score is above 85 (was: score is above 80)"
    ]
    shown = runner.invoke(app, ["policy", "show", "seed"])
    assert "1. hot: when score is above 85 → team enterprise, notify the owner" in shown.stdout
    assert "seed@v2" in runner.invoke(app, ["policy", "list"]).stdout

    out = tmp_path / "decisions.parquet"
    replayed = runner.invoke(
        app, ["replay", "--policy", "seed@1", "--window", "2026-01-01..2026-03-31", "--out", str(out), "--json"]
    )
    assert replayed.exit_code == 0, replayed.output
    summary = json.loads(replayed.stdout.strip().splitlines()[-1])
    assert summary["metrics"]["unrouted"] == 0 and summary["version"] == 1
    decisions = pl.read_parquet(out)
    assert decisions.columns[:6] == ["lead_id", "team", "rep_id", "action", "propensity", "reasons"]
    assert decisions.height == summary["metrics"]["n_leads"]
    assert decisions["created_at"].dt.date().min() == date(2026, 1, 1)

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nrules:\n  - name: x\n    when: {field: country, op: '=', value: \"x'; DROP TABLE leads; --\"}\n"
        "    then: {team: queue}\nfallback: {team: queue}\n"
    )
    refused = runner.invoke(app, ["policy", "register", str(bad)])
    assert refused.exit_code == 1
    assert "looks like code or SQL" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    unknown = runner.invoke(app, ["replay", "--policy", "nope"])
    assert unknown.exit_code == 1 and "no policy 'nope'" in unknown.stderr
    window = runner.invoke(app, ["replay", "--policy", "seed", "--window", "March"])
    assert window.exit_code == 1 and "--window" in window.stderr
