"""Training as a stage: a real DuckDB workspace, a real MLflow store in a temp dir, the CLI.

One small demo workspace is shared by the tests of this module, which run in order: the demo's
champions first, then a champion/challenger lifecycle that moves the aliases.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from leadroute.cli import app
from pipelines import registry
from pipelines.config import ScoringConfig
from pipelines.demo import build_demo
from pipelines.demo_models import train_demo_models
from pipelines.features import load_history
from pipelines.schedule import run_schedule
from pipelines.settings import Settings
from pipelines.train import TrainResult, prepare, retrain, train
from pipelines.warehouse import Warehouse

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, TrainResult]:
    settings = Settings(home=tmp_path_factory.mktemp("scoring") / "ws").ensure()
    build_demo(settings, n_leads=3000, seed=1)
    return settings, train_demo_models(settings)


def test_demo_models_are_registered_as_champions_in_the_workspace(trained: tuple[Settings, TrainResult]) -> None:
    settings, result = trained
    assert set(result.models) == {"lead-score", "lead-fit"}
    for name in registry.MODEL_NAMES:
        assert registry.alias_version(settings, name, "champion") == result.models[name].version
        assert registry.alias_version(settings, name, "challenger") == result.models[name].version
    # The store and the artifacts live in the workspace, not in the working directory.
    assert (settings.mlflow_dir / "mlflow.db").exists()
    assert any((settings.mlflow_dir / "artifacts").rglob("model.skops"))
    assert not Path("mlruns").exists()
    assert {"as_of", "train_start", "holdout_start", "n_train", "n_holdout"} <= set(result.window)
    assert any(d.feature == "score" for d in result.drift)
    # The run carries the reports and the logged figures next to the model.
    api = registry.client(settings)
    run_id = result.models["lead-score"].run_id
    reports = {Path(a.path).name for a in api.list_artifacts(run_id, "reports")}
    assert {"calibration.png", "permutation_importance.json", "metrics.json", "data_window.json"} <= reports
    logged = api.get_run(run_id).data
    assert logged.metrics["roc_auc"] == pytest.approx(result.models["lead-score"].metrics.roc_auc)
    assert "baseline_roc_auc" in logged.metrics and "psi_score" in logged.metrics
    assert logged.tags["promoted"] == "true"


def test_load_by_alias_predicts_what_was_evaluated(trained: tuple[Settings, TrainResult]) -> None:
    settings, result = trained
    data = prepare(load_history(Warehouse(settings.warehouse_path)), ScoringConfig())
    holdout, y = data.score.part(data.score.split.holdout)
    native = registry.load_model(settings, "lead-score", "champion")
    p = native.predict_proba(holdout)[:, 1]
    from models.scoring.metrics import classification_metrics

    # The logged figure was computed from the in-memory model before logging: same predictions.
    assert classification_metrics(y, p).roc_auc == pytest.approx(result.models["lead-score"].metrics.roc_auc, abs=1e-12)
    pyfunc = registry.load_pyfunc(settings, "lead-score", "champion")
    through_mlflow = np.asarray(pyfunc.predict(holdout.select(native.features.columns).to_pandas()))
    np.testing.assert_allclose(through_mlflow[:, 1], p, rtol=0, atol=1e-12)
    scores = native.lead_score(holdout)
    assert scores.min() >= 0 and scores.max() <= 100 and np.all(np.diff(scores[np.argsort(p)]) >= 0)


def test_champion_challenger_lifecycle(trained: tuple[Settings, TrainResult], monkeypatch: pytest.MonkeyPatch) -> None:
    settings, first = trained
    champion = first.models["lead-score"].version
    monkeypatch.setenv("LEADROUTE_HOME", str(settings.home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # A crippled challenger (no engagement signals, one boosting round), through the CLI and config.
    (settings.home / "leadroute.yaml").write_text("scoring:\n  extra_features: []\n  max_iter: 1\n")
    cli = runner.invoke(app, ["train", "--promote", "auto", "--json"])
    assert cli.exit_code == 0, cli.output
    payload = json.loads(cli.stdout.strip().splitlines()[-1])
    score = payload["models"]["lead-score"]
    assert {"roc_auc", "pr_auc", "log_loss", "brier", "ece", "top_decile_lift"} <= set(score["metrics"])
    assert score["version"] == champion + 1
    assert payload["promoted"] is False and "kept champion" in payload["reason"]
    assert registry.alias_version(settings, "lead-score", "champion") == champion
    assert registry.alias_version(settings, "lead-score", "challenger") == champion + 1

    # Force the worse model in, then let a scheduled retraining cycle (injected clock) replace it.
    worse = train(settings, "always", ScoringConfig(extra_features=[], max_iter=1)).models["lead-score"]
    assert registry.alias_version(settings, "lead-score", "champion") == worse.version
    (settings.home / "leadroute.yaml").unlink()

    class Clock:
        moment = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)

        def now(self) -> datetime:
            return self.moment

        def sleep(self, seconds: float) -> None:
            self.moment += timedelta(seconds=seconds)

    outcomes = run_schedule("0 3 * * 1", lambda: retrain(settings), Clock(), max_cycles=1)
    assert outcomes[0].error is None and outcomes[0].due == datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    cycle = outcomes[0].result
    assert cycle is not None
    better = cycle.models["lead-score"]
    assert better.promotion.promote, better.promotion.reason
    assert better.metrics.roc_auc is not None and worse.metrics.roc_auc is not None
    assert better.metrics.roc_auc > worse.metrics.roc_auc
    assert better.champion is not None and better.champion.roc_auc == pytest.approx(worse.metrics.roc_auc)
    assert registry.alias_version(settings, "lead-score", "champion") == better.version


def test_train_without_data_fails_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADROUTE_HOME", str(tmp_path / "empty"))
    result = runner.invoke(app, ["train"])
    assert result.exit_code != 0
    assert "no warehouse" in result.output and "Traceback" not in result.output
