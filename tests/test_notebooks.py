"""Every notebook runs top to bottom against a small demo workspace, prints the library's
numbers, and is stored without outputs."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from models.ope.tables import segments_table
from models.scoring import classification_metrics, gains_table, paired_comparison, top_decile_lift
from models.scoring.diagnostics import model_drift
from pipelines import registry
from pipelines.config import ScoringConfig, load_config
from pipelines.demo import build_demo
from pipelines.evaluate import evaluate, list_runs
from pipelines.features import load_history
from pipelines.kpis import lead_history
from pipelines.settings import Settings
from pipelines.train import prepare, train
from pipelines.warehouse import Warehouse
from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: clear outputs before committing"
            assert cell.execution_count is None


def run_notebook(path: Path, parameters: dict[str, object]) -> str:
    """Execute with the parameters cell replaced (as papermill would), return all stdout."""
    notebook = nbformat.read(path, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    return "\n".join(
        output.get("text", "")
        for c in notebook.cells
        if c.cell_type == "code"
        for output in c.outputs
        if output.get("output_type") == "stream"
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("notebooks") / "ws"
    build_demo(Settings(home=home), n_leads=1_500, seed=4, check_quality=True)
    return home


def test_kpi_overview_runs_and_prints_the_library_numbers(workspace: Path) -> None:
    output = run_notebook(
        REPO / "notebooks" / "kpi_overview.ipynb",
        {"workspace": str(workspace), "start": "2026-01-01", "end": None, "window_days": 120},
    )
    match = re.search(r"HEADLINE leads=(\d+) final_outcomes=(\d+) converted=(\d+) conversion_rate=([\d.]+)", output)
    assert match, output
    from datetime import UTC, datetime

    history = lead_history(Warehouse(workspace / "warehouse.duckdb"), datetime(2026, 1, 1, tzinfo=UTC))
    final = history.filter(history["final"])
    assert int(match[1]) == history.height
    assert int(match[2]) == final.height
    assert int(match[3]) == int(final["converted"].sum())
    assert float(match[4]) == pytest.approx(final["converted"].mean(), abs=1e-6)
    from pipelines.sla import sla_kpi_table

    sla = next(line for line in headlines(output) if "sla_groups" in line)
    table = sla_kpi_table(Settings(home=workspace), "team")
    assert sla == {
        "sla_groups": str(table.height),
        "sla_leads": str(int(table["leads"].sum())),
        "touched": str(int(table["touched"].sum())),
    }


def headlines(output: str) -> list[dict[str, str]]:
    """Each ``HEADLINE key=value …`` line as a dict (values are single tokens)."""
    return [
        dict(pair.split("=", 1) for pair in line.split()[1:])
        for line in output.splitlines()
        if line.startswith("HEADLINE ")
    ]


@pytest.fixture(scope="module")
def trained_workspace(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A demo with policies and models, plus a challenger that differs from the champion (a
    second version trained with larger trees and not promoted), so the comparison has two models."""
    settings = Settings(home=tmp_path_factory.mktemp("notebooks-trained") / "ws")
    build_demo(settings, n_leads=2_000, seed=11, register_policies=True, train_models=True)
    train(settings, "never", config=ScoringConfig(max_leaf_nodes=7))
    return settings


def test_model_diagnostics_prints_the_library_numbers(trained_workspace: Settings) -> None:
    settings = trained_workspace
    output = run_notebook(
        REPO / "notebooks" / "model_diagnostics.ipynb",
        {
            "workspace": str(settings.home),
            "tracking_uri": None,
            "model_name": "lead-score",
            "champion": "champion",
            "challenger": "challenger",
            "drift_days": 45,
            "n_bins": 10,
            "n_groups": 10,
        },
    )
    shown = {k: v for line in headlines(output) for k, v in line.items()}

    config = load_config(settings).scoring.model_copy(update={"drift_days": 45})
    data = prepare(load_history(Warehouse(settings.warehouse_path)), config)
    holdout, y = data.score.part(data.score.split.holdout)
    reference, _ = data.score.part(data.score.split.train)
    champion = registry.load_model(settings, "lead-score", "champion")
    challenger = registry.load_model(settings, "lead-score", "challenger")
    p = champion.predict_proba(holdout)[:, 1]
    metrics = classification_metrics(y, p, 10)
    assert (shown["version"], shown["champion_version"], shown["challenger_version"]) == ("1", "1", "2")
    assert int(shown["n_holdout"]) == metrics.n and int(shown["positives"]) == metrics.positives
    for key in ("roc_auc", "ece", "brier"):
        assert float(shown[key]) == pytest.approx(getattr(metrics, key), abs=1e-6), key

    gains = gains_table(y, p, 10)
    assert float(shown["top_group_lift"]) == pytest.approx(top_decile_lift(y, p), abs=1e-6)
    assert float(shown["top3_gain"]) == pytest.approx(gains["cumulative_gain"][2], abs=1e-6)

    importance = registry.load_report(settings, "lead-score", "champion", "permutation_importance.json")
    assert shown["top_feature"] == importance["features"][0]["feature"]
    assert float(shown["top_importance"]) == pytest.approx(importance["features"][0]["mean"], abs=1e-6)

    drift = sorted(model_drift(champion, reference, data.recent), key=lambda d: -d.psi)
    assert int(shown["n_recent"]) == data.recent.height
    assert int(shown["drift_moved"]) == sum(d.level != "stable" for d in drift)
    assert shown["drift_top_feature"] == drift[0].feature
    assert float(shown["drift_top_psi"]) == pytest.approx(drift[0].psi, abs=1e-6)
    assert float(shown["score_psi"]) == pytest.approx(next(d.psi for d in drift if d.feature == "score"), abs=1e-6)

    duel = paired_comparison(y, p, challenger.predict_proba(holdout)[:, 1])
    assert duel.roc_auc_diff != 0.0  # two different models
    for key, field in (("challenger_roc_auc", "roc_auc_b"), ("roc_auc_diff", "roc_auc_diff"),
                       ("brier_diff", "brier_diff"), ("brier_diff_low", "brier_ci_low"),
                       ("brier_diff_high", "brier_ci_high")):  # fmt: skip
        assert float(shown[key]) == pytest.approx(getattr(duel, field), abs=1e-6), key


