"""Parity of the experiment statistics with scipy and statsmodels, number by number (to 1e-9)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_effectsize, proportions_ztest

from models.experiments import (
    AdjustMethod,
    ArmData,
    adjust_p_values,
    always_valid_p_value,
    benjamini_hochberg,
    cluster_robust_means,
    cohens_h,
    compare,
    confidence_sequence_half_width,
    effect_size_for_power,
    holm,
    mde_means,
    mde_two_proportions,
    mixture_rho,
    power_from_effect_size,
    relative_lift,
    sample_size_means,
    sample_size_two_proportions,
    srm_by_segment,
    srm_check,
    srm_statistic,
    two_proportions,
    welch,
)


def close(value: float) -> object:
    return pytest.approx(value, rel=1e-9, abs=1e-12)


PROPORTION_CASES = [
    (120, 1_000, 150, 1_010, 0.05),
    (48, 2_000, 31, 1_500, 0.10),
    (900, 3_000, 1_010, 3_100, 0.01),
    (3, 40, 9, 45, 0.05),
]


@pytest.mark.parametrize(("x_c", "n_c", "x_t", "n_t", "alpha"), PROPORTION_CASES)
def test_two_proportions_match_statsmodels(x_c: int, n_c: int, x_t: int, n_t: int, alpha: float) -> None:
    ours = two_proportions(x_c, n_c, x_t, n_t, alpha)
    z, p = proportions_ztest([x_t, x_c], [n_t, n_c])
    low, high = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="wald", compare="diff", alpha=alpha)
    assert float(ours.statistic) == close(z)
    assert float(ours.p_value) == close(p)
    assert float(ours.ci_low) == close(low)
    assert float(ours.ci_high) == close(high)
    assert float(ours.estimate) == close(x_t / n_t - x_c / n_c)


def test_two_proportions_vectorise_like_the_scalar_calls() -> None:
    cases = np.array(PROPORTION_CASES)[:, :4].T
    batch = two_proportions(cases[0], cases[1], cases[2], cases[3], 0.05)
    for i, (x_c, n_c, x_t, n_t, _) in enumerate(PROPORTION_CASES):
        one = two_proportions(x_c, n_c, x_t, n_t, 0.05)
        assert batch.p_value[i] == close(float(one.p_value))
        assert batch.ci_low[i] == close(float(one.ci_low))


@pytest.mark.parametrize(("seed", "alpha"), [(0, 0.05), (1, 0.1), (2, 0.01)])
def test_welch_matches_scipy(seed: int, alpha: float) -> None:
    rng = np.random.default_rng(seed)
    control = rng.lognormal(3.0, 1.0, 400)
    treatment = rng.lognormal(3.1, 1.3, 550)
    ours = welch(
        control.mean(),
        control.var(ddof=1),
        control.size,
        treatment.mean(),
        treatment.var(ddof=1),
        treatment.size,
        alpha,
    )
    ref = stats.ttest_ind_from_stats(
        treatment.mean(),
        treatment.std(ddof=1),
        treatment.size,
        control.mean(),
        control.std(ddof=1),
        control.size,
        equal_var=False,
    )
    full = stats.ttest_ind(treatment, control, equal_var=False)
    ci = full.confidence_interval(confidence_level=1 - alpha)
    assert float(ours.statistic) == close(ref.statistic)
    assert float(ours.p_value) == close(ref.pvalue)
    assert float(ours.df) == close(full.df)
    assert float(ours.ci_low) == close(ci.low)
    assert float(ours.ci_high) == close(ci.high)


def test_relative_lift_is_gbstats_delta_method() -> None:
    # gbstats: Var = s_t²/(n_t m_c²) + s_c² m_t²/(n_c m_c⁴), interval on t(Welch df)
    m_c, s2_c, n_c, m_t, s2_t, n_t = 10.0, 30.0, 500, 11.0, 42.0, 480
    var = s2_t / (n_t * m_c**2) + s2_c * m_t**2 / (n_c * m_c**4)
    df = (s2_c / n_c + s2_t / n_t) ** 2 / ((s2_t / n_t) ** 2 / (n_t - 1) + (s2_c / n_c) ** 2 / (n_c - 1))
    ours = relative_lift(m_c, s2_c / n_c, m_t, s2_t / n_t, 0.05, df)
    half = stats.t.ppf(0.975, df) * math.sqrt(var)
    assert float(ours.estimate) == close(0.1)
    assert float(ours.std_error) == close(math.sqrt(var))
    assert float(ours.ci_low) == close(0.1 - half)
    assert float(ours.ci_high) == close(0.1 + half)


@pytest.mark.parametrize(
    ("counts", "shares"),
    [
        ({"a": 5_100, "b": 4_900}, {"a": 0.5, "b": 0.5}),
        ({"a": 1_000, "b": 2_100, "c": 1_900}, {"a": 0.2, "b": 0.4, "c": 0.4}),
        ({"a": 950, "b": 50}, {"a": 95, "b": 5}),
    ],
)
def test_srm_matches_scipy_chisquare(counts: dict[str, int], shares: dict[str, float]) -> None:
    total = sum(counts.values())
    weight = sum(shares.values())
    observed = [counts[a] for a in shares]
    expected = [total * shares[a] / weight for a in shares]
    ref = stats.chisquare(observed, expected)
    ours = srm_check(counts, shares)
    assert ours.chi2 == close(ref.statistic)
    assert ours.p_value == close(ref.pvalue)
    assert ours.mismatch == (ref.pvalue < 0.001)
    chi2, p = srm_statistic(np.array([observed, observed]), list(shares.values()))
    assert chi2.tolist() == [close(ref.statistic)] * 2 and p.tolist() == [close(ref.pvalue)] * 2


def test_srm_flags_a_real_mismatch_and_says_so() -> None:
    result = srm_check({"control": 5_300, "treatment": 4_700}, {"control": 0.5, "treatment": 0.5})
    assert result.mismatch and result.chi2 == 36.0 and result.p_value < 1e-8
    assert "Sample ratio mismatch" in result.message and "5,300" in result.message
    quiet = srm_check({"control": 5_010, "treatment": 4_990}, {"control": 0.5, "treatment": 0.5})
    assert not quiet.mismatch and "match" in quiet.message
    empty = srm_check({"control": 0, "treatment": 0}, {"control": 0.5, "treatment": 0.5})
    assert not empty.mismatch and empty.p_value == 1.0 and "No leads" in empty.message


def test_srm_by_segment_checks_each_segment_against_scipy() -> None:
    shares = {"control": 0.5, "treatment": 0.5}
    segments = {"web": {"control": 2_000, "treatment": 2_250}, "partner": {"control": 300}}
    results = srm_by_segment(segments, shares)
    assert results["web"].p_value == close(stats.chisquare([2_000, 2_250]).pvalue)
    assert results["partner"].observed == {"control": 300, "treatment": 0} and results["partner"].mismatch
    with pytest.raises(ValueError, match="arms"):
        srm_by_segment({"web": {"control": 1, "ghost": 2}}, shares)
    with pytest.raises(ValueError, match="positive"):
        srm_check({"a": 1, "b": 2}, {"a": 0.0, "b": 1.0})


P_FAMILIES = [
    [0.01, 0.04, 0.03, 0.2, 0.5],
    [0.001, 0.001, 0.02, 0.049, 0.9, 0.96, 0.04],
    [0.3, 0.6, 0.9],
    list(np.random.default_rng(3).uniform(0, 0.1, 12)),
]


@pytest.mark.parametrize("p_values", P_FAMILIES)
@pytest.mark.parametrize(("method", "ours"), [("holm", holm), ("fdr_bh", benjamini_hochberg)])
def test_multiple_comparisons_match_statsmodels(
    p_values: list[float], method: AdjustMethod, ours: Callable[[list[float]], np.ndarray]
) -> None:
    reject, corrected, _, _ = multipletests(p_values, alpha=0.05, method=method)
    assert ours(p_values).tolist() == [close(c) for c in corrected]
    labelled = adjust_p_values({(f"metric{i}", "arm"): p for i, p in enumerate(p_values)}, method, 0.05)
    assert [r.reject for r in labelled.values()] == reject.tolist()
    assert [r.adjusted for r in labelled.values()] == [close(c) for c in corrected]


def test_adjust_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="within"):
        holm([0.1, 1.2])
    with pytest.raises(ValueError, match="unknown method"):
        adjust_p_values({"a": 0.1}, "bonferroni")  # type: ignore[arg-type]


POWER_CASES = [
    (0.10, 0.12, 0.05, 0.8, 1.0),
    (0.05, 0.06, 0.05, 0.9, 1.0),
    (0.2, 0.15, 0.01, 0.9, 0.5),
    (0.3, 0.33, 0.1, 0.7, 3.0),
]


@pytest.mark.parametrize(("p_c", "p_t", "alpha", "power", "ratio"), POWER_CASES)
def test_power_planner_matches_statsmodels(p_c: float, p_t: float, alpha: float, power: float, ratio: float) -> None:
    h = proportion_effectsize(p_t, p_c)
    assert cohens_h(p_c, p_t) == close(h)
    reference = NormalIndPower()
    assert power_from_effect_size(h, 2_500, alpha, ratio) == close(reference.power(h, 2_500, alpha, ratio))
    plan = sample_size_two_proportions(p_c, p_t, alpha, power, ratio)
    assert plan.n_control == close(reference.solve_power(effect_size=h, alpha=alpha, power=power, ratio=ratio))
    assert plan.n_treatment == close(plan.n_control * ratio)
    assert plan.leads_control == math.ceil(plan.n_control) and plan.total == plan.leads_control + plan.leads_treatment


@pytest.mark.parametrize(("n_c", "alpha", "power", "ratio"), [(3_000, 0.05, 0.8, 1.5), (800, 0.01, 0.9, 1.0)])
def test_minimum_detectable_effect_solves_statsmodels_power_equation(
    n_c: float, alpha: float, power: float, ratio: float
) -> None:
    reference = NormalIndPower()
    d = effect_size_for_power(n_c, alpha, power, ratio)
    # our root is exact on statsmodels' own power function; its solve_power stops at ~1e-6
    assert reference.power(d, n_c, alpha, ratio) == close(power)
    solved = reference.solve_power(effect_size=None, nobs1=n_c, alpha=alpha, power=power, ratio=ratio)
    assert d == pytest.approx(solved, rel=1e-5)
    mde = mde_two_proportions(0.1, n_c, alpha, power, ratio)
    assert mde.absolute is not None and mde.relative is not None
    assert proportion_effectsize(0.1 + mde.absolute, 0.1) == close(d)
    assert mde.relative == close(mde.absolute / 0.1)
    means = mde_means(250.0, n_c, alpha, power, ratio, baseline=100.0)
    assert means.absolute == close(d * 250.0) and means.relative == close(d * 2.5)


def test_sample_size_for_means_and_refusals() -> None:
    plan = sample_size_means(5.0, 40.0, 0.05, 0.8)
    assert plan.n_control == close(NormalIndPower().solve_power(effect_size=5.0 / 40.0, alpha=0.05, power=0.8))
    assert plan.metric == "mean" and plan.effect == 5.0
    with pytest.raises(ValueError, match="effect of 0"):
        sample_size_two_proportions(0.1, 0.1)
    with pytest.raises(ValueError, match="power"):
        sample_size_means(1.0, 1.0, power=0.01)
    impossible = mde_two_proportions(0.99, 5)
    assert impossible.absolute is None and impossible.reason


def test_cluster_robust_variance_matches_statsmodels_ols_cluster() -> None:
    rng = np.random.default_rng(11)
    g_c, g_t = rng.integers(0, 30, 500), rng.integers(20, 50, 600)  # reps 20..29 serve both arms
    y_c = rng.normal(size=500) + 0.05 * g_c
    y_t = rng.normal(size=600) + 0.05 * g_t + 0.2
    ours = cluster_robust_means(y_c, g_c, y_t, g_t)
    x = np.column_stack([np.ones(1_100), np.r_[np.zeros(500), np.ones(600)]])
    fit = OLS(np.r_[y_c, y_t], x).fit(cov_type="cluster", cov_kwds={"groups": np.r_[g_c, g_t]})
    cov = fit.cov_params()
    assert ours.var_mean_control == close(cov[0, 0])
    assert ours.var_difference == close(cov[1, 1])
    assert ours.n_clusters == 50 and ours.n_shared_clusters == 10
    result = compare(ArmData("c", y_c, cluster=g_c), ArmData("t", y_t, cluster=g_t), metric="mean", sequential=False)
    low, high = fit.conf_int(alpha=0.05)[1]
    assert result.lift == close(fit.params[1])
    assert result.std_error == close(fit.bse[1])
    assert result.p_value == close(fit.pvalues[1])
    assert (result.ci_low, result.ci_high) == (close(low), close(high))


def test_compare_reports_the_reference_numbers() -> None:
    rng = np.random.default_rng(5)
    y_c = (rng.random(3_000) < 0.10).astype(float)
    y_t = (rng.random(3_100) < 0.12).astype(float)
    r = compare(ArmData("seed", y_c), ArmData("best_fit", y_t), sequential=False)
    x_c, x_t = int(y_c.sum()), int(y_t.sum())
    _, p = proportions_ztest([x_t, x_c], [3_100, 3_000])
    low, high = confint_proportions_2indep(x_t, 3_100, x_c, 3_000, method="wald")
    assert (r.p_value, r.ci_low, r.ci_high) == (close(p), close(low), close(high))
    revenue_c, revenue_t = rng.lognormal(5, 1, 800), rng.lognormal(5.1, 1, 900)
    m = compare(ArmData("seed", revenue_c), ArmData("best_fit", revenue_t), metric="mean", sequential=False)
    ref = stats.ttest_ind(revenue_t, revenue_c, equal_var=False)
    ci = ref.confidence_interval()
    assert (m.p_value, m.ci_low, m.ci_high) == (close(ref.pvalue), close(ci.low), close(ci.high))


def test_confidence_sequence_is_the_documented_formula() -> None:
    alpha, n_star, n, var, est = 0.05, 6_000.0, 2_500.0, 4e-5, 0.011
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / n_star)
    assert mixture_rho(alpha, n_star) == close(rho)
    s2 = var * n
    a = n * rho**2 + 1
    half = math.sqrt(s2) * math.sqrt(2 * a / (n**2 * rho**2) * math.log(math.sqrt(a) / alpha))
    assert float(confidence_sequence_half_width(var, n, alpha, n_star)) == close(half)
    # the always-valid p-value is exactly alpha where the sequence touches 0 ...
    assert float(always_valid_p_value(half, var, n, alpha, n_star)) == close(alpha)
    # ... below alpha exactly when 0 is outside, and it agrees with its closed form
    p = float(always_valid_p_value(est, var, n, alpha, n_star))
    assert p == close(min(1.0, math.sqrt(a) * math.exp(-(n**2) * rho**2 * est**2 / (2 * s2 * a))))
    assert (p < alpha) == (abs(est) > half)
    # wider than the fixed-horizon interval; at n = n* the tuning for n* beats tuning for another size
    assert half > stats.norm.ppf(0.975) * math.sqrt(var)
    widths = [float(confidence_sequence_half_width(var, n_star, alpha, k)) for k in (3_000, 6_000, 12_000)]
    assert widths[1] == min(widths)


def test_always_valid_p_value_agrees_with_the_sequence_everywhere() -> None:
    rng = np.random.default_rng(9)
    est = rng.normal(0, 0.02, 5_000)
    var = rng.uniform(1e-5, 1e-4, 5_000)
    n = rng.integers(100, 20_000, 5_000)
    p = always_valid_p_value(est, var, n, 0.05, 5_000)
    half = confidence_sequence_half_width(var, n, 0.05, 5_000)
    assert np.array_equal(p < 0.05, np.abs(est) > half)
    assert np.all((p > 0) & (p <= 1))
