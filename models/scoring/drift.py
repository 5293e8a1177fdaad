"""Population stability: how far recent leads moved away from the ones a model was trained on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

DriftLevel = Literal["stable", "moderate", "major"]

_FLOOR = 1e-4
"""Share given to an empty bin, so a category unseen on one side gives a large but finite PSI."""


@dataclass(frozen=True)
class FeatureDrift:
    """PSI of one feature between a reference and a current sample.

    Attributes:
        feature: the column compared.
        psi: population stability index (0 = identical distributions).
        level: the usual reading: < 0.1 stable, < 0.25 moderate, else major.
        n_reference, n_current: non-null values compared.
        note: why the figure is 0 without comparison (e.g. an empty side), empty otherwise.
    """

    feature: str
    psi: float
    level: DriftLevel
    n_reference: int
    n_current: int
    note: str = ""


def drift_level(psi: float) -> DriftLevel:
    return "stable" if psi < 0.1 else "moderate" if psi < 0.25 else "major"


def population_stability_index(reference: np.ndarray, current: np.ndarray, n_bins: int = 10) -> float:
    """PSI of a numeric feature over quantile bins of the reference (NaNs are left out)."""
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    reference = reference[~np.isnan(reference)]
    current = current[~np.isnan(current)]
    if reference.size == 0 or current.size == 0:
        return 0.0
    # Inner quantile edges; duplicates collapse (a feature with few values gets few bins).
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, n_bins + 1)[1:-1]))
    expected = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=edges.size + 1)
    actual = np.bincount(np.searchsorted(edges, current, side="right"), minlength=edges.size + 1)
    return _psi(expected / reference.size, actual / current.size)


def categorical_stability_index(reference: pl.Series, current: pl.Series) -> float:
    """PSI of a categorical feature over the union of its values (null is a value)."""
    ref = reference.cast(pl.String).fill_null("(missing)").value_counts(name="n")
    cur = current.cast(pl.String).fill_null("(missing)").value_counts(name="n")
    if ref.height == 0 or cur.height == 0:
        return 0.0
    column = ref.columns[0]
    joined = ref.join(cur.rename({cur.columns[0]: column}), on=column, how="full", coalesce=True, suffix="_cur")
    expected = joined["n"].fill_null(0).to_numpy() / reference.len()
    actual = joined["n_cur"].fill_null(0).to_numpy() / current.len()
    return _psi(expected, actual)


def feature_drift(
    reference: pl.DataFrame, current: pl.DataFrame, numeric: tuple[str, ...], categorical: tuple[str, ...]
) -> list[FeatureDrift]:
    """PSI of each named column present in both frames, in the order given."""
    out: list[FeatureDrift] = []
    for name in (*numeric, *categorical):
        if name not in reference.columns or name not in current.columns:
            continue
        ref, cur = reference[name], current[name]
        if ref.len() == 0 or cur.len() == 0:
            out.append(FeatureDrift(name, 0.0, "stable", ref.len(), cur.len(), note="nothing to compare"))
            continue
        if name in numeric:
            psi = population_stability_index(
                ref.cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy(),
                cur.cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy(),
            )
        else:
            psi = categorical_stability_index(ref, cur)
        out.append(FeatureDrift(name, psi, drift_level(psi), ref.len(), cur.len()))
    return out


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.maximum(expected, _FLOOR)
    a = np.maximum(actual, _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))
