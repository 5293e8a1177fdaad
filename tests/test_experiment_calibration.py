"""Small seeded Monte Carlo: error rates and coverage of the experiment statistics against a known truth.

The full-size run is ``benchmarks/ab_calibration.py``. Tolerances are Monte Carlo ones: a rate
within 4 binomial standard errors of its target (or on the right side of a bound).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.experiments.calibration import (
    DailyLooks,
    Rate,
    cluster_study,
    cuped_study,
    daily_looks_mean,
    daily_looks_proportion,
    srm_false_alarms,
)

ALPHA = 0.05


def tolerance(p: float, n: int, k: float = 4.0) -> float:
    return k * math.sqrt(p * (1 - p) / n)


def near(rate: Rate, target: float) -> bool:
    return abs(rate.rate - target) <= tolerance(target, rate.trials)


def at_most(rate: Rate, bound: float) -> bool:
    return rate.rate <= bound + tolerance(bound, rate.trials)


def at_least(rate: Rate, bound: float) -> bool:
    return rate.rate >= bound - tolerance(bound, rate.trials)


@pytest.fixture(scope="module")
def aa() -> DailyLooks:
    return daily_looks_proportion(np.random.default_rng(100), 20_000, 20, 200, 0.1, 0.1, ALPHA)


def test_aa_false_positive_rate_is_alpha_at_one_look(aa: DailyLooks) -> None:
    assert near(aa.final_reject, ALPHA), aa.final_reject


def test_daily_peeking_breaks_the_fixed_test_but_not_the_sequence(aa: DailyLooks) -> None:
    assert aa.naive_any_reject.rate > 3 * ALPHA, aa.naive_any_reject
    assert at_most(aa.sequential_any_reject, ALPHA), aa.sequential_any_reject


def test_intervals_cover_a_real_effect() -> None:
    looks = daily_looks_proportion(np.random.default_rng(101), 20_000, 20, 200, 0.10, 0.12, ALPHA)
    assert at_least(looks.fixed_covered, 1 - ALPHA), looks.fixed_covered
    assert at_least(looks.relative_covered, 1 - ALPHA), looks.relative_covered
    assert at_least(looks.sequential_covered, 1 - ALPHA), looks.sequential_covered
    # the effect is there to be found; always-valid inference pays for its guarantee with power
    assert looks.final_reject.rate > 0.4 and looks.sequential_any_reject.rate < looks.final_reject.rate


def test_revenue_per_lead_welch_and_sequence_are_calibrated() -> None:
    aa = daily_looks_mean(np.random.default_rng(102), 2_000, 15, 100, 0.1, 0.1, alpha=ALPHA)
    assert near(aa.final_reject, ALPHA), aa.final_reject
    assert at_most(aa.sequential_any_reject, ALPHA) and aa.naive_any_reject.rate > 2 * ALPHA
    real = daily_looks_mean(np.random.default_rng(103), 2_000, 15, 100, 0.1, 0.13, alpha=ALPHA)
    assert at_least(real.fixed_covered, 1 - ALPHA) and at_least(real.sequential_covered, 1 - ALPHA)


def test_srm_false_alarm_rate_is_its_alpha() -> None:
    rng = np.random.default_rng(104)
    for shares in ([0.5, 0.5], [0.2, 0.4, 0.4]):
        alarms = srm_false_alarms(rng, 300_000, 6_000, shares, 0.001)
        assert near(alarms, 0.001), (shares, alarms)


def test_cuped_is_unbiased_and_narrower() -> None:
    study = cuped_study(np.random.default_rng(105), 600, 2_000, lift=0.1, alpha=ALPHA)
    # standard error of a mean of 600 estimates whose sd is about width / 3.92
    se_of_bias = study.raw_mean_width / 3.92 / math.sqrt(600)
    assert abs(study.raw_mean_bias) < 4 * se_of_bias and abs(study.adjusted_mean_bias) < 4 * se_of_bias
    assert study.adjusted_mean_width < 0.95 * study.raw_mean_width
    assert study.mean_variance_reduction > 0.1
    assert at_least(study.adjusted_covered, 1 - ALPHA), study.adjusted_covered


def test_rep_randomisation_needs_cluster_robust_intervals() -> None:
    study = cluster_study(np.random.default_rng(106), 600, alpha=ALPHA)
    assert study.naive_reject.rate > 3 * ALPHA, study.naive_reject
    assert at_most(study.robust_reject, ALPHA), study.robust_reject
    assert at_least(study.robust_covered, 1 - ALPHA) and study.naive_covered.rate < 0.85
