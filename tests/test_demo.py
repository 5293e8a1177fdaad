"""The demo workspace: the simulated company through the real import path, checked against itself."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from models.simulation import SimulationConfig, export_files, simulate_company
from pipelines.demo import WorkspaceNotEmptyError, build_demo, simulation_config
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse, query_frame

KEYS = {
    "reps": "rep_id",
    "accounts": "account_id",
    "leads": "lead_id",
    "decisions": "decision_id",
    "outcomes": "event_id",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, SimulationConfig]:
    settings = Settings(home=tmp_path_factory.mktemp("demo") / "ws")
    result = build_demo(settings, n_leads=3_000, seed=11)
    return settings, result.config


def test_every_clean_record_loads_and_exactly_the_messy_ones_are_rejected(
    demo: tuple[Settings, SimulationConfig],
) -> None:
    settings, config = demo
    company = simulate_company(config)
    expected = export_files(company)["expected_rejects"]
    warehouse = Warehouse(settings.warehouse_path)
    with warehouse.connect() as con:
        counts = {entity: con.execute(f'SELECT count(*) FROM "{entity}"').fetchall()[0][0] for entity in KEYS}
        rejects = query_frame(con, "SELECT entity, raw, reason FROM rejects")
    assert counts == {
        "reps": company.reps.height,
        "accounts": company.accounts.height,
        "leads": company.leads.height,
        "decisions": company.decisions.height,
        "outcomes": company.outcomes.height,
    }
    assert rejects.height == expected.height
    for entity, key in KEYS.items():
        got = sorted(
            str(json.loads(raw).get(key)) for raw in rejects.filter(pl.col("entity") == entity)["raw"].to_list()
        )
        want = sorted(str(i) for i in expected.filter(pl.col("entity") == entity)["id"].to_list())
        assert got == want, entity


def test_the_warehouse_holds_exactly_the_simulated_history(demo: tuple[Settings, SimulationConfig]) -> None:
    settings, config = demo
    company = simulate_company(config)
    with Warehouse(settings.warehouse_path).connect() as con:
        leads = query_frame(
            con, "SELECT lead_id, created_at, employees, industry FROM leads ORDER BY created_at, lead_id"
        )
        decisions = query_frame(con, "SELECT lead_id, team, rep_id, propensity FROM decisions ORDER BY lead_id")
        converted = query_frame(con, "SELECT lead_id, value FROM outcomes WHERE event = 'converted' ORDER BY lead_id")
    want = company.leads.select("lead_id", "created_at", "employees", "industry").sort("created_at", "lead_id")
    assert leads.equals(want)
    sim_decisions = company.decisions.select("lead_id", "team", "rep_id", "propensity").sort("lead_id")
    assert decisions["propensity"].to_list() == pytest.approx(sim_decisions["propensity"].to_list(), rel=1e-12)
    assert decisions.select("lead_id", "team", "rep_id").equals(sim_decisions.select("lead_id", "team", "rep_id"))
    sim_converted = company.outcomes.filter(pl.col("event") == "converted").select("lead_id", "value").sort("lead_id")
    assert converted["lead_id"].to_list() == sim_converted["lead_id"].to_list()
    assert converted["value"].to_list() == pytest.approx(sim_converted["value"].to_list(), rel=1e-9)


def test_the_simulation_config_is_recorded_so_the_truth_can_be_rebuilt(demo: tuple[Settings, SimulationConfig]) -> None:
    settings, config = demo
    assert simulation_config(Warehouse(settings.warehouse_path)) == config


def test_a_workspace_with_data_is_not_overwritten_without_force(demo: tuple[Settings, SimulationConfig]) -> None:
    settings, _ = demo
    with pytest.raises(WorkspaceNotEmptyError, match="pass --force"):
        build_demo(settings, n_leads=500, seed=1)


def test_force_rebuilds_identically_for_the_same_seed(tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = Settings(home=tmp_path_factory.mktemp("rebuild") / "ws")
    build_demo(settings, n_leads=800, seed=3)
    first = _leads(settings)
    build_demo(settings, n_leads=800, seed=3, force=True)
    assert _leads(settings).equals(first)


def _leads(settings: Settings) -> pl.DataFrame:
    with Warehouse(settings.warehouse_path).connect() as con:
        return query_frame(con, "SELECT * EXCLUDE (import_id, updated_at) FROM leads ORDER BY lead_id")


def test_leadroute_demo_also_registers_the_policies_and_trains_the_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole `leadroute demo` as a user runs it (small), with a real MLflow store."""
    from typer.testing import CliRunner

    from leadroute.cli import app
    from pipelines.registry import alias_version

    home = tmp_path / "ws"
    monkeypatch.setenv("LEADROUTE_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = CliRunner().invoke(app, ["demo", "--leads", "2500", "--seed", "2", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["policies"] == ["seed@1", "round_robin@1", "territory@1", "account_owner@1", "best_fit@1"]
    models = payload["train"]["models"]
    assert set(models) == {"lead-score", "lead-fit"}
    assert 0.5 < models["lead-score"]["metrics"]["roc_auc"] < 1.0
    settings = Settings(home=home)
    assert alias_version(settings, "lead-score", "champion") == models["lead-score"]["version"]
    assert (home / "mlflow" / "mlflow.db").exists()
