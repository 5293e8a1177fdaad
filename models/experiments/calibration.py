"""Monte Carlo proofs of the error rates and coverage, vectorised over many simulated experiments.

Used twice with different sizes: small and seeded in ``tests/test_experiment_calibration.py``,
full in ``benchmarks/ab_calibration.py``. Every study runs the production kernels
(:mod:`.fixed`, :mod:`.sequential`, :mod:`.srm`) or :func:`models.experiments.compare` itself on
simulated experiments whose truth is known; each random draw comes from the caller's generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import integrate, stats

from models.experiments.analysis import ArmData, compare
from models.experiments.fixed import relative_lift, two_proportions, welch
from models.experiments.sequential import always_valid_p_value, confidence_sequence_half_width
from models.experiments.srm import srm_statistic


@dataclass(frozen=True)
class Rate:
    """``hits`` out of ``trials`` with its exact (Clopper–Pearson) 95% interval."""

    hits: int
    trials: int

    @property
    def rate(self) -> float:
        return self.hits / self.trials if self.trials else float("nan")

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        ci = stats.binomtest(self.hits, self.trials).proportion_ci(confidence)
        return float(ci.low), float(ci.high)


def _rate(flags: np.ndarray) -> Rate:
    return Rate(int(np.count_nonzero(flags)), int(flags.size))


@dataclass(frozen=True)
class DailyLooks:
    """Daily looks at many experiments with the same truth.

    Attributes:
        naive_any_reject: a fixed-horizon test rejected at some look (the peeking analyst's error when no effect).
        sequential_any_reject: the always-valid p-value fell below alpha at some look.
        final_reject: the fixed-horizon test rejected at the last (planned) look.
        fixed_covered: the fixed-horizon interval at the last look contains the true difference.
        relative_covered: the delta-method relative interval at the last look contains the true relative lift.
        sequential_covered: the confidence sequence contains the true difference at every look.
    """

    naive_any_reject: Rate
    sequential_any_reject: Rate
    final_reject: Rate
    fixed_covered: Rate
    relative_covered: Rate
    sequential_covered: Rate


def daily_looks_proportion(
    rng: np.random.Generator,
    experiments: int,
    days: int,
    leads_per_day: int,
    p_control: float,
    p_treatment: float,
    alpha: float = 0.05,
    n_star: float | None = None,
) -> DailyLooks:
    """Conversion experiments looked at daily; leads split 50/50 at random, outcomes Bernoulli.

    Cumulative counts per arm are simulated directly (binomial per day, then cumulative sums), so
    one call handles every experiment and look at once. ``n_star`` defaults to the planned total.
    """
    n_t_day = rng.binomial(leads_per_day, 0.5, size=(experiments, days))
    n_c_day = leads_per_day - n_t_day
    n_c, n_t = np.cumsum(n_c_day, axis=1), np.cumsum(n_t_day, axis=1)
    x_c = np.cumsum(rng.binomial(n_c_day, p_control), axis=1)
    x_t = np.cumsum(rng.binomial(n_t_day, p_treatment), axis=1)
    fixed = two_proportions(x_c, n_c, x_t, n_t, alpha)
    tuning = float(n_star) if n_star is not None else float(days * leads_per_day)
    var = fixed.std_error**2
    n = n_c + n_t
    seq_p = always_valid_p_value(fixed.estimate, var, n, alpha, tuning)
    half = confidence_sequence_half_width(var, n, alpha, tuning)
    truth = p_treatment - p_control
    m_c, m_t = x_c[:, -1] / n_c[:, -1], x_t[:, -1] / n_t[:, -1]
    rel = relative_lift(m_c, m_c * (1 - m_c) / n_c[:, -1], m_t, m_t * (1 - m_t) / n_t[:, -1], alpha)
    rel_truth = p_treatment / p_control - 1.0
    return DailyLooks(
        naive_any_reject=_rate(np.any(fixed.p_value < alpha, axis=1)),
        sequential_any_reject=_rate(np.any(seq_p < alpha, axis=1)),
        final_reject=_rate(fixed.p_value[:, -1] < alpha),
        fixed_covered=_rate((fixed.ci_low[:, -1] <= truth) & (truth <= fixed.ci_high[:, -1])),
        relative_covered=_rate((rel.ci_low <= rel_truth) & (rel_truth <= rel.ci_high)),
        sequential_covered=_rate(np.all(np.abs(fixed.estimate - truth) <= half, axis=1)),
    )


def revenue_per_lead(rng: np.random.Generator, shape: tuple[int, ...], p: float, deal_mean: float) -> np.ndarray:
    """Revenue per lead: 0 unless converted, then a log-normal deal (σ = 1) with mean ``deal_mean``."""
    sigma = 1.0
    deals = rng.lognormal(np.log(deal_mean) - sigma**2 / 2.0, sigma, size=shape)
    return np.where(rng.random(shape) < p, deals, 0.0)


def daily_looks_mean(
    rng: np.random.Generator,
    experiments: int,
    days: int,
    leads_per_day_per_arm: int,
    p_control: float,
    p_treatment: float,
    deal_mean: float = 1_000.0,
    alpha: float = 0.05,
    n_star: float | None = None,
    chunk: int = 500,
) -> DailyLooks:
    """Revenue-per-lead experiments (Welch's t) looked at daily; per-lead draws in chunks of experiments."""
    truth = (p_treatment - p_control) * deal_mean
    rel_truth = p_treatment / p_control - 1.0
    tuning = float(n_star) if n_star is not None else float(2 * days * leads_per_day_per_arm)
    flags: dict[str, list[np.ndarray]] = {k: [] for k in ("naive", "seq", "final", "fixed", "rel", "seq_cov")}
    for start in range(0, experiments, chunk):
        e = min(chunk, experiments - start)
        arms = []
        for p in (p_control, p_treatment):
            y = revenue_per_lead(rng, (e, days, leads_per_day_per_arm), p, deal_mean)
            n = leads_per_day_per_arm * np.arange(1, days + 1, dtype=np.float64)
            s1, s2 = np.cumsum(y.sum(axis=2), axis=1), np.cumsum((y**2).sum(axis=2), axis=1)
            mean = s1 / n
            var = (s2 - n * mean**2) / (n - 1.0)
            arms.append((mean, np.maximum(var, 0.0), np.broadcast_to(n, mean.shape)))
        (m_c, v_c, n_c), (m_t, v_t, n_t) = arms
        fixed = welch(m_c, v_c, n_c, m_t, v_t, n_t, alpha)
        var_diff = fixed.std_error**2
        seq_p = always_valid_p_value(fixed.estimate, var_diff, n_c + n_t, alpha, tuning)
        half = confidence_sequence_half_width(var_diff, n_c + n_t, alpha, tuning)
        rel = relative_lift(
            m_c[:, -1], v_c[:, -1] / n_c[:, -1], m_t[:, -1], v_t[:, -1] / n_t[:, -1], alpha, fixed.df[:, -1]
        )
        flags["naive"].append(np.any(fixed.p_value < alpha, axis=1))
        flags["seq"].append(np.any(seq_p < alpha, axis=1))
        flags["final"].append(fixed.p_value[:, -1] < alpha)
        flags["fixed"].append((fixed.ci_low[:, -1] <= truth) & (truth <= fixed.ci_high[:, -1]))
        flags["rel"].append((rel.ci_low <= rel_truth) & (rel_truth <= rel.ci_high))
        flags["seq_cov"].append(np.all(np.abs(fixed.estimate - truth) <= half, axis=1))
    joined = {k: np.concatenate(v) for k, v in flags.items()}
    return DailyLooks(
        _rate(joined["naive"]),
        _rate(joined["seq"]),
        _rate(joined["final"]),
        _rate(joined["fixed"]),
        _rate(joined["rel"]),
        _rate(joined["seq_cov"]),
    )


def srm_false_alarms(
    rng: np.random.Generator, experiments: int, leads: int, shares: Sequence[float], alpha: float = 0.001
) -> Rate:
    """How often the χ² check flags a correctly randomised split (multinomial counts at the configured shares)."""
    weights = np.asarray(shares, dtype=np.float64)
    counts = rng.multinomial(leads, weights / weights.sum(), size=experiments)
    _, p = srm_statistic(counts, weights)
    return _rate(p < alpha)


@dataclass(frozen=True)
class AdjustmentStudy:
    """CUPED against the raw difference on the same simulated experiments."""

    raw_mean_bias: float
    adjusted_mean_bias: float
    raw_mean_width: float
    adjusted_mean_width: float
    mean_variance_reduction: float
    raw_covered: Rate
    adjusted_covered: Rate


def _scored_leads(rng: np.random.Generator, n: int, lift: float) -> tuple[np.ndarray, np.ndarray]:
    score = rng.beta(1.0, 3.0, n)  # a calibrated lead score: the control's conversion probability
    p = np.clip(score * (1.0 + lift), 0.0, 1.0)
    return (rng.random(n) < p).astype(np.float64), score


def cuped_study(
    rng: np.random.Generator, experiments: int, n_per_arm: int, lift: float = 0.1, alpha: float = 0.05
) -> AdjustmentStudy:
    """Conversion equals a calibrated lead score (Beta(1, 3), mean 0.25); treatment multiplies it by ``1 + lift``.

    Runs :func:`compare` with ``adjust=True`` on each experiment. The truth is
    ``E[min(1, s(1 + lift))] − E[s] = 0.25 · lift − E[(s(1 + lift) − 1)⁺]`` (probabilities clip at 1).
    """
    score = stats.beta(1.0, 3.0)
    clipped, _ = integrate.quad(lambda s: (s * (1.0 + lift) - 1.0) * score.pdf(s), 1.0 / (1.0 + lift), 1.0)
    truth = 0.25 * lift - (clipped if lift > 0 else 0.0)
    raw_err, adj_err, raw_w, adj_w, red, raw_cov, adj_cov = [], [], [], [], [], [], []
    for _ in range(experiments):
        y_c, x_c = _scored_leads(rng, n_per_arm, 0.0)
        y_t, x_t = _scored_leads(rng, n_per_arm, lift)
        r = compare(ArmData("c", y_c, x_c), ArmData("t", y_t, x_t), alpha=alpha, sequential=False, adjust=True)
        assert r.adjusted_lift is not None and r.adjusted_ci_low is not None and r.adjusted_ci_high is not None
        assert r.variance_reduction is not None
        raw_err.append(r.lift - truth)
        adj_err.append(r.adjusted_lift - truth)
        raw_w.append(r.ci_high - r.ci_low)
        adj_w.append(r.adjusted_ci_high - r.adjusted_ci_low)
        red.append(r.variance_reduction)
        raw_cov.append(r.ci_low <= truth <= r.ci_high)
        adj_cov.append(r.adjusted_ci_low <= truth <= r.adjusted_ci_high)
    return AdjustmentStudy(
        float(np.mean(raw_err)),
        float(np.mean(adj_err)),
        float(np.mean(raw_w)),
        float(np.mean(adj_w)),
        float(np.mean(red)),
        _rate(np.array(raw_cov)),
        _rate(np.array(adj_cov)),
    )


@dataclass(frozen=True)
class ClusterStudy:
    """Randomisation by rep: lead-level intervals against cluster-robust ones."""

    naive_covered: Rate
    robust_covered: Rate
    naive_reject: Rate
    robust_reject: Rate


def cluster_study(
    rng: np.random.Generator,
    experiments: int,
    reps: int = 60,
    leads_per_rep: int = 80,
    rep_sd: float = 0.6,
    effect: float = 0.0,
    alpha: float = 0.05,
) -> ClusterStudy:
    """Reps differ (random logit intercepts, sd ``rep_sd``); half of them, at random, follow the new policy.

    The treatment adds ``effect`` to the logit; the truth is the difference in the expected
    conversion over the rep population, computed by numerical integration.
    """
    base = -2.0
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()

    def population_rate(shift: float) -> float:
        return float(np.sum(weights / (1.0 + np.exp(-(base + shift + rep_sd * nodes)))))

    truth = population_rate(effect) - population_rate(0.0)
    naive_cov, robust_cov, naive_rej, robust_rej = [], [], [], []
    for _ in range(experiments):
        intercept = base + rep_sd * rng.standard_normal(reps)
        treated = rng.permutation(np.arange(reps) < reps // 2)
        rep_of_lead = np.repeat(np.arange(reps), leads_per_rep)
        logit = intercept[rep_of_lead] + effect * treated[rep_of_lead]
        y = (rng.random(logit.size) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float64)
        in_t = treated[rep_of_lead]
        naive = compare(ArmData("c", y[~in_t]), ArmData("t", y[in_t]), alpha=alpha, sequential=False)
        robust = compare(
            ArmData("c", y[~in_t], cluster=rep_of_lead[~in_t]),
            ArmData("t", y[in_t], cluster=rep_of_lead[in_t]),
            alpha=alpha,
            sequential=False,
        )
        naive_cov.append(naive.ci_low <= truth <= naive.ci_high)
        robust_cov.append(robust.ci_low <= truth <= robust.ci_high)
        naive_rej.append(naive.p_value < alpha)
        robust_rej.append(robust.p_value < alpha)
    return ClusterStudy(
        _rate(np.array(naive_cov)), _rate(np.array(robust_cov)), _rate(np.array(naive_rej)), _rate(np.array(robust_rej))
    )
