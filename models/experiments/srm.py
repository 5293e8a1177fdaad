"""Sample-ratio mismatch: are the arms as large as the configured traffic shares say?

Pearson's χ² goodness of fit of the observed lead counts per arm against ``total × share``
(as ``scipy.stats.chisquare``), on ``k − 1`` degrees of freedom. A mismatch means assignment or
the outcome pipeline loses leads unevenly between arms, and then no lift can be trusted. The
default level is 0.001, as GrowthBook's: the check runs on every look, so it must rarely cry wolf.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from models.experiments.fixed import FloatArray

DEFAULT_SRM_ALPHA = 0.001


@dataclass(frozen=True)
class SrmResult:
    """The χ² check of one set of arm counts.

    Attributes:
        chi2: Pearson's statistic ``Σ (observed − expected)² / expected``.
        p_value: its upper-tail probability on ``k − 1`` degrees of freedom.
        mismatch: ``p_value < alpha``.
        message: what it means, in plain words.
        observed, expected: leads per arm, counted and expected from the shares.
        alpha: the level used.
    """

    chi2: float
    p_value: float
    mismatch: bool
    message: str
    observed: Mapping[str, int]
    expected: Mapping[str, float]
    alpha: float = DEFAULT_SRM_ALPHA


def srm_statistic(counts: ArrayLike, shares: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """χ² and p-value for counts of shape ``(..., k)`` against ``k`` shares (normalised to sum 1).

    Vectorised over the leading axes (one row per simulated experiment in the Monte Carlo).
    """
    observed = np.asarray(counts, dtype=np.float64)
    weights = np.asarray(shares, dtype=np.float64)
    if weights.ndim != 1 or observed.shape[-1] != weights.size or weights.size < 2:
        raise ValueError("need one share per arm and at least two arms")
    if np.any(weights <= 0) or not np.all(np.isfinite(weights)):
        raise ValueError("every share must be positive and finite")
    expected = observed.sum(axis=-1, keepdims=True) * (weights / weights.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = np.where(expected > 0, (observed - expected) ** 2 / expected, 0.0).sum(axis=-1)
    p_value = stats.chi2.sf(chi2, weights.size - 1)
    return np.asarray(chi2, dtype=np.float64), np.asarray(p_value, dtype=np.float64)


def srm_check(counts: Mapping[str, int], shares: Mapping[str, float], alpha: float = DEFAULT_SRM_ALPHA) -> SrmResult:
    """Check the lead counts per arm against the configured traffic shares.

    Args:
        counts: leads assigned (or matured) per arm.
        shares: the configured share per arm (any positive weights; normalised).
        alpha: the level; 0.001 by default.

    Raises:
        ValueError: when the arms of ``counts`` and ``shares`` differ, or a count is negative.
    """
    if set(counts) != set(shares):
        raise ValueError(f"counts name arms {sorted(counts)} but shares name {sorted(shares)}")
    arms = list(shares)
    observed = np.array([counts[a] for a in arms], dtype=np.float64)
    if np.any(observed < 0):
        raise ValueError("counts must be non-negative")
    weights = np.array([shares[a] for a in arms], dtype=np.float64)
    total = float(observed.sum())
    expected = {a: total * float(w) for a, w in zip(arms, weights / weights.sum(), strict=True)}
    observed_map = {a: int(counts[a]) for a in arms}
    if total == 0:
        return SrmResult(0.0, 1.0, False, "No leads yet: nothing to check.", observed_map, expected, alpha)
    chi2, p = srm_statistic(observed, weights)
    chi2_f, p_f = float(chi2), float(p)
    mismatch = p_f < alpha
    split = " / ".join(f"{a} {observed_map[a]:,} (expected {expected[a]:,.0f})" for a in arms)
    if mismatch:
        message = (
            f"Sample ratio mismatch: {split}; χ² = {chi2_f:.2f}, p = {p_f:.2g} < {alpha:g}. Assignment or the "
            "outcome pipeline is losing leads unevenly between arms, so the lift cannot be trusted until the "
            "cause is found."
        )
    else:
        message = f"Arm sizes match the configured shares: {split}; χ² = {chi2_f:.2f}, p = {p_f:.2g} ≥ {alpha:g}."
    return SrmResult(chi2_f, p_f, mismatch, message, observed_map, expected, alpha)


def srm_by_segment(
    counts: Mapping[str, Mapping[str, int]], shares: Mapping[str, float], alpha: float = DEFAULT_SRM_ALPHA
) -> dict[str, SrmResult]:
    """The same check within each segment (e.g. lead source or region), each at ``alpha``.

    Arms missing from a segment count as 0 leads there; an arm not in ``shares`` is an error.
    With many segments a few false alarms are expected (about ``alpha`` × segments); combine
    with :func:`models.experiments.adjust_p_values` when a single verdict over all segments is wanted.
    """
    return {
        segment: srm_check({**dict.fromkeys(shares, 0), **per_arm}, shares, alpha)
        for segment, per_arm in counts.items()
    }
