"""Training stage: warehouse history → two models → MLflow, with a champion/challenger gate.

``train`` fits the lead score and the fit model (plus a logistic-regression baseline of each) on
matured history, holds out the most recent matured months, compares each challenger with the
current champion on that same holdout, applies the promotion rule, and logs everything (data
window, metrics, calibration, importances, drift, the decision and its reason) to MLflow.
``retrain`` is one automatic cycle; :mod:`pipelines.schedule` runs cycles on a cron expression.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from models.scoring.diagnostics import model_drift
from models.scoring.drift import FeatureDrift
from models.scoring.estimator import ConversionClassifier
from models.scoring.features import (
    FeatureSet,
    decode_extras,
    feature_set,
    infer_extra_features,
    lead_features,
    usable,
)
from models.scoring.metrics import ClassificationMetrics, calibration_bins, classification_metrics
from models.scoring.training import (
    Hyperparameters,
    PromoteMode,
    Promotion,
    Split,
    fit_classifier,
    fit_features,
    fit_rows,
    promotion_decision,
    random_split,
    temporal_split,
)
from pipelines import registry
from pipelines.config import ScoringConfig, load_config
from pipelines.features import History, load_history, matured_leads
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainingSet:
    """One model's rows, outcomes, columns and time split."""

    frame: pl.DataFrame
    converted: np.ndarray
    features: FeatureSet
    split: Split

    def part(self, mask: np.ndarray) -> tuple[pl.DataFrame, np.ndarray]:
        return self.frame.filter(pl.Series(mask)), self.converted[mask]


@dataclass(frozen=True)
class PreparedData:
    """Everything training needs, built from the warehouse in one pass."""

    score: TrainingSet
    fit: TrainingSet | None  # None when no decisions were logged
    recent: pl.DataFrame  # features of leads from the last ``drift_days`` (matured or not)
    window: dict[str, Any]


@dataclass(frozen=True)
class ModelResult:
    """One trained model: its registered version, holdout figures and promotion decision."""

    name: str
    version: int
    run_id: str
    metrics: ClassificationMetrics
    baseline: ClassificationMetrics
    champion: ClassificationMetrics | None
    champion_version: int | None
    promotion: Promotion

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "run_id": self.run_id,
            "metrics": self.metrics.to_json(),
            "baseline_metrics": self.baseline.to_json(),
            "champion_version": self.champion_version,
            "champion_metrics": self.champion.to_json() if self.champion else None,
            "promoted": self.promotion.promote,
            "reason": self.promotion.reason,
        }


@dataclass(frozen=True)
class TrainResult:
    """The outcome of ``leadroute train`` / one retraining cycle."""

    models: dict[str, ModelResult]
    window: dict[str, Any]
    drift: list[FeatureDrift] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def promoted(self) -> bool:
        """True if any model became champion in this cycle."""
        return any(m.promotion.promote for m in self.models.values())

    @property
    def reason(self) -> str:
        return "; ".join(f"{name}: {m.promotion.reason}" for name, m in self.models.items())

    def to_json(self) -> dict[str, Any]:
        return {
            "models": {name: m.to_json() for name, m in self.models.items()},
            "promoted": self.promoted,
            "reason": self.reason,
            "window": self.window,
            "drift": [asdict(d) for d in self.drift],
            "seconds": round(self.seconds, 2),
        }

    def lines(self) -> list[str]:
        w = self.window
        out = [
            f"trained on {w['n_train']:,} matured leads ({w['train_start']} … {w['train_end']}),"
            f" held out {w['n_holdout']:,} from {w['holdout_start']}"
        ]
        for name, m in self.models.items():
            out.append(
                f"  {name} v{m.version}: ROC AUC {_fmt(m.metrics.roc_auc)} (baseline {_fmt(m.baseline.roc_auc)}),"
                f" ECE {_fmt(m.metrics.ece)}, top-decile lift {_fmt(m.metrics.top_decile_lift, 2)}"
            )
            out.append(f"    {'promoted' if m.promotion.promote else 'not promoted'}: {m.promotion.reason}")
        moved = [d for d in self.drift if d.level != "stable"]
        out.append(f"  drift: {len(moved)} of {len(self.drift)} checked features moved" + (
            " (" + ", ".join(f"{d.feature} PSI {d.psi:.2f}" for d in moved[:5]) + ")" if moved else ""))  # fmt: skip
        return out


def hyperparameters(config: ScoringConfig) -> Hyperparameters:
    return Hyperparameters(
        calibration=config.calibration,
        max_iter=config.max_iter,
        learning_rate=config.learning_rate,
        max_leaf_nodes=config.max_leaf_nodes,
        seed=config.seed,
    )


