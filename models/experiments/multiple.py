"""Multiple comparisons over metrics × arms: Holm (family-wise error) and Benjamini–Hochberg (FDR).

Both match ``statsmodels.stats.multitest.multipletests`` (``"holm"`` and ``"fdr_bh"``):

- Holm: sort ``p_(1) ≤ … ≤ p_(m)``; ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j))``.
- Benjamini–Hochberg: ``p̃_(i) = min_{j ≥ i} min(1, m p_(j) / j)``.

A hypothesis is rejected when its adjusted p-value is ≤ α.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from models.experiments.fixed import FloatArray

AdjustMethod = Literal["holm", "fdr_bh"]
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class AdjustedPValue:
    """One hypothesis after adjustment: its raw and adjusted p-value and whether it is rejected."""

    p_value: float
    adjusted: float
    reject: bool
    method: AdjustMethod


def _checked(p_values: ArrayLike) -> FloatArray:
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("p-values must be one-dimensional")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must be finite and within [0, 1]")
    return p


def holm(p_values: ArrayLike) -> FloatArray:
    """Holm's step-down adjusted p-values, in the input order."""
    p = _checked(p_values)
    m = p.size
    order = np.argsort(p)
    adjusted_sorted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted_sorted[adjusted_sorted > 1] = 1.0
    out = np.empty(m)
    out[order] = adjusted_sorted
    return out


def benjamini_hochberg(p_values: ArrayLike) -> FloatArray:
    """Benjamini–Hochberg step-up adjusted p-values (false discovery rate), in the input order."""
    p = _checked(p_values)
    m = p.size
    order = np.argsort(p)
    raw = p[order] / (np.arange(1, m + 1) / float(m))
    adjusted_sorted = np.minimum.accumulate(raw[::-1])[::-1]
    adjusted_sorted[adjusted_sorted > 1] = 1.0
    out = np.empty(m)
    out[order] = adjusted_sorted
    return out


def adjust_p_values(
    p_values: Mapping[K, float], method: AdjustMethod = "holm", alpha: float = 0.05
) -> dict[K, AdjustedPValue]:
    """Adjust a family of labelled p-values, e.g. keyed by ``(metric, arm)``.

    Args:
        p_values: one p-value per hypothesis (the family is all of them).
        method: ``"holm"`` (controls the chance of any false positive) or ``"fdr_bh"`` (controls
            the expected share of false positives among the rejections).
        alpha: the level of the family.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    keys = list(p_values)
    raw = np.array([p_values[k] for k in keys], dtype=np.float64)
    if method == "holm":
        adjusted = holm(raw)
    elif method == "fdr_bh":
        adjusted = benjamini_hochberg(raw)
    else:
        raise ValueError(f"unknown method {method!r}: use 'holm' or 'fdr_bh'")
    return {
        k: AdjustedPValue(float(p), float(a), bool(a <= alpha), method)
        for k, p, a in zip(keys, raw, adjusted, strict=True)
    }
