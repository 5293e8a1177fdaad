"""Pure training steps: the time-based split, the two training sets, fitting, and the promotion rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import polars as pl

from models.scoring.destinations import destination_features, fit_feature_set
from models.scoring.estimator import Calibration, ConversionClassifier, ModelKind
from models.scoring.features import FeatureSet
from models.scoring.metrics import ClassificationMetrics

PromoteMode = Literal["auto", "never", "always"]


@dataclass(frozen=True)
class Split:
    """A time-based split: train on the past, hold out the most recent matured months.

    Attributes:
        train, holdout: boolean masks over the rows.
        holdout_start: first instant of the holdout (rows created at or after it).
    """

    train: np.ndarray
    holdout: np.ndarray
    holdout_start: datetime


@dataclass(frozen=True)
class Hyperparameters:
    """What the gradient-boosted models are fitted with (logged with every run)."""

    calibration: Calibration = "sigmoid"
    max_iter: int = 400
    learning_rate: float = 0.1
    # Small trees: conversion is close to additive in the logit (measured against the simulated
    # truth, 3 leaves beat 6–31 on holdout AUC and on the fit model's destination ranking).
    max_leaf_nodes: int = 3
    min_samples_leaf: int = 100
    seed: int = 0


@dataclass(frozen=True)
class Promotion:
    """Whether a challenger becomes champion, and why (the reason is logged and printed)."""

    promote: bool
    reason: str


def temporal_split(created_at: pl.Series, holdout_months: int) -> Split:
    """Hold out rows created in the last ``holdout_months`` calendar months of ``created_at``.

    Raises:
        ValueError: no rows, or every row falls in the holdout (not enough history).
    """
    if created_at.len() == 0:
        raise ValueError("no matured leads to train on yet")
    last = created_at.max()
    assert isinstance(last, datetime)
    start = _minus_months(last, holdout_months)
    holdout = (created_at > start).to_numpy()
    if holdout.all():
        raise ValueError(
            f"all matured leads fall in the {holdout_months}-month holdout: more history is needed to train"
        )
    return Split(train=~holdout, holdout=holdout, holdout_start=start)


def random_split(created_at: pl.Series, converted: np.ndarray, holdout_share: float, seed: int) -> Split:
    """A seeded stratified random split, for data whose timestamps carry no real time order
    (e.g. an export with synthetic dates). ``holdout_start`` is the earliest held-out lead."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(created_at.len())
    stratify = converted if np.unique(converted).size == 2 else None
    _, held = train_test_split(rows, test_size=holdout_share, random_state=seed, stratify=stratify)
    holdout = np.zeros(rows.size, dtype=bool)
    holdout[held] = True
    start = created_at.filter(pl.Series(holdout)).min()
    assert isinstance(start, datetime)
    return Split(train=~holdout, holdout=holdout, holdout_start=start)


def fit_rows(
    features: pl.DataFrame,
    leads: pl.DataFrame,
    decisions: pl.DataFrame,
    reps: pl.DataFrame,
    accounts: pl.DataFrame,
) -> pl.DataFrame:
    """One row per lead with a logged decision: the lead's features plus its destination's.

    Args:
        features: from :func:`models.scoring.features.lead_features` (``lead_id`` first).
        leads: ``lead_id``, ``account_id`` and, if known, ``language`` (for the matches).
        decisions: ``lead_id``, ``team``, ``rep_id``.
    """
    helpers = [c for c in ("account_id", "language") if c in leads.columns and c not in features.columns]
    pairs = features.join(leads.select("lead_id", *helpers), on="lead_id", how="left", maintain_order="left").join(
        decisions.select("lead_id", "team", "rep_id"), on="lead_id", how="inner", maintain_order="left"
    )
    return destination_features(pairs, reps, accounts)


def fit_classifier(
    frame: pl.DataFrame,
    y: np.ndarray,
    features: FeatureSet,
    kind: ModelKind,
    hyper: Hyperparameters,
) -> ConversionClassifier:
    """Fit one model (the baseline ``"logistic"`` kind is left uncalibrated: it already is)."""
    model = ConversionClassifier(
        categorical=features.categorical,
        numeric=features.numeric,
        kind=kind,
        calibration=hyper.calibration if kind == "hgb" else "none",
        max_iter=hyper.max_iter,
        learning_rate=hyper.learning_rate,
        max_leaf_nodes=hyper.max_leaf_nodes,
        min_samples_leaf=hyper.min_samples_leaf,
        random_state=hyper.seed,
    )
    return model.fit(frame, y)


def fit_features(lead: FeatureSet) -> FeatureSet:
    return fit_feature_set(lead)


def promotion_decision(
    challenger: ClassificationMetrics,
    champion: ClassificationMetrics | None,
    mode: PromoteMode,
    margin: float,
    calibration_tolerance: float,
) -> Promotion:
    """The champion/challenger rule, on metrics of both models on the same holdout.

    ``auto`` promotes only if the challenger's ROC AUC beats the champion's by ``margin`` and its
    ECE is not worse by more than ``calibration_tolerance``; without a champion it promotes.
    """
    if mode == "never":
        return Promotion(False, "promotion disabled (--promote never): registered as challenger")
    if mode == "always":
        return Promotion(True, "promoted unconditionally (--promote always)")
    if champion is None:
        return Promotion(True, "no champion yet: the first model becomes champion")
    if challenger.roc_auc is None or champion.roc_auc is None:
        return Promotion(False, f"ROC AUC undefined on the holdout ({challenger.note or champion.note}): kept champion")
    gain = challenger.roc_auc - champion.roc_auc
    figures = f"ROC AUC {challenger.roc_auc:.4f} vs champion {champion.roc_auc:.4f}"
    if gain < margin:
        return Promotion(False, f"{figures}: gain {gain:+.4f} below the margin {margin:.4f}; kept champion")
    ece_gap = (challenger.ece or 0.0) - (champion.ece or 0.0)
    if ece_gap > calibration_tolerance:
        return Promotion(
            False,
            f"{figures}, but ECE {challenger.ece:.4f} vs {champion.ece:.4f} is worse by more than"
            f" {calibration_tolerance:.4f}; kept champion",
        )
    return Promotion(True, f"{figures}: better by {gain:+.4f} and not worse calibrated; promoted")


def _minus_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 - months
    year, month = moment.year + index // 12, index % 12 + 1
    days = [31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28, 31, 30, 31, 30,
            31, 31, 30, 31, 30, 31][month - 1]  # fmt: skip
    return moment.replace(year=year, month=month, day=min(moment.day, days))