def prepare(history: History, config: ScoringConfig) -> PreparedData:
    """Features, matured labels and time splits for both models (pure given the history)."""
    decoded = decode_extras(history.leads)
    extras = infer_extra_features(decoded, config.extra_features, config.exclude_features)
    # Every extra is unpacked (the model reads only ``extras``), so a champion trained with
    # other extras can still be scored on the same holdout.
    unpacked = {e.name: e for e in infer_extra_features(decoded)} | {e.name: e for e in extras}
    everything = lead_features(history.leads, tuple(unpacked.values()), history.conversions)
    labels = matured_leads(history, config.conversion_window_days).select("lead_id", "converted")
    matured = everything.join(labels, on="lead_id", how="inner", maintain_order="left")
    if matured.height == 0:
        raise ValueError(
            f"no matured leads: outcomes count only {config.conversion_window_days} days after a lead's creation"
        )
    if config.split == "random":
        split = random_split(matured["created_at"], matured["converted"].to_numpy(), config.holdout_share, config.seed)
    else:
        split = temporal_split(matured["created_at"], config.holdout_months)
    lead_set = usable(feature_set(extras), matured.filter(pl.Series(split.train)))
    score = TrainingSet(matured.drop("converted"), matured["converted"].to_numpy(), lead_set, split)

    fit: TrainingSet | None = None
    if history.decisions.height:
        rows = fit_rows(matured, history.leads, history.decisions, history.reps, history.accounts)
        if rows.height:
            held_ids = matured["lead_id"].filter(pl.Series(split.holdout)).implode()
            held = rows["lead_id"].is_in(held_ids).to_numpy()
            fit_split = Split(train=~held, holdout=held, holdout_start=split.holdout_start)
            # Destination columns with no information (e.g. no rep time zones known) are left out.
            fit_set = usable(fit_features(lead_set), rows.filter(pl.Series(fit_split.train)))
            fit = TrainingSet(rows.drop("converted"), rows["converted"].to_numpy(), fit_set, fit_split)

    as_of = history.as_of or matured["created_at"].max()
    assert isinstance(as_of, datetime)
    recent = everything.filter(pl.col("created_at") > as_of - timedelta(days=config.drift_days))
    train_rows = matured.filter(pl.Series(split.train))
    window = {
        "as_of": as_of.isoformat(),
        "train_start": _iso(train_rows["created_at"].min()),
        "train_end": _iso(train_rows["created_at"].max()),
        "holdout_start": split.holdout_start.isoformat(),
        "holdout_end": _iso(matured["created_at"].max()),
        "n_train": int(split.train.sum()),
        "n_holdout": int(split.holdout.sum()),
        "n_recent": recent.height,
        "conversion_window_days": config.conversion_window_days,
        "extras": [f"{e.name}:{e.kind}" for e in extras],
    }
    return PreparedData(score=score, fit=fit, recent=recent, window=window)


