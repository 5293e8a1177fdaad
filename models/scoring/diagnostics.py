"""What a data scientist reads about a conversion model: reliability, gains and lift, drift of the
model's inputs and score, and a paired comparison of two models (champion vs challenger).

Pure (numpy, polars, scipy, scikit-learn): every function takes outcomes and probabilities as
arrays (or a fitted model and frames) and returns a polars frame or a frozen result, so a
notebook, the app, ``leadroute train`` and a test compute the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl
from scipy import stats
from sklearn.metrics import roc_auc_score

from models.intervals import wilson_interval
from models.scoring.drift import FeatureDrift, drift_level, feature_drift, population_stability_index
from models.scoring.estimator import ConversionClassifier
from models.scoring.metrics import calibration_bins

_EPS = 1e-12


def reliability_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10, confidence: float = 0.95) -> pl.DataFrame:
    """The reliability diagram as a table: equal-width probability bins (empty ones left out).

    The bins are :func:`models.scoring.metrics.calibration_bins` (the ones ECE and the MLflow
    calibration plot use), with a Wilson interval on each observed rate so a gap between
    predicted and observed can be told apart from the noise of a small bin.

    Returns:
        ``lower, upper, n, mean_predicted, observed_rate, ci_low, ci_high, gap`` (``gap`` is
        observed minus predicted).
    """
    bins = calibration_bins(y, p, n_bins)
    counts = np.array([b.count for b in bins], dtype=np.float64)
    observed = np.array([b.observed_rate for b in bins], dtype=np.float64)
    # Outcomes are 0/1, so rate x count is the bin's number of conversions (rounded off float noise).
    low, high = wilson_interval(np.round(observed * counts), counts, confidence)
    return pl.DataFrame(
        {
            "lower": [b.lower for b in bins],
            "upper": [b.upper for b in bins],
            "n": [b.count for b in bins],
            "mean_predicted": [b.mean_predicted for b in bins],
            "observed_rate": observed,
            "ci_low": low,
            "ci_high": high,
            "gap": observed - np.array([b.mean_predicted for b in bins], dtype=np.float64),
        },
        schema_overrides={"n": pl.Int64},
    )


def gains_table(y: np.ndarray, p: np.ndarray, n_groups: int = 10) -> pl.DataFrame:
    """Lift and cumulative gains by score group (decile by default), highest scores first.

    Leads are ordered by descending probability (stable: ties keep input order, as in
    :func:`models.scoring.metrics.top_decile_lift`) and cut into ``n_groups`` groups whose sizes
    differ by at most one, the larger ones first — so group 1's ``lift`` equals the
    top-decile lift reported with every training run.

    Returns:
        ``group, n, conversions, min_probability, max_probability, mean_predicted,
        conversion_rate, lift, cumulative_share_of_leads, cumulative_gain, cumulative_lift``
        (``lift`` is the group's rate over the overall rate; ``cumulative_gain`` the share of all
        conversions found in the groups so far). Lifts are null when nothing converted.

    Raises:
        ValueError: lengths differ or ``n_groups`` < 1.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if y.shape != p.shape:
        raise ValueError(f"outcomes and probabilities differ in length: {y.shape} vs {p.shape}")
    if n_groups < 1:
        raise ValueError(f"n_groups must be at least 1, got {n_groups}")
    order = np.argsort(-p, kind="stable")
    # Fewer leads than groups: one lead per group rather than empty groups.
    groups = [g for g in np.array_split(order, min(n_groups, max(y.size, 1))) if g.size]
    n = np.array([g.size for g in groups], dtype=np.int64)
    conversions = np.array([y[g].sum() for g in groups], dtype=np.float64)
    total = float(y.sum())
    base = total / y.size if y.size else 0.0
    rate = conversions / np.maximum(n, 1)
    cumulative_n = np.cumsum(n)
    cumulative_rate = np.cumsum(conversions) / np.maximum(cumulative_n, 1)
    no_signal = total == 0
    return pl.DataFrame(
        {
            "group": np.arange(1, len(groups) + 1, dtype=np.int64),
            "n": n,
            "conversions": conversions.astype(np.int64),
            "min_probability": [float(p[g].min()) for g in groups],
            "max_probability": [float(p[g].max()) for g in groups],
            "mean_predicted": [float(p[g].mean()) for g in groups],
            "conversion_rate": rate,
            "lift": None if no_signal else rate / base,
            "cumulative_share_of_leads": cumulative_n / max(y.size, 1),
            "cumulative_gain": None if no_signal else np.cumsum(conversions) / total,
            "cumulative_lift": None if no_signal else cumulative_rate / base,
        },
        schema_overrides={"lift": pl.Float64, "cumulative_gain": pl.Float64, "cumulative_lift": pl.Float64},
    )


