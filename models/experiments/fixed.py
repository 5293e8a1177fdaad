"""Fixed-horizon tests of a difference between two arms (one look, at the planned sample size).

Every kernel here is vectorised: arguments broadcast, so the Monte Carlo proofs in
``benchmarks/ab_calibration.py`` run the very code the reports use on thousands of simulated
experiments at once. Conventions: the effect is ``treatment − control``; ``var_mean_*`` is the
variance of an arm's *mean* (not of one lead's outcome).

- Two proportions: the z statistic and p-value use the pooled proportion under H0 (as
  ``statsmodels.stats.proportion.proportions_ztest``); the interval is the unpooled Wald interval
  (as ``confint_proportions_2indep(method="wald")``).
- Means: Welch's t with Welch–Satterthwaite degrees of freedom (as
  ``scipy.stats.ttest_ind_from_stats(equal_var=False)``).
- Relative lift ``m_t / m_c − 1`` with a delta-method interval (as GrowthBook's gbstats).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class EffectArrays:
    """An effect per simulated (or real) experiment, with its two-sided interval and test.

    Attributes:
        estimate: the point estimate (treatment − control, or the relative lift).
        std_error: its standard error (the interval's; for two proportions the pooled test uses its own).
        statistic: the test statistic (z or t); ±inf / 0 where there is no variation at all and the
            estimate is non-zero / zero.
        p_value: two-sided p-value of "no effect"; 0 / 1 in those degenerate cases.
        ci_low, ci_high: the ``1 − alpha`` interval.
        df: degrees of freedom of the reference t distribution (``inf`` for the normal).
    """

    estimate: FloatArray
    std_error: FloatArray
    statistic: FloatArray
    p_value: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    df: FloatArray


def _f(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _two_sided(statistic: FloatArray, df: FloatArray) -> FloatArray:
    normal = np.isinf(df)
    safe_df = np.where(normal, 1.0, df)
    p_t = 2.0 * stats.t.sf(np.abs(statistic), safe_df)
    p_z = 2.0 * stats.norm.sf(np.abs(statistic))
    return _f(np.where(normal, p_z, p_t))


def critical_value(alpha: float, df: ArrayLike = np.inf) -> FloatArray:
    """Two-sided critical value ``q(1 − alpha/2)`` of the t distribution (the normal where df is inf)."""
    d = _f(df)
    normal = np.isinf(d)
    q_t = stats.t.ppf(1.0 - alpha / 2.0, np.where(normal, 1.0, d))
    return _f(np.where(normal, stats.norm.ppf(1.0 - alpha / 2.0), q_t))


def two_proportions(
    successes_control: ArrayLike,
    n_control: ArrayLike,
    successes_treatment: ArrayLike,
    n_treatment: ArrayLike,
    alpha: float = 0.05,
) -> EffectArrays:
    """Difference of two proportions: pooled z test, unpooled Wald interval.

    ``z = (p_t − p_c) / sqrt(p̄(1 − p̄)(1/n_t + 1/n_c))`` with ``p̄ = (x_t + x_c)/(n_t + n_c)``;
    interval ``p_t − p_c ± z_{1−α/2} sqrt(p_t(1 − p_t)/n_t + p_c(1 − p_c)/n_c)``.
    Where every lead in both arms has the same outcome the test has no information: p = 1.
    """
    x_c, n_c, x_t, n_t = _f(successes_control), _f(n_control), _f(successes_treatment), _f(n_treatment)
    p_c, p_t = x_c / n_c, x_t / n_t
    diff = p_t - p_c
    pooled = (x_c + x_t) / (n_c + n_t)
    se_pooled = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_t + 1.0 / n_c))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se_pooled > 0, diff / se_pooled, 0.0)
    se = np.sqrt(p_t * (1.0 - p_t) / n_t + p_c * (1.0 - p_c) / n_c)
    half = critical_value(alpha) * se
    inf = np.full(np.shape(diff), np.inf)
    p_value = np.where(se_pooled > 0, _two_sided(z, inf), 1.0)
    return EffectArrays(diff, se, _f(z), _f(p_value), diff - half, diff + half, inf)


def welch_df(
    var_mean_control: ArrayLike, n_control: ArrayLike, var_mean_treatment: ArrayLike, n_treatment: ArrayLike
) -> FloatArray:
    """Welch–Satterthwaite degrees of freedom from the variances of the two means."""
    v_c, v_t = _f(var_mean_control), _f(var_mean_treatment)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (v_c + v_t) ** 2 / (v_t**2 / (_f(n_treatment) - 1.0) + v_c**2 / (_f(n_control) - 1.0))
    return _f(np.where(np.isfinite(df), df, np.inf))


def welch(
    mean_control: ArrayLike,
    var_control: ArrayLike,
    n_control: ArrayLike,
    mean_treatment: ArrayLike,
    var_treatment: ArrayLike,
    n_treatment: ArrayLike,
    alpha: float = 0.05,
) -> EffectArrays:
    """Welch's unequal-variance t test and interval for ``mean_t − mean_c``.

    ``var_*`` are the per-lead sample variances (``ddof=1``). ``t = Δ / sqrt(s_t²/n_t + s_c²/n_c)``
    on Welch–Satterthwaite degrees of freedom. With no variation in either arm: p = 1.
    """
    n_c, n_t = _f(n_control), _f(n_treatment)
    v_c, v_t = _f(var_control) / n_c, _f(var_treatment) / n_t
    diff = _f(mean_treatment) - _f(mean_control)
    se = np.sqrt(v_c + v_t)
    df = welch_df(v_c, n_c, v_t, n_t)
    return _with_interval(diff, se, df, alpha)


def normal_difference(
    mean_control: ArrayLike,
    var_mean_control: ArrayLike,
    mean_treatment: ArrayLike,
    var_mean_treatment: ArrayLike,
    alpha: float = 0.05,
    covariance: ArrayLike = 0.0,
) -> EffectArrays:
    """Large-sample z test and interval for ``mean_t − mean_c`` from the variances of the two means.

    ``covariance`` is the covariance of the two means (non-zero only with cluster-robust variances
    when clusters span both arms).
    """
    diff = _f(mean_treatment) - _f(mean_control)
    var = _f(var_mean_control) + _f(var_mean_treatment) - 2.0 * _f(covariance)
    se = np.sqrt(np.maximum(var, 0.0))
    return _with_interval(diff, se, np.full(np.shape(diff), np.inf), alpha)


def _with_interval(estimate: FloatArray, se: FloatArray, df: FloatArray, alpha: float) -> EffectArrays:
    # with no variation at all, any non-zero difference is certain and a zero one is no evidence
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.where(se > 0, estimate / se, np.sign(estimate) * np.inf)
    statistic = np.where((se > 0) | (estimate != 0), statistic, 0.0)
    p_value = np.where(se > 0, _two_sided(_f(statistic), df), np.where(estimate != 0, 0.0, 1.0))
    half = critical_value(alpha, df) * se
    return EffectArrays(estimate, se, _f(statistic), _f(p_value), estimate - half, estimate + half, df)


def relative_lift(
    mean_control: ArrayLike,
    var_mean_control: ArrayLike,
    mean_treatment: ArrayLike,
    var_mean_treatment: ArrayLike,
    alpha: float = 0.05,
    df: ArrayLike = np.inf,
    covariance: ArrayLike = 0.0,
) -> EffectArrays:
    """Relative lift ``r = m_t / m_c − 1`` with a delta-method interval.

    ``Var(r) ≈ Var(m_t)/m_c² + m_t² Var(m_c)/m_c⁴ − 2 m_t Cov(m_c, m_t)/m_c³`` (gbstats' formula,
    plus the covariance term for clusters spanning both arms); interval ``r ± q_{1−α/2} sqrt(Var(r))``
    with q from t(df) (Welch for means, as gbstats) or the normal. Undefined where ``m_c = 0``:
    callers must check (the result is NaN there, never used silently by :func:`models.experiments.compare`).
    """
    m_c, m_t = _f(mean_control), _f(mean_treatment)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = m_t / m_c - 1.0
        var = (
            _f(var_mean_treatment) / m_c**2
            + m_t**2 * _f(var_mean_control) / m_c**4
            - 2.0 * m_t * _f(covariance) / m_c**3
        )
    se = np.sqrt(np.maximum(var, 0.0))
    return _with_interval(_f(r), _f(se), np.broadcast_to(_f(df), np.shape(r)).astype(np.float64), alpha)
