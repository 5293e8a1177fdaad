"""How good a conversion model is: discrimination, calibration, lift and ranking agreement.

Every function takes plain arrays and returns a frozen result. Degenerate input (no leads, or a
single class so AUC is undefined) gives ``None`` for the undefined figures and a ``note`` saying
why, never a silent NaN.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

_EPS = 1e-12


@dataclass(frozen=True)
class ClassificationMetrics:
    """Figures of a probability forecast against observed 0/1 outcomes.

    Attributes:
        roc_auc, pr_auc: discrimination (None when the outcomes have a single class).
        log_loss, brier: proper scoring rules (lower is better).
        ece: expected calibration error over equal-width probability bins.
        top_decile_lift: conversion rate among the 10% highest-scored leads over the base rate.
        n, positives, base_rate: the sample.
        note: why a figure is missing, empty otherwise.
    """

    roc_auc: float | None
    pr_auc: float | None
    log_loss: float | None
    brier: float | None
    ece: float | None
    top_decile_lift: float | None
    n: int
    positives: int
    base_rate: float
    note: str = ""

    def to_json(self) -> dict[str, float | int | str | None]:
        return asdict(self)

    def loggable(self) -> dict[str, float]:
        """The defined figures, for a metrics store that takes numbers only."""
        return {k: float(v) for k, v in asdict(self).items() if isinstance(v, int | float) and v is not None}


@dataclass(frozen=True)
class CalibrationBin:
    """One bin of a reliability diagram."""

    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_rate: float


@dataclass(frozen=True)
class RankingAgreement:
    """How well a model orders the destinations of each lead compared with a reference.

    Attributes:
        mean_spearman: mean over leads of the rank correlation across destinations.
        top1_agreement: share of leads whose best destination is the reference's best.
        top1_regret: mean reference probability lost by taking the model's best instead of the
            reference's best (0 is perfect), in probability points.
        n_leads, n_destinations: the shape compared.
    """

    mean_spearman: float
    top1_agreement: float
    top1_regret: float
    n_leads: int
    n_destinations: int


def classification_metrics(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> ClassificationMetrics:
    """All the figures of ``p`` (predicted probabilities) against ``y`` (0/1 outcomes)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    if y.shape != p.shape:
        raise ValueError(f"outcomes and probabilities differ in length: {y.shape} vs {p.shape}")
    n = int(y.size)
    if n == 0:
        return ClassificationMetrics(None, None, None, None, None, None, 0, 0, 0.0, note="no leads to evaluate")
    positives = int(y.sum())
    base_rate = positives / n
    loss = float(log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0.0, 1.0]))
    brier = float(brier_score_loss(y, p))
    ece = expected_calibration_error(y, p, n_bins)
    if positives in (0, n):
        return ClassificationMetrics(
            None, None, loss, brier, ece, None, n, positives, base_rate, note="only one class among the outcomes"
        )
    return ClassificationMetrics(
        roc_auc=float(roc_auc_score(y, p)),
        pr_auc=float(average_precision_score(y, p)),
        log_loss=loss,
        brier=brier,
        ece=ece,
        top_decile_lift=top_decile_lift(y, p),
        n=n,
        positives=positives,
        base_rate=base_rate,
    )


def calibration_bins(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> list[CalibrationBin]:
    """Equal-width bins over [0, 1]; empty bins are left out."""
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # A probability of exactly 1 belongs to the last bin, not to an extra one.
    index = np.minimum(np.searchsorted(edges, p, side="right") - 1, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    predicted = np.bincount(index, weights=p, minlength=n_bins)
    observed = np.bincount(index, weights=y, minlength=n_bins)
    return [
        CalibrationBin(
            float(edges[b]), float(edges[b + 1]), int(counts[b]), predicted[b] / counts[b], observed[b] / counts[b]
        )
        for b in range(n_bins)
        if counts[b]
    ]


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Count-weighted mean gap between predicted and observed rate over equal-width bins."""
    bins = calibration_bins(y, p, n_bins)
    total = sum(b.count for b in bins)
    if total == 0:
        return 0.0
    return float(sum(b.count * abs(b.mean_predicted - b.observed_rate) for b in bins) / total)


def top_decile_lift(y: np.ndarray, p: np.ndarray) -> float | None:
    """Conversion rate of the top 10% by score over the overall rate (None without conversions)."""
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0 or y.sum() == 0:
        return None
    k = max(1, int(np.ceil(0.1 * y.size)))
    # Stable sort on the negated score: ties keep input order, so the figure is deterministic.
    top = np.argsort(-np.asarray(p, dtype=np.float64), kind="stable")[:k]
    return float(y[top].mean() / y.mean())


def ranking_agreement(predicted: np.ndarray, reference: np.ndarray) -> RankingAgreement:
    """Compare two ``(n_leads, n_destinations)`` probability matrices row by row.

    Rows whose reference is constant (no ordering to agree with) count as 0 correlation.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if predicted.shape != reference.shape or predicted.ndim != 2:
        raise ValueError(f"ranking_agreement: shapes differ or are not 2-D: {predicted.shape} vs {reference.shape}")
    n, k = predicted.shape
    if n == 0 or k < 2:
        return RankingAgreement(0.0, 0.0, 0.0, n, k)
    # Spearman per row = Pearson correlation of the rows' ranks, vectorised over rows.
    a = rankdata(predicted, axis=1)
    b = rankdata(reference, axis=1)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    rho = np.divide((a * b).sum(axis=1), denominator, out=np.zeros(n), where=denominator > 0)
    chosen = predicted.argmax(axis=1)
    best = reference.argmax(axis=1)
    rows = np.arange(n)
    return RankingAgreement(
        mean_spearman=float(rho.mean()),
        top1_agreement=float((chosen == best).mean()),
        top1_regret=float((reference[rows, best] - reference[rows, chosen]).mean()),
        n_leads=n,
        n_destinations=k,
    )
