"""`leadroute evaluate` end to end on a real workspace: replay + estimates, stored runs, the CLI,
and the CRM dataset (no propensities: only the direct method, and the output says why)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadroute.cli import app
from pipelines.demo import build_demo
from pipelines.evaluate import evaluate, list_runs, load_run
from pipelines.ingest import ingest_file
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse
from tests.conftest import MAPPINGS, SHARED_DATA

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("ope") / "ws"
    build_demo(Settings(home=home).ensure(), n_leads=5_000, seed=3)
    return home


def test_evaluate_compares_policies_stores_and_reopens_the_run(demo_home: Path) -> None:
    settings = Settings(home=demo_home)
    messages: list[str] = []
    run = evaluate(settings, ["seed", "best_fit"], estimators=("dm", "ips", "dr"), folds=3, progress=messages.append)
    assert any("capacity enforced" in m for m in messages)
    payload = run.to_json()
    first, second = payload["policies"]
    assert (first["policy"], second["policy"]) == ("seed", "best_fit")
    for row in payload["policies"]:
        assert set(row["estimates"]) == {"dm", "ips", "dr"}
        for estimate in row["estimates"].values():
            assert estimate["valid"] and estimate["ci_low"] <= estimate["value"] <= estimate["ci_high"]
        assert {"effective_sample_size", "mean_weight", "max_weight", "support_deficit"} <= set(row["diagnostics"])
        assert row["diagnostics"]["share_excluded_not_matured"] > 0
        assert row["operational"]["n_leads"] > 0
        assert set(row["truth"]) == {"no_interference", "deployed"}
        assert row["revenue_per_lead"]["dr"]["value"] > 0
        assert row["expected_revenue"]["dr"]["value"] == pytest.approx(
            row["revenue_per_lead"]["dr"]["value"] * payload["n_leads"]
        )
        counts = row["expected_conversions"]["dr"]
        assert counts["value"] == pytest.approx(row["estimates"]["dr"]["value"] * payload["n_leads"])
    assert first["diff_vs_first"] == {} and set(second["diff_vs_first"]) == {"dm", "ips", "dr"}
    assert {s["segment"] for s in payload["segments"]} == {"team", "region", "score_tier", "source"}
    assert any("no interference" in a for a in payload["assumptions"])
    assert any("deployed" in n for n in payload["notes"])
    # Stored: listed, and reopened exactly as printed.
    runs = list_runs(settings)
    assert run.run_id in runs["run_id"].to_list()
    assert load_run(settings, run.run_id) == json.loads(json.dumps(payload, default=str))
    with pytest.raises(LookupError, match="no evaluation run"):
        load_run(settings, "E-missing")


def test_cli_evaluate_json_is_the_last_line(demo_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADROUTE_HOME", str(demo_home))
    args = ["evaluate", "--policy", "seed", "--policy", "territory", "--estimator", "dr", "--estimator", "snips"]
    result = runner.invoke(app, [*args, "--folds", "2", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    row = payload["policies"][1]
    assert set(row["estimates"]["dr"]) >= {"value", "ci_low", "ci_high"}
    assert set(row["diff_vs_first"]) == {"dr", "snips"} and "version" in row
    listed = runner.invoke(app, ["evaluate", "--list", "--json"])
    assert payload["run_id"] in listed.stdout
    shown = runner.invoke(app, ["evaluate", "--show", payload["run_id"], "--json"])
    assert json.loads(shown.stdout.strip().splitlines()[-1])["run_id"] == payload["run_id"]
    missing = runner.invoke(app, ["evaluate", "--json"])
    assert missing.exit_code != 0 and "--policy" in missing.output
    bad = runner.invoke(app, ["evaluate", "--policy", "seed", "--estimator", "magic"])
    assert bad.exit_code != 0 and "unknown 'magic'" in bad.output
    assert len(bad.output.strip().splitlines()) == 1


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared datasets not found at {SHARED_DATA}")
def test_crm_dataset_without_propensities_leaves_only_the_direct_method(settings: Settings) -> None:
    crm = SHARED_DATA / "crm_sales_opportunities"
    warehouse = Warehouse(settings.warehouse_path)
    ingest_file(warehouse, "accounts", crm / "accounts.csv", MAPPINGS / "crm_accounts.yaml")
    ingest_file(warehouse, "reps", crm / "sales_teams.csv", MAPPINGS / "crm_reps.yaml")
    ingest_file(warehouse, "leads", crm / "sales_pipeline.csv", MAPPINGS / "crm_pipeline.yaml")
    run = evaluate(settings, ["round_robin"], folds=2, revenue=False)
    assert run.comparison.available == ("dm",)
    payload = run.to_json()
    estimates = payload["policies"][0]["estimates"]
    assert estimates["dm"]["valid"] and 0 < estimates["dm"]["value"] < 1
    for name in ("ips", "snips", "dr", "sndr", "clipped_dr"):
        assert not estimates[name]["valid"] and estimates[name]["value"] is None
        assert "no logged propensities" in estimates[name]["reason"]
        assert "only the direct method (dm) is available" in estimates[name]["reason"]
    assert any("have no propensity" in n for n in payload["notes"])
    assert any("only the direct method" in line for line in run.lines())
