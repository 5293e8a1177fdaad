"""The scoring models as the Model page and ``notebooks/model_diagnostics.ipynb`` show them.

``model_runs`` lists the workspace's MLflow training runs with their metrics and the registered
versions and aliases; ``model_report`` evaluates the champion on the holdout of the same time
split ``leadroute train`` builds (metrics, reliability table for the calibration plot, gains),
reads the permutation importance logged with its run, measures drift of recent leads against
the training window, and compares the challenger with the champion on the same leads (paired).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from models.scoring import (
    ClassificationMetrics,
    PairedComparison,
    classification_metrics,
    gains_table,
    paired_comparison,
    reliability_table,
)
from models.scoring.diagnostics import model_drift
from pipelines import registry
from pipelines.config import load_config
from pipelines.features import load_history
from pipelines.registry import Alias, ModelName, ModelNotFoundError
from pipelines.settings import Settings
from pipelines.train import prepare
from pipelines.warehouse import Warehouse

__all__ = ["ModelNotFoundError", "ModelReport", "model_report", "model_runs"]


def model_runs(settings: Settings) -> pl.DataFrame:
    """Every training run of the workspace's experiment, newest first: ``run_id, model, started,
    version, aliases`` and one column per logged metric (empty frame when nothing was trained)."""
    api = registry.client(settings)
    experiment = api.get_experiment_by_name(registry.experiment_name(settings))
    if experiment is None:
        return pl.DataFrame()
    runs = api.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=200)
    versions: dict[str, tuple[int, list[str]]] = {}
    for name in registry.MODEL_NAMES:
        for v in api.search_model_versions(f"name = '{name}'"):
            versions[str(v.run_id)] = (int(v.version), list(getattr(v, "aliases", []) or []))
    rows: list[dict[str, Any]] = []
    for run in runs:
        version, aliases = versions.get(run.info.run_id, (None, []))
        rows.append(
            {
                "run_id": run.info.run_id,
                "model": run.info.run_name,
                "started": pl.from_epoch(pl.Series([run.info.start_time]), time_unit="ms")
                .dt.strftime("%Y-%m-%d %H:%M:%S")
                .item(),
                "status": run.info.status,
                "version": version,
                "aliases": ", ".join(sorted(aliases)),
                **{k: float(v) for k, v in sorted(run.data.metrics.items())},
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


@dataclass(frozen=True)
class ModelReport:
    name: str
    champion_version: int | None
    challenger_version: int | None
    window: dict[str, Any]
    metrics: ClassificationMetrics
    reliability: pl.DataFrame
    gains: pl.DataFrame
    importance: pl.DataFrame  # feature, mean, ... (empty with a note when none was logged)
    importance_note: str
    drift: pl.DataFrame  # feature, psi, level, n_reference, n_current, note
    drift_days: int
    challenger: ClassificationMetrics | None
    duel: PairedComparison | None

    @property
    def same_model(self) -> bool:
        return self.challenger_version == self.champion_version


def model_report(
    settings: Settings,
    name: ModelName = "lead-score",
    champion: Alias = "champion",
    challenger: Alias = "challenger",
    n_bins: int = 10,
    n_groups: int = 10,
) -> ModelReport:
    """The notebook's diagnostics of ``name`` (raises ``ModelNotFoundError`` before training)."""
    config = load_config(settings).scoring
    model = registry.load_model(settings, name, champion)
    data = prepare(load_history(Warehouse(settings.warehouse_path)), config)
    training = data.score if name == "lead-score" else data.fit
    if training is None:
        raise ModelNotFoundError(f"{name}: the workspace logged no routing decisions, so there is nothing to evaluate")
    holdout, y = training.part(training.split.holdout)
    reference, _ = training.part(training.split.train)
    p = model.predict_proba(holdout)[:, 1]
    report = registry.load_report(settings, name, champion, "permutation_importance.json")
    importance = pl.DataFrame(report["features"]) if isinstance(report, dict) and "features" in report else None
    note = (
        ""
        if importance is not None
        else str(report.get("note", "no importance logged") if isinstance(report, dict) else "")
    )
    drift = pl.DataFrame([d.__dict__ for d in model_drift(model, reference, data.recent)])
    challenger_version = registry.alias_version(settings, name, challenger)
    challenger_metrics = duel = None
    if challenger_version is not None:
        q = registry.load_model(settings, name, challenger).predict_proba(holdout)[:, 1]
        challenger_metrics = classification_metrics(y, q, n_bins)
        duel = paired_comparison(y, p, q)
    return ModelReport(
        name=name,
        champion_version=registry.alias_version(settings, name, champion),
        challenger_version=challenger_version,
        window=data.window,
        metrics=classification_metrics(y, p, n_bins),
        reliability=reliability_table(y, p, n_bins),
        gains=gains_table(y, p, n_groups),
        importance=importance if importance is not None else pl.DataFrame(),
        importance_note=note,
        drift=drift.sort("psi", descending=True) if drift.height else drift,
        drift_days=config.drift_days,
        challenger=challenger_metrics,
        duel=duel,
    )
