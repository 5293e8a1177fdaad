"""Always-valid inference: asymptotic confidence sequences and p-values you may read every day.

The boundary is the two-sided normal-mixture boundary of Howard et al. (2021) in the asymptotic
form of Waudby-Smith et al. (2023, "Time-uniform central limit theory", eq. 9 / Theorem 2.2),
as GrowthBook's gbstats applies it to the difference in means. With ``N`` units seen so far,
an estimate ``θ̂_N`` and ``s² = N · Var(θ̂_N)`` (the per-unit variance):

    θ̂_N ± s · sqrt( 2(Nρ² + 1) / (N²ρ²) · log( sqrt(Nρ² + 1) / α ) )

holds for every N simultaneously with probability ≥ 1 − α (asymptotically). ρ is tuned so the
sequence is tightest at the expected sample size ``n*`` (Waudby-Smith et al., eq. 161)::

    ρ = sqrt( (−2 log α + log(−2 log α + 1)) / n* )

The always-valid p-value is the smallest α' at which the sequence (with ρ held at its tuned value)
excludes 0, in closed form::

    p_N = min(1, sqrt(Nρ² + 1) · exp( −N²ρ² θ̂_N² / (2 s² (Nρ² + 1)) ))

so ``p_N ≤ α`` exactly when the α-level sequence excludes 0.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from models.experiments.fixed import FloatArray

DEFAULT_N_STAR = 5_000.0
"""Expected total sample size the boundary is tuned for when the caller has no plan (gbstats' default)."""


def mixture_rho(alpha: float, n_star: float) -> float:
    """The mixture's tuning parameter ρ that makes the sequence tightest at ``n_star`` units."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not n_star > 0:
        raise ValueError(f"n_star must be positive, got {n_star}")
    log_a = -2.0 * np.log(alpha)
    return float(np.sqrt((log_a + np.log(log_a + 1.0)) / n_star))


def confidence_sequence_half_width(
    var_estimate: ArrayLike, n: ArrayLike, alpha: float = 0.05, n_star: float = DEFAULT_N_STAR
) -> FloatArray:
    """Half-width of the ``1 − alpha`` confidence sequence after ``n`` units.

    Args:
        var_estimate: the variance of the estimate at this look (e.g. ``s_t²/n_t + s_c²/n_c``).
        n: the number of units seen so far (leads in both arms, or clusters when randomised by cluster).
        alpha: the error rate the sequence controls over all looks together.
        n_star: the expected total number of units (tightest there).
    """
    rho2 = mixture_rho(alpha, n_star) ** 2
    n_f = np.asarray(n, dtype=np.float64)
    s2 = np.asarray(var_estimate, dtype=np.float64) * n_f
    a = n_f * rho2 + 1.0
    return np.asarray(np.sqrt(s2 * 2.0 * a / (n_f**2 * rho2) * np.log(np.sqrt(a) / alpha)), dtype=np.float64)


def always_valid_p_value(
    estimate: ArrayLike, var_estimate: ArrayLike, n: ArrayLike, alpha: float = 0.05, n_star: float = DEFAULT_N_STAR
) -> FloatArray:
    """The smallest level at which the confidence sequence (ρ tuned at ``alpha``) excludes 0.

    Where the estimate has no variance the p-value is 1 for a zero estimate and 0 otherwise.
    """
    rho2 = mixture_rho(alpha, n_star) ** 2
    n_f = np.asarray(n, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    s2 = np.asarray(var_estimate, dtype=np.float64) * n_f
    a = n_f * rho2 + 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = 0.5 * np.log(a) - n_f**2 * rho2 * est**2 / (2.0 * s2 * a)
    degenerate = np.where(est == 0, 1.0, 0.0)
    p = np.where(s2 > 0, np.minimum(1.0, np.exp(np.where(s2 > 0, log_p, 0.0))), degenerate)
    return np.asarray(p, dtype=np.float64)
