"""Planning: power, sample size and minimum detectable effect of a two-arm test.

One formula, the two-sample z test on a standardised effect ``d`` (``statsmodels``'
``NormalIndPower``): with ``n_c`` control and ``n_t = ratio · n_c`` treatment leads and the
effective size ``ñ = 1 / (1/n_c + 1/n_t)``,

    power = Φ(d·sqrt(ñ) − z_{1−α/2}) + Φ(−d·sqrt(ñ) − z_{1−α/2})      (two-sided)

- Two proportions: ``d`` is Cohen's h, ``h = 2 asin(sqrt(p_t)) − 2 asin(sqrt(p_c))``
  (``statsmodels.stats.proportion.proportion_effectsize``), whose variance does not depend on p.
- Means (revenue per lead): ``d = Δ / σ`` with σ the per-lead standard deviation.

Sample size and MDE invert the power function by Brent's method (to ~1e-12), as
``NormalIndPower.solve_power`` does. Plans are fixed-horizon; a sequential analysis with
``n_star`` at the planned total is 1.55× wider there and needs up to about twice the leads for
the same power at the last look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, stats

PlanMetric = Literal["proportion", "mean"]
_RTOL = 4 * float(np.finfo(np.float64).eps)


def _check(alpha: float, power: float | None = None, ratio: float = 1.0) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if power is not None and not alpha < power < 1.0:
        raise ValueError(f"power must be in (alpha, 1), got {power}")
    if not ratio > 0:
        raise ValueError(f"ratio (treatment leads per control lead) must be positive, got {ratio}")


def cohens_h(p_control: float, p_treatment: float) -> float:
    """Cohen's h of the treatment against the control proportion."""
    for p in (p_control, p_treatment):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"proportions must be within [0, 1], got {p}")
    return 2.0 * math.asin(math.sqrt(p_treatment)) - 2.0 * math.asin(math.sqrt(p_control))


def power_from_effect_size(effect_size: float, n_control: float, alpha: float = 0.05, ratio: float = 1.0) -> float:
    """Two-sided power of the z test for a standardised effect with ``n_control`` and ``ratio·n_control`` leads."""
    _check(alpha, None, ratio)
    n_eff = 1.0 / (1.0 / n_control + 1.0 / (n_control * ratio))
    crit = stats.norm.isf(alpha / 2.0)
    shift = effect_size * math.sqrt(n_eff)
    return float(stats.norm.sf(crit - shift) + stats.norm.cdf(-crit - shift))


def n_control_for_power(effect_size: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0) -> float:
    """Control leads (unrounded) at which the two-sided z test reaches ``power``."""
    _check(alpha, power, ratio)
    if effect_size == 0:
        raise ValueError("an effect of 0 cannot be detected at any sample size")
    d = abs(effect_size)
    guess = (stats.norm.isf(alpha / 2.0) + stats.norm.isf(1.0 - power)) ** 2 / d**2 * (1.0 + 1.0 / ratio)
    high = 2.0 * guess + 10.0
    low = 1e-6

    def gap(n: float) -> float:
        return power_from_effect_size(d, n, alpha, ratio) - power

    return float(optimize.brentq(gap, low, high, xtol=1e-12, rtol=_RTOL, maxiter=500))


def effect_size_for_power(n_control: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0) -> float:
    """The smallest standardised effect (positive) the test detects with ``power`` at this size."""
    _check(alpha, power, ratio)
    if not n_control > 0:
        raise ValueError(f"n_control must be positive, got {n_control}")

    def gap(d: float) -> float:
        return power_from_effect_size(d, n_control, alpha, ratio) - power

    high = 1.0
    while gap(high) < 0:
        high *= 2.0
    return float(optimize.brentq(gap, 0.0, high, xtol=1e-14, rtol=_RTOL, maxiter=500))


@dataclass(frozen=True)
class PowerPlan:
    """How many matured leads an experiment needs.

    Attributes:
        metric: ``"proportion"`` or ``"mean"``.
        effect: the absolute effect to detect (``p_t − p_c``, or Δ in the metric's unit).
        effect_size: the standardised effect (Cohen's h, or Δ/σ).
        n_control, n_treatment: exact (fractional) solutions.
        leads_control, leads_treatment: rounded up.
        total: ``leads_control + leads_treatment``; a good ``n_star`` for the sequential analysis.
        alpha, power, ratio: the inputs.
    """

    metric: PlanMetric
    effect: float
    effect_size: float
    n_control: float
    n_treatment: float
    leads_control: int
    leads_treatment: int
    total: int
    alpha: float
    power: float
    ratio: float


def _plan(metric: PlanMetric, effect: float, d: float, alpha: float, power: float, ratio: float) -> PowerPlan:
    n_c = n_control_for_power(d, alpha, power, ratio)
    n_t = n_c * ratio
    leads_c, leads_t = math.ceil(n_c - 1e-9), math.ceil(n_t - 1e-9)
    return PowerPlan(metric, effect, d, n_c, n_t, leads_c, leads_t, leads_c + leads_t, alpha, power, ratio)


def sample_size_two_proportions(
    p_control: float, p_treatment: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> PowerPlan:
    """Leads per arm to detect a change of conversion from ``p_control`` to ``p_treatment``."""
    d = cohens_h(p_control, p_treatment)
    return _plan("proportion", p_treatment - p_control, d, alpha, power, ratio)


def sample_size_means(
    delta: float, sd: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> PowerPlan:
    """Leads per arm to detect a difference ``delta`` in a mean whose per-lead standard deviation is ``sd``."""
    if not sd > 0:
        raise ValueError(f"sd must be positive, got {sd}")
    return _plan("mean", delta, delta / sd, alpha, power, ratio)


@dataclass(frozen=True)
class MinimumDetectableEffect:
    """The smallest effect detectable with the given leads.

    Attributes:
        effect_size: standardised (Cohen's h or Δ/σ).
        absolute: in the metric's unit (an increase; ``None`` with ``reason`` when impossible).
        relative: ``absolute / baseline`` (``None`` when the baseline is 0).
        reason: why no effect is reported, when one is not.
    """

    effect_size: float
    absolute: float | None
    relative: float | None
    reason: str | None = None


def mde_two_proportions(
    p_control: float, n_control: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> MinimumDetectableEffect:
    """The smallest increase over ``p_control`` detectable with ``n_control`` (and ``ratio·n_control``) leads."""
    if not 0.0 <= p_control <= 1.0:
        raise ValueError(f"p_control must be within [0, 1], got {p_control}")
    h = effect_size_for_power(n_control, alpha, power, ratio)
    angle = math.asin(math.sqrt(p_control)) + h / 2.0
    if angle > math.pi / 2.0:
        return MinimumDetectableEffect(h, None, None, "even a conversion rate of 100% would not be detectable")
    absolute = math.sin(angle) ** 2 - p_control
    relative = absolute / p_control if p_control > 0 else None
    return MinimumDetectableEffect(h, absolute, relative)


def mde_means(
    sd: float, n_control: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0, baseline: float = 0.0
) -> MinimumDetectableEffect:
    """The smallest difference in a mean (per-lead sd ``sd``) detectable with these leads."""
    if not sd > 0:
        raise ValueError(f"sd must be positive, got {sd}")
    d = effect_size_for_power(n_control, alpha, power, ratio)
    absolute = d * sd
    return MinimumDetectableEffect(d, absolute, absolute / baseline if baseline else None)
