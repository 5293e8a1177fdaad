"""One call from per-lead outcomes of two arms to a reported comparison (the lifecycle's entry point).

:func:`compare` picks the test from the metric and the design — two proportions or Welch's t
per lead; the CR1 sandwich when randomised by rep or team; CUPED on request — and adds the
relative lift (delta method), the always-valid confidence sequence and p-value for daily looks,
and a decision in plain words. :func:`confidence_sequence_path` gives the sequence at each look.
Formulas: ``docs/statistics.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.experiments.adjust import cuped
from models.experiments.cluster import FEW_CLUSTERS, cluster_robust_means
from models.experiments.fixed import EffectArrays, normal_difference, relative_lift, two_proportions, welch
from models.experiments.sequential import DEFAULT_N_STAR, always_valid_p_value, confidence_sequence_half_width
from models.experiments.types import ArmData, Comparison, Decision, Metric, SequencePoint

__all__ = ["ArmData", "Comparison", "SequencePoint", "compare", "confidence_sequence_path"]


@dataclass(frozen=True)
class _Estimate:
    """Everything a look needs: the means, their variances and the fixed-horizon test."""

    mean_c: float
    mean_t: float
    var_c: float
    var_t: float
    cov: float
    n_units: float
    effect: EffectArrays
    df: float
    method: str


def _validate(control: ArmData, treatment: ArmData, metric: Metric, adjust: bool) -> None:
    for arm in (control, treatment):
        y = np.asarray(arm.y, dtype=np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError(f"arm {arm.name!r}: outcomes must be finite (only matured leads count)")
        if metric == "proportion" and not np.all((y == 0) | (y == 1)):
            raise ValueError(f"arm {arm.name!r}: a proportion metric needs 0/1 outcomes")
        if adjust and arm.covariate is None:
            raise ValueError(f"arm {arm.name!r}: adjust=True needs the lead score as covariate")
    if (control.cluster is None) != (treatment.cluster is None):
        raise ValueError("give cluster labels for both arms or for neither")
    if metric not in ("proportion", "mean"):
        raise ValueError(f"metric must be 'proportion' or 'mean', got {metric!r}")


def _estimate(
    y_c: np.ndarray, y_t: np.ndarray, control: ArmData, treatment: ArmData, metric: Metric, alpha: float, z_only: bool
) -> _Estimate:
    n_c, n_t = y_c.size, y_t.size
    m_c, m_t = float(y_c.mean()), float(y_t.mean())
    if control.cluster is not None and treatment.cluster is not None:
        robust = cluster_robust_means(y_c, control.cluster, y_t, treatment.cluster)
        effect = normal_difference(
            m_c, robust.var_mean_control, m_t, robust.var_mean_treatment, alpha, robust.covariance
        )
        return _Estimate(
            m_c,
            m_t,
            robust.var_mean_control,
            robust.var_mean_treatment,
            robust.covariance,
            float(robust.n_clusters),
            effect,
            np.inf,
            "difference in means, cluster-robust (CR1) z interval",
        )
    if metric == "proportion" and not z_only:
        effect = two_proportions(y_c.sum(), n_c, y_t.sum(), n_t, alpha)
        var_c, var_t = m_c * (1 - m_c) / n_c, m_t * (1 - m_t) / n_t
        return _Estimate(
            m_c,
            m_t,
            var_c,
            var_t,
            0.0,
            float(n_c + n_t),
            effect,
            np.inf,
            "two-proportion z test (pooled), Wald interval",
        )
    var_c, var_t = float(np.var(y_c, ddof=1)) / n_c, float(np.var(y_t, ddof=1)) / n_t
    if z_only:
        effect = normal_difference(m_c, var_c, m_t, var_t, alpha)
        return _Estimate(m_c, m_t, var_c, var_t, 0.0, float(n_c + n_t), effect, np.inf, "z test, unpooled variance")
    effect = welch(m_c, var_c * n_c, n_c, m_t, var_t * n_t, n_t, alpha)
    return _Estimate(m_c, m_t, var_c, var_t, 0.0, float(n_c + n_t), effect, float(effect.df), "Welch's t test")


def _decide(lift: float, p_value: float, alpha: float, higher_is_better: bool) -> Decision:
    if p_value >= alpha or lift == 0:
        return "no difference detected"
    return "treatment better" if (lift > 0) == higher_is_better else "control better"


def _assumptions(metric: Metric, clustered: bool, sequential: bool, adjust: bool, n_star: float) -> tuple[str, ...]:
    out = ["Only matured leads count: every lead's outcome window has closed."]
    if clustered:
        out.append(
            "Reps or teams were randomised; leads within one are correlated, so intervals count clusters (CR1), "
            "and clusters are independent of each other."
        )
    else:
        out.append("Leads were randomised independently and one lead's outcome does not depend on another's arm.")
    out.append(
        "Samples are large enough for the normal approximation (for conversion: a few dozen conversions per arm)."
    )
    if metric == "mean":
        out.append("Revenue per lead has a finite variance; a few huge deals make the interval unreliable.")
    if sequential:
        out.append(
            f"Sequential intervals hold at every look together (asymptotic confidence sequence, tuned for about "
            f"{n_star:,.0f} units); they are wider than the fixed-horizon ones, which hold only at one planned look."
        )
    if adjust:
        out.append("The lead score was fixed before assignment (a post-assignment score would bias the adjustment).")
    return tuple(out)


def compare(
    control: ArmData,
    treatment: ArmData,
    *,
    alpha: float = 0.05,
    metric: Metric = "proportion",
    sequential: bool = True,
    n_star: float | None = None,
    adjust: bool = False,
    higher_is_better: bool = True,
) -> Comparison:
    """Compare a treatment arm with the control arm on one metric.

    Args:
        control, treatment: per-lead outcomes (matured leads only), optional lead score and cluster.
        alpha: error rate of every interval and of the decision.
        metric: ``"proportion"`` (0/1 conversion: pooled z test, Wald interval) or ``"mean"`` (Welch's t).
        sequential: also give the always-valid interval and p-value, and decide on them.
        n_star: the expected total sample size (leads, or clusters when randomised by cluster) the
            sequential boundary is tuned for; the plan's ``total`` from :mod:`models.experiments.power`.
            Default: 5,000 (gbstats' default).
        adjust: CUPED with the covariate; the decision then uses the adjusted lift.
        higher_is_better: ``False`` for metrics to push down (speed-to-lead minutes, error rate).

    Raises:
        ValueError: on non-finite outcomes, non-0/1 outcomes for a proportion, a missing covariate
            with ``adjust``, or cluster labels for one arm only.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    _validate(control, treatment, metric, adjust)
    y_c, y_t = np.asarray(control.y, dtype=np.float64), np.asarray(treatment.y, dtype=np.float64)
    clustered = control.cluster is not None
    tuning = float(n_star) if n_star is not None else DEFAULT_N_STAR
    assumptions = _assumptions(metric, clustered, sequential, adjust, tuning)
    n_c, n_t = y_c.size, y_t.size
    if n_c < 2 or n_t < 2:
        return _too_small(control, treatment, metric, alpha, y_c, y_t, assumptions)
    warnings: list[str] = []
    est = _estimate(y_c, y_t, control, treatment, metric, alpha, z_only=False)
    fixed = est.effect
    if clustered and est.n_units < FEW_CLUSTERS:
        warnings.append(
            f"Only {est.n_units:.0f} clusters: cluster-robust intervals are too narrow below {FEW_CLUSTERS}."
        )
    if float(fixed.std_error) == 0.0:
        warnings.append("No variation in the outcome within either arm: the intervals collapse to a point.")
    rel_low = rel_high = relative = None
    rel_var = 0.0
    if est.mean_c != 0:
        rel = relative_lift(est.mean_c, est.var_c, est.mean_t, est.var_t, alpha, est.df, est.cov)
        relative, rel_low, rel_high = float(rel.estimate), float(rel.ci_low), float(rel.ci_high)
        rel_var = float(rel.std_error) ** 2
    else:
        warnings.append("The control mean is 0: the relative lift is undefined.")
    lift = float(fixed.estimate)
    seq: dict[str, float | None] = {}
    if sequential:
        var = float(fixed.std_error) ** 2
        half = float(confidence_sequence_half_width(var, est.n_units, alpha, tuning))
        seq = {
            "sequential_ci_low": lift - half,
            "sequential_ci_high": lift + half,
            "always_valid_p_value": float(always_valid_p_value(lift, var, est.n_units, alpha, tuning)),
        }
        if relative is not None:
            rel_half = float(confidence_sequence_half_width(rel_var, est.n_units, alpha, tuning))
            seq["relative_sequential_ci_low"] = relative - rel_half
            seq["relative_sequential_ci_high"] = relative + rel_half
    adj: dict[str, float | None] = {}
    method = est.method
    if adjust and control.covariate is not None and treatment.covariate is not None:
        fit = cuped(y_c, control.covariate, y_t, treatment.covariate)
        a = _estimate(fit.adjusted_control, fit.adjusted_treatment, control, treatment, metric, alpha, z_only=True)
        adj = {
            "adjusted_lift": float(a.effect.estimate),
            "adjusted_ci_low": float(a.effect.ci_low),
            "adjusted_ci_high": float(a.effect.ci_high),
            "adjusted_p_value": float(a.effect.p_value),
            "theta": fit.theta,
            "variance_reduction": fit.variance_reduction,
        }
        method += f"; CUPED on the lead score ({a.method})"
        if sequential:
            var_a = float(a.effect.std_error) ** 2
            half_a = float(confidence_sequence_half_width(var_a, a.n_units, alpha, tuning))
            adj["adjusted_sequential_ci_low"] = float(a.effect.estimate) - half_a
            adj["adjusted_sequential_ci_high"] = float(a.effect.estimate) + half_a
            adj["adjusted_always_valid_p_value"] = float(
                always_valid_p_value(a.effect.estimate, var_a, a.n_units, alpha, tuning)
            )
    if sequential:
        method += "; always-valid confidence sequence (normal mixture)"
    # p < alpha exactly when the matching interval excludes 0 (for two proportions the pooled
    # test decides: the Wald interval can disagree with it at the margin)
    if adj:
        basis_lift, basis_p = (
            adj["adjusted_lift"],
            adj["adjusted_always_valid_p_value" if sequential else "adjusted_p_value"],
        )
    else:
        basis_lift, basis_p = lift, seq["always_valid_p_value"] if sequential else float(fixed.p_value)
    assert basis_lift is not None and basis_p is not None
    basis = ("sequential interval" if sequential else "fixed-horizon test") + (
        " of the CUPED-adjusted lift" if adj else ""
    )
    return Comparison(
        control=control.name,
        treatment=treatment.name,
        metric=metric,
        method=method,
        alpha=alpha,
        n_control=n_c,
        n_treatment=n_t,
        mean_control=est.mean_c,
        mean_treatment=est.mean_t,
        lift=lift,
        std_error=float(fixed.std_error),
        ci_low=float(fixed.ci_low),
        ci_high=float(fixed.ci_high),
        p_value=float(fixed.p_value),
        relative_lift=relative,
        relative_ci_low=rel_low,
        relative_ci_high=rel_high,
        decision=_decide(basis_lift, basis_p, alpha, higher_is_better),
        decision_basis=basis,
        sequential=sequential,
        n_star=tuning if sequential else None,
        sequential_ci_low=seq.get("sequential_ci_low"),
        sequential_ci_high=seq.get("sequential_ci_high"),
        always_valid_p_value=seq.get("always_valid_p_value"),
        relative_sequential_ci_low=seq.get("relative_sequential_ci_low"),
        relative_sequential_ci_high=seq.get("relative_sequential_ci_high"),
        adjusted=bool(adj),
        adjusted_lift=adj.get("adjusted_lift"),
        adjusted_ci_low=adj.get("adjusted_ci_low"),
        adjusted_ci_high=adj.get("adjusted_ci_high"),
        adjusted_p_value=adj.get("adjusted_p_value"),
        adjusted_sequential_ci_low=adj.get("adjusted_sequential_ci_low"),
        adjusted_sequential_ci_high=adj.get("adjusted_sequential_ci_high"),
        adjusted_always_valid_p_value=adj.get("adjusted_always_valid_p_value"),
        theta=adj.get("theta"),
        variance_reduction=adj.get("variance_reduction"),
        n_clusters=int(est.n_units) if clustered else None,
        higher_is_better=higher_is_better,
        assumptions=assumptions,
        warnings=tuple(warnings),
    )


def _too_small(
    control: ArmData,
    treatment: ArmData,
    metric: Metric,
    alpha: float,
    y_c: np.ndarray,
    y_t: np.ndarray,
    assumptions: tuple[str, ...],
) -> Comparison:
    m_c = float(y_c.mean()) if y_c.size else 0.0
    m_t = float(y_t.mean()) if y_t.size else 0.0
    return Comparison(
        control=control.name,
        treatment=treatment.name,
        metric=metric,
        method="none: too few leads",
        alpha=alpha,
        n_control=int(y_c.size),
        n_treatment=int(y_t.size),
        mean_control=m_c,
        mean_treatment=m_t,
        lift=m_t - m_c,
        std_error=float("inf"),
        ci_low=float("-inf"),
        ci_high=float("inf"),
        p_value=1.0,
        relative_lift=None,
        relative_ci_low=None,
        relative_ci_high=None,
        decision="no difference detected",
        decision_basis="too few leads to test",
        assumptions=assumptions,
        warnings=(f"Each arm needs at least 2 matured leads (control {y_c.size}, treatment {y_t.size}).",),
    )


def confidence_sequence_path(
    control: ArmData,
    treatment: ArmData,
    looks: Sequence[float],
    *,
    alpha: float = 0.05,
    metric: Metric = "proportion",
    n_star: float | None = None,
    adjust: bool = False,
) -> list[SequencePoint]:
    """The always-valid interval at each look, with the fixed-horizon one for contrast.

    Args:
        looks: cut-offs on ``ArmData.time`` when both arms have times (e.g. day 1, 2, …: the
            leads that entered by then); otherwise cumulative numbers of leads per arm (the
            first ``k`` of each arm, in array order).
        Other arguments as in :func:`compare`. With ``adjust`` the adjusted lift and interval are plotted.
    """
    timed = control.time is not None and treatment.time is not None
    points: list[SequencePoint] = []
    for look in looks:
        c, t = (
            (control.until(look), treatment.until(look))
            if timed
            else (control.head(int(look)), treatment.head(int(look)))
        )
        r = compare(
            c, t, alpha=alpha, metric=metric, sequential=True, n_star=n_star, adjust=adjust and c.n >= 2 and t.n >= 2
        )
        if r.adjusted:
            assert r.adjusted_lift is not None and r.adjusted_ci_low is not None and r.adjusted_ci_high is not None
            assert r.adjusted_p_value is not None
            points.append(
                SequencePoint(
                    float(look),
                    r.n_control,
                    r.n_treatment,
                    r.adjusted_lift,
                    r.adjusted_sequential_ci_low,
                    r.adjusted_sequential_ci_high,
                    r.adjusted_always_valid_p_value,
                    r.adjusted_ci_low,
                    r.adjusted_ci_high,
                    r.adjusted_p_value,
                )
            )
        else:
            points.append(
                SequencePoint(
                    float(look),
                    r.n_control,
                    r.n_treatment,
                    r.lift,
                    r.sequential_ci_low,
                    r.sequential_ci_high,
                    r.always_valid_p_value,
                    r.ci_low,
                    r.ci_high,
                    r.p_value,
                )
            )
    return points