def train(
    settings: Settings,
    promote: PromoteMode = "auto",
    config: ScoringConfig | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train both models on the workspace's matured history, register them, apply the gate.

    Args:
        promote: ``auto`` (the champion/challenger rule), ``never`` or ``always``.
        config: the scoring section (default: the workspace's ``leadroute.yaml``).
    """
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    config = config or load_config(settings).scoring
    say("reading history from the warehouse …")
    data = prepare(load_history(Warehouse(settings.warehouse_path)), config)
    hyper = hyperparameters(config)
    results: dict[str, ModelResult] = {}
    drift: list[FeatureDrift] = []
    sets: list[tuple[registry.ModelName, TrainingSet]] = [("lead-score", data.score)]
    if data.fit is not None:
        sets.append(("lead-fit", data.fit))
    for name, training in sets:
        say(f"training {name} on {int(training.split.train.sum()):,} rows …")
        model, baseline, figures = _fit_and_evaluate(training, hyper)
        champion_version = registry.alias_version(settings, name, "champion")
        champion = _champion_metrics(settings, name, training) if champion_version is not None else None
        decision = promotion_decision(figures, champion, promote, config.promotion_margin, config.calibration_tolerance)
        if promote == "auto" and champion_version is not None and champion is None:
            # The data no longer has the columns the champion reads: it cannot serve; replace it.
            decision = Promotion(True, f"the champion v{champion_version} cannot read the current data; promoted")
        if name == "lead-score":
            drift = _drift(model, training, data.recent)
        say(f"logging {name} to MLflow …")
        holdout, y_holdout = training.part(training.split.holdout)
        registered = registry.log_model_run(
            settings,
            name,
            model,
            example=holdout.head(200),
            params=_params(model, config, data.window),
            metrics={
                **figures.loggable(),
                **{f"baseline_{k}": v for k, v in baseline.loggable().items()},
                **({f"champion_{k}": v for k, v in champion.loggable().items()} if champion else {}),
                **({f"psi_{d.feature}": d.psi for d in drift} if name == "lead-score" else {}),
            },
            tags={"promoted": str(decision.promote).lower(), "promotion_reason": decision.reason},
            artifacts={
                "metrics.json": {
                    "model": figures.to_json(),
                    "baseline": baseline.to_json(),
                    "champion": champion.to_json() if champion else None,
                },
                "data_window.json": data.window,
                "permutation_importance.json": _importances(model, holdout, y_holdout, hyper.seed),
                **({"drift.json": [asdict(d) for d in drift]} if name == "lead-score" else {}),
            },
            calibration=calibration_bins(y_holdout, model.predict_proba(holdout)[:, 1]),
        )
        registry.set_alias(settings, name, "challenger", registered.version)
        if decision.promote:
            registry.set_alias(settings, name, "champion", registered.version)
        registry.tag_version(settings, name, registered.version, {"promotion_reason": decision.reason[:5000]})
        say(f"{name} v{registered.version}: {decision.reason}")
        results[name] = ModelResult(
            name, registered.version, registered.run_id, figures, baseline, champion, champion_version, decision
        )
    return TrainResult(results, data.window, drift, time.perf_counter() - started)


def retrain(settings: Settings, config: ScoringConfig | None = None, progress: Progress | None = None) -> TrainResult:
    """One champion/challenger cycle on the latest matured data."""
    return train(settings, "auto", config, progress)


def _fit_and_evaluate(
    training: TrainingSet, hyper: Hyperparameters
) -> tuple[ConversionClassifier, ClassificationMetrics, ClassificationMetrics]:
    frame, y = training.part(training.split.train)
    holdout, y_holdout = training.part(training.split.holdout)
    model = fit_classifier(frame, y, training.features, "hgb", hyper)
    baseline = fit_classifier(frame, y, training.features, "logistic", hyper)
    return (
        model,
        classification_metrics(y_holdout, baseline.predict_proba(holdout)[:, 1]),
        classification_metrics(y_holdout, model.predict_proba(holdout)[:, 1]),
    )


def _champion_metrics(
    settings: Settings, name: registry.ModelName, training: TrainingSet
) -> ClassificationMetrics | None:
    """The champion's figures on the challenger's holdout (None if it cannot read these rows)."""
    champion = registry.load_model(settings, name, "champion")
    holdout, y = training.part(training.split.holdout)
    missing = [c for c in champion.features.columns if c not in holdout.columns]
    if missing:
        return None
    return classification_metrics(y, champion.predict_proba(holdout)[:, 1])


def _drift(model: ConversionClassifier, training: TrainingSet, recent: pl.DataFrame) -> list[FeatureDrift]:
    """PSI of each feature and of the score: training window vs recent leads."""
    reference, _ = training.part(training.split.train)
    return model_drift(model, reference, recent)


def _importances(model: ConversionClassifier, holdout: pl.DataFrame, y: np.ndarray, seed: int) -> dict[str, Any]:
    """Permutation importance (drop in holdout ROC AUC) on up to 3,000 seeded rows."""
    from sklearn.inspection import permutation_importance

    if np.unique(y).size < 2:
        return {"note": "the holdout has a single class: importance by ROC AUC is undefined"}
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(holdout.height, min(holdout.height, 3000), replace=False))
    sample = holdout.select(model.features.columns)[rows].to_pandas()
    result = permutation_importance(model, sample, y[rows], scoring="roc_auc", n_repeats=3, random_state=seed)
    order = np.argsort(-result.importances_mean)
    return {
        "scoring": "roc_auc",
        "features": [
            {"feature": model.features.columns[i], "mean": float(result.importances_mean[i]),
             "std": float(result.importances_std[i])}
            for i in order
        ],
    }  # fmt: skip


def _params(model: ConversionClassifier, config: ScoringConfig, window: dict[str, Any]) -> dict[str, object]:
    return {
        **{k: v for k, v in model.get_params().items() if k not in ("categorical", "numeric")},
        "categorical_features": list(model.categorical),
        "numeric_features": list(model.numeric),
        "holdout_months": config.holdout_months,
        "conversion_window_days": config.conversion_window_days,
        "promotion_margin": config.promotion_margin,
        **{f"data_{k}": v for k, v in window.items() if k != "extras"},
    }


def _iso(value: object) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