def model_drift(model: ConversionClassifier, reference: pl.DataFrame, recent: pl.DataFrame) -> list[FeatureDrift]:
    """PSI of each of the model's features and of its predicted probability, ``reference`` (the
    training window) against ``recent`` leads.

    The score's PSI sums up what the features' shifts do to the model's output; it is left out
    when ``recent`` lacks a column the model reads (e.g. the fit model's destination columns on
    leads not routed yet) or a side is empty.
    """
    numeric, categorical = model.features.numeric, model.features.categorical
    found = feature_drift(reference, recent, numeric, categorical)
    readable = all(c in recent.columns and c in reference.columns for c in model.features.columns)
    if readable and recent.height and reference.height:
        psi = population_stability_index(model.predict_proba(reference)[:, 1], model.predict_proba(recent)[:, 1])
        found.append(FeatureDrift("score", psi, drift_level(psi), reference.height, recent.height))
    return found


@dataclass(frozen=True)
class PairedComparison:
    """Two models' forecasts of the same leads (``b`` minus ``a``; negative loss = ``b`` better).

    Attributes:
        n: leads compared.
        roc_auc_a, roc_auc_b, roc_auc_diff: discrimination (None with a single class).
        brier_diff, brier_ci_low, brier_ci_high: mean per-lead squared-error difference and its
            CLT interval (paired: the lead-to-lead variation both models share cancels).
        log_loss_diff, log_loss_ci_low, log_loss_ci_high: the same for the log loss.
        note: why a figure is missing, empty otherwise.
    """

    n: int
    roc_auc_a: float | None
    roc_auc_b: float | None
    roc_auc_diff: float | None
    brier_diff: float | None
    brier_ci_low: float | None
    brier_ci_high: float | None
    log_loss_diff: float | None
    log_loss_ci_low: float | None
    log_loss_ci_high: float | None
    note: str = ""

    def to_json(self) -> dict[str, float | int | str | None]:
        return asdict(self)


def paired_comparison(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, confidence: float = 0.95) -> PairedComparison:
    """Compare two probability forecasts of the same outcomes (e.g. champion ``a``, challenger ``b``).

    The loss differences are means of per-lead differences, so their interval is
    ``mean ± z · sd(ddof=1) / sqrt(n)`` — assumes independent leads; no interval below two leads.
    """
    y = np.asarray(y, dtype=np.float64)
    a = np.clip(np.asarray(p_a, dtype=np.float64), 0.0, 1.0)
    b = np.clip(np.asarray(p_b, dtype=np.float64), 0.0, 1.0)
    if not (y.shape == a.shape == b.shape):
        raise ValueError(f"outcomes and forecasts differ in length: {y.shape}, {a.shape}, {b.shape}")
    n = int(y.size)
    if n < 2:
        return PairedComparison(n, None, None, None, None, None, None, None, None, None, note="fewer than 2 leads")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    brier = (b - y) ** 2 - (a - y) ** 2
    loss = _log_loss(y, b) - _log_loss(y, a)

    def interval(values: np.ndarray) -> tuple[float, float, float]:
        mean = float(values.mean())
        half = z * float(values.std(ddof=1)) / np.sqrt(n)
        return mean, mean - half, mean + half

    auc_a = auc_b = diff = None
    note = ""
    if np.unique(y).size == 2:
        auc_a, auc_b = float(roc_auc_score(y, a)), float(roc_auc_score(y, b))
        diff = auc_b - auc_a
    else:
        note = "only one class among the outcomes: ROC AUC is undefined"
    return PairedComparison(n, auc_a, auc_b, diff, *interval(brier), *interval(loss), note=note)


def _log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.asarray(-(y * np.log(q) + (1 - y) * np.log(1 - q)), dtype=np.float64)