def test_strategy_comparison_prints_the_library_numbers(trained_workspace: Settings) -> None:
    settings = trained_workspace
    policies = ["seed", "best_fit", "round_robin"]
    output = run_notebook(
        REPO / "notebooks" / "strategy_comparison.ipynb",
        {
            "workspace": str(settings.home),
            "policies": policies,
            "start": "2025-12-01",
            "end": None,
            "folds": 2,
            "seed": 3,
            "headline_estimator": "dr",
            "store_run": False,
        },
    )
    lines = headlines(output)
    run = evaluate(settings, policies, window=(date(2025, 12, 1), None), folds=2, seed=3, store=False)
    result = run.to_json()
    assert lines[0] == {"n_leads": str(result["n_leads"]), "baseline": "seed@1", "estimator": "dr"}
    shown = {line["policy"]: line for line in lines if "policy" in line}
    assert list(shown) == [p["policy"] for p in result["policies"]]
    for p in result["policies"]:
        line = shown[p["policy"]]
        dr = p["estimates"]["dr"]
        assert [float(line[k]) for k in ("value", "low", "high")] == pytest.approx(
            [dr["value"], dr["ci_low"], dr["ci_high"]], abs=1e-6
        )
        assert float(line["truth_no_interference"]) == pytest.approx(p["truth"]["no_interference"], abs=1e-6)
        if p["diff_vs_first"]:
            diff = p["diff_vs_first"]["dr"]
            assert [float(line[k]) for k in ("diff", "diff_low", "diff_high")] == pytest.approx(
                [diff["value"], diff["ci_low"], diff["ci_high"]], abs=1e-6
            )
    assert lines[-1] == {"segment_rows": str(segments_table(result).height), "segments": "4"}
    assert list_runs(settings).height == 0  # store_run=False leaves the warehouse as it was


@pytest.fixture(scope="module")
def experiment_workspace(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A demo workspace with one finished online experiment (traffic routed by the endpoint's own
    service, outcomes drawn from the simulation's truth)."""
    from datetime import UTC, datetime, timedelta

    from leadroute.serving.traffic import simulate_traffic
    from pipelines.experiments import start, stop

    settings = Settings(home=tmp_path_factory.mktemp("nb-exp") / "ws")
    build_demo(settings, n_leads=1_500, seed=4, register_policies=True)
    start(settings, "rr-vs-seed", ["round_robin", "seed"], predict=True, salt="nb", expected_leads=1_500)
    simulate_traffic(settings, prefix="x-", seed=9)
    stop(settings, "rr-vs-seed", as_of=datetime.now(UTC) + timedelta(days=40))
    return settings


def test_experiment_readout_prints_the_library_numbers(experiment_workspace: Settings) -> None:
    from pipelines.experiments import read_out

    output = run_notebook(
        REPO / "notebooks" / "experiment_readout.ipynb",
        {"workspace": str(experiment_workspace.home), "experiment": None, "as_of": None},
    )
    lines = headlines(output)
    view = read_out(experiment_workspace, "rr-vs-seed")
    assert lines[0] == {
        "experiment": "rr-vs-seed",
        "status": "stopped",
        "winner": str(view["verdict"]["winner"]),
        "srm_mismatch": str(view["srm"]["mismatch"]),
    }
    primary = next(c for c in view["comparisons"] if c["metric"] == "conversion")
    shown = next(line for line in lines if line.get("metric") == "conversion")
    assert [float(shown[k]) for k in ("lift", "low", "high", "p")] == pytest.approx(
        [primary["headline"][k] for k in ("lift", "ci_low", "ci_high", "p_value")], abs=1e-6
    )
    assert float(shown["holm"]) == pytest.approx(primary["adjusted_p_value"], abs=1e-6)
    path = next(line for line in lines if "path_days" in line)
    assert int(path["path_days"]) == len(view["path"]) and int(path["last_n"]) == view["path"][-1]["n"]
    predicted = next(line for line in lines if "offline" in line)
    assert float(predicted["offline"]) == pytest.approx(primary["predicted"]["value"], abs=1e-6)
