"""The entry point the experiment lifecycle calls: decisions, CUPED, clusters, paths, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.experiments import (
    ArmData,
    compare,
    confidence_sequence_path,
    cuped,
    interference_risk,
    sample_size_two_proportions,
)


def conversions(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    return (rng.random(n) < p).astype(np.float64)


def test_clear_winner_is_named_and_a_aa_test_is_not() -> None:
    rng = np.random.default_rng(0)
    win = compare(ArmData("seed", conversions(rng, 6_000, 0.10)), ArmData("new", conversions(rng, 6_000, 0.14)))
    assert win.decision == "treatment better" and win.decision_basis == "sequential interval"
    assert win.sequential_ci_low is not None and win.sequential_ci_low > 0
    assert win.always_valid_p_value is not None and win.always_valid_p_value < 0.05
    assert win.sequential_ci_low < win.ci_low and win.ci_high < (win.sequential_ci_high or 0)
    assert win.relative_lift == pytest.approx(win.mean_treatment / win.mean_control - 1)
    same = compare(ArmData("seed", conversions(rng, 6_000, 0.10)), ArmData("copy", conversions(rng, 6_000, 0.10)))
    assert same.decision == "no difference detected"
    # a metric to push down (error rate): more is worse
    worse = compare(
        ArmData("seed", conversions(rng, 6_000, 0.10)),
        ArmData("new", conversions(rng, 6_000, 0.14)),
        higher_is_better=False,
        sequential=False,
    )
    assert worse.decision == "control better" and worse.decision_basis == "fixed-horizon test"


def test_to_json_is_plain_and_serialisable() -> None:
    rng = np.random.default_rng(1)
    score_c, score_t = rng.random(500), rng.random(500)
    r = compare(
        ArmData("a", conversions(rng, 500, 0.2), score_c),
        ArmData("b", conversions(rng, 500, 0.25), score_t),
        adjust=True,
        n_star=1_000,
    )
    out = r.to_json()
    assert json.loads(json.dumps(out)) == out
    assert all(isinstance(v, float | int | str | bool | list) or v is None for v in out.values())
    assert out["decision"] in ("treatment better", "control better", "no difference detected")
    assert isinstance(out["assumptions"], list) and any("lead score" in a for a in out["assumptions"])
    assert out["n_star"] == 1_000.0 and out["adjusted"] is True and "CUPED" in str(out["method"])


def test_cuped_is_the_pooled_slope_and_shrinks_the_interval() -> None:
    rng = np.random.default_rng(2)
    x_c, x_t = rng.beta(1, 3, 4_000), rng.beta(1, 3, 4_000)
    y_c = conversions(rng, 4_000, 0) + (rng.random(4_000) < x_c)
    y_t = (rng.random(4_000) < np.minimum(1, 1.1 * x_t)).astype(np.float64)
    fit = cuped(y_c, x_c, y_t, x_t)
    dx_c, dx_t = x_c - x_c.mean(), x_t - x_t.mean()
    theta = (dx_c @ (y_c - y_c.mean()) + dx_t @ (y_t - y_t.mean())) / (dx_c @ dx_c + dx_t @ dx_t)
    assert fit.theta == pytest.approx(theta, rel=1e-12)
    centre = np.r_[x_c, x_t].mean()
    assert np.allclose(fit.adjusted_control, y_c - theta * (x_c - centre))
    r = compare(ArmData("c", y_c, x_c), ArmData("t", y_t, x_t), adjust=True, sequential=True)
    assert r.adjusted_lift == pytest.approx((y_t.mean() - y_c.mean()) - theta * (x_t.mean() - x_c.mean()), rel=1e-12)
    assert r.variance_reduction is not None and r.variance_reduction > 0.1
    assert r.adjusted_ci_low is not None and r.adjusted_ci_high is not None
    assert r.adjusted_ci_high - r.adjusted_ci_low < r.ci_high - r.ci_low
    assert r.adjusted_sequential_ci_low is not None and r.sequential_ci_low is not None
    assert r.decision_basis == "sequential interval of the CUPED-adjusted lift"


def test_clustered_design_widens_the_interval_and_counts_clusters() -> None:
    rng = np.random.default_rng(3)
    reps = np.repeat(np.arange(40), 100)
    y = (rng.random(4_000) < 1 / (1 + np.exp(-(-2 + rng.normal(0, 0.7, 40)[reps])))).astype(np.float64)
    treated = np.isin(reps, rng.permutation(40)[:20])
    c, t = y[~treated], y[treated]
    lead_level = compare(ArmData("c", c), ArmData("t", t), sequential=True)
    clustered = compare(ArmData("c", c, cluster=reps[~treated]), ArmData("t", t, cluster=reps[treated]))
    assert clustered.n_clusters == 40 and "cluster-robust" in clustered.method
    assert clustered.ci_high - clustered.ci_low > lead_level.ci_high - lead_level.ci_low
    assert clustered.sequential_ci_low is not None and lead_level.sequential_ci_low is not None
    few = compare(
        ArmData("c", c[:500], cluster=reps[~treated][:500]), ArmData("t", t[:500], cluster=reps[treated][:500])
    )
    assert any("clusters" in w for w in few.warnings)


def test_interference_helper_speaks_plainly() -> None:
    shared = interference_risk("lead", reps_serve_both_arms=True)
    assert shared.at_risk and "both arms" in shared.message and "spill-over" in shared.message
    by_rep = interference_risk("rep", reps_serve_both_arms=False, n_clusters=12)
    assert not by_rep.at_risk and any("12 reps" in n for n in by_rep.notes)
    assert interference_risk("team", reps_serve_both_arms=True).at_risk
    assert not interference_risk("lead", reps_serve_both_arms=False).at_risk


def test_confidence_sequence_path_by_day_and_by_count() -> None:
    rng = np.random.default_rng(4)
    days_c, days_t = np.sort(rng.integers(1, 31, 3_000)), np.sort(rng.integers(1, 31, 3_000))
    control = ArmData("c", conversions(rng, 3_000, 0.10), time=days_c.astype(float))
    treatment = ArmData("t", conversions(rng, 3_000, 0.13), time=days_t.astype(float))
    plan = sample_size_two_proportions(0.10, 0.13)
    path = confidence_sequence_path(control, treatment, range(1, 31), n_star=plan.total)
    assert [p.n_control for p in path] == [int(np.sum(days_c <= d)) for d in range(1, 31)]
    widths = [(p.sequential_ci_high or 0) - (p.sequential_ci_low or 0) for p in path]
    assert widths[-1] < widths[0] / 3
    final = compare(control, treatment, n_star=plan.total)
    assert path[-1].sequential_ci_low == pytest.approx(final.sequential_ci_low, rel=1e-12)
    assert path[-1].always_valid_p_value == pytest.approx(final.always_valid_p_value, rel=1e-12)
    untimed = confidence_sequence_path(ArmData("c", control.y), ArmData("t", treatment.y), [100, 1_000, 3_000])
    assert [p.n_treatment for p in untimed] == [100, 1_000, 3_000]
    early = confidence_sequence_path(control, treatment, [0.0, 1.0], adjust=False)
    assert early[0].n_control == 0 and early[0].p_value == 1.0


def test_degenerate_inputs_give_explicit_results() -> None:
    tiny = compare(ArmData("c", np.array([1.0])), ArmData("t", np.array([0.0, 1.0])))
    assert tiny.decision == "no difference detected" and "at least 2" in tiny.warnings[0]
    zero = compare(ArmData("c", np.zeros(200)), ArmData("t", np.r_[np.zeros(190), np.ones(10)]))
    assert zero.relative_lift is None and any("undefined" in w for w in zero.warnings)
    flat = compare(ArmData("c", np.zeros(50)), ArmData("t", np.zeros(60)))
    assert flat.p_value == 1.0 and flat.always_valid_p_value == 1.0 and flat.decision == "no difference detected"


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="0/1"):
        compare(ArmData("c", np.array([0.0, 2.0])), ArmData("t", np.array([0.0, 1.0])))
    with pytest.raises(ValueError, match="covariate"):
        compare(ArmData("c", np.zeros(5)), ArmData("t", np.ones(5)), adjust=True)
    with pytest.raises(ValueError, match="both arms"):
        compare(ArmData("c", np.zeros(5), cluster=np.arange(5)), ArmData("t", np.ones(5)))
    with pytest.raises(ValueError, match="finite"):
        compare(ArmData("c", np.array([np.nan, 1.0])), ArmData("t", np.ones(5)), metric="mean")
    with pytest.raises(ValueError, match="one value per lead"):
        ArmData("c", np.zeros(5), covariate=np.zeros(4))
