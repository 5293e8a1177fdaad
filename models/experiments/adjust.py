"""Regression adjustment with a pre-assignment covariate (CUPED), here the lead score.

With ``x`` a covariate fixed before assignment (the score the lead had when it arrived), each
outcome is replaced by ``y − θ (x − x̄)`` with ``x̄`` the mean over both arms and

    θ = Σ_arms Σ_i (y_i − ȳ_arm)(x_i − x̄_arm) / Σ_arms Σ_i (x_i − x̄_arm)²

the within-arm covariance over the within-arm variance, pooled across arms (Deng et al. 2013;
gbstats pools the same way). The adjusted difference is ``(ȳ_t − ȳ_c) − θ (x̄_t − x̄_c)``: still
unbiased because randomisation makes ``E[x̄_t − x̄_c] = 0`` whatever θ is, and its variance
shrinks by about ``ρ(x, y)²``. Estimating θ from the data costs O(1/n) in the variance, which the
large-sample intervals ignore (as every CUPED implementation does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from models.experiments.fixed import FloatArray


@dataclass(frozen=True)
class CupedAdjustment:
    """The fitted adjustment and the adjusted outcomes per arm.

    Attributes:
        theta: the pooled regression slope of outcome on covariate.
        covariate_mean: ``x̄`` over both arms (the adjustment's centre).
        adjusted_control, adjusted_treatment: ``y − θ (x − x̄)`` per lead.
        variance_reduction: ``1 − Var(adjusted difference) / Var(raw difference)`` (0 when no
            variation; negative would mean the covariate hurt, which a pooled θ makes rare).
    """

    theta: float
    covariate_mean: float
    adjusted_control: FloatArray
    adjusted_treatment: FloatArray
    variance_reduction: float


def _var_of_difference(control: FloatArray, treatment: FloatArray) -> float:
    return float(np.var(control, ddof=1) / control.size + np.var(treatment, ddof=1) / treatment.size)


def cuped(
    y_control: ArrayLike, x_control: ArrayLike, y_treatment: ArrayLike, x_treatment: ArrayLike
) -> CupedAdjustment:
    """Fit θ on both arms and adjust every outcome.

    Raises:
        ValueError: when an arm has fewer than two leads or an outcome and its covariate differ in length.
    """
    y_c, x_c = np.asarray(y_control, dtype=np.float64), np.asarray(x_control, dtype=np.float64)
    y_t, x_t = np.asarray(y_treatment, dtype=np.float64), np.asarray(x_treatment, dtype=np.float64)
    if y_c.shape != x_c.shape or y_t.shape != x_t.shape:
        raise ValueError("each arm needs one covariate value per outcome")
    if y_c.size < 2 or y_t.size < 2:
        raise ValueError("CUPED needs at least two leads per arm")
    if not (np.all(np.isfinite(x_c)) and np.all(np.isfinite(x_t))):
        raise ValueError("the covariate must be finite for every lead (impute missing scores first)")
    dx_c, dx_t = x_c - x_c.mean(), x_t - x_t.mean()
    sxx = float(dx_c @ dx_c + dx_t @ dx_t)
    sxy = float(dx_c @ (y_c - y_c.mean()) + dx_t @ (y_t - y_t.mean()))
    theta = sxy / sxx if sxx > 0 else 0.0
    centre = float(np.concatenate([x_c, x_t]).mean())
    adj_c, adj_t = y_c - theta * (x_c - centre), y_t - theta * (x_t - centre)
    raw = _var_of_difference(y_c, y_t)
    reduction = 1.0 - _var_of_difference(adj_c, adj_t) / raw if raw > 0 else 0.0
    return CupedAdjustment(theta, centre, adj_c, adj_t, reduction)
