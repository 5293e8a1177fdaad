"""The off-policy estimators: identities, intervals against scipy, explicit not-valid results."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats
from sklearn.base import clone

from models.ope import (
    ESTIMATOR_NAMES,
    ClippedDR,
    DirectMethod,
    DoublyRobust,
    InversePropensity,
    LoggedData,
    RewardModel,
    SelfNormalisedDR,
    SelfNormalisedIPS,
    TargetData,
    compare,
    cross_fit,
    make_estimator,
    paired_difference,
    same_destination,
    self_normalised_weights,
    unsupported_destinations,
)


def bandit(n: int = 4_000, seed: int = 0) -> tuple[LoggedData, TargetData, TargetData]:
    """A 3-action contextual bandit: uniform logging, two deterministic targets, a noisy model."""
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    means = np.column_stack([0.1 + 0.2 * x, 0.3 - 0.1 * x, np.full(n, 0.15)])
    action = rng.integers(0, 3, n)
    reward = (rng.random(n) < means[np.arange(n), action]).astype(float)
    model = np.clip(means + rng.normal(0, 0.03, means.shape), 0, 1)
    logged = LoggedData(reward, np.full(n, 1 / 3), model[np.arange(n), action], n_excluded_not_matured=100)
    targets = []
    for name, choice in (("a", np.zeros(n, dtype=int)), ("b", (x > 0.5).astype(int))):
        targets.append(TargetData(name, (action == choice).astype(float), model[np.arange(n), choice]))
    return logged, targets[0], targets[1]


def test_dr_with_a_zero_reward_model_equals_ips() -> None:
    logged, target, _ = bandit()
    zero_log = LoggedData(logged.reward, logged.propensity, np.zeros(logged.n))
    zero_target = TargetData("a", target.probability_of_logged, np.zeros(logged.n))
    dr = DoublyRobust().estimate(zero_log, zero_target).interval
    ips = InversePropensity().estimate(zero_log, zero_target).interval
    assert dr is not None and ips is not None
    assert (dr.value, dr.ci_low, dr.ci_high) == pytest.approx((ips.value, ips.ci_low, ips.ci_high), abs=1e-15)
    sndr = SelfNormalisedDR().estimate(zero_log, zero_target).interval
    snips = SelfNormalisedIPS().estimate(zero_log, zero_target).interval
    assert sndr is not None and snips is not None
    assert sndr.value == pytest.approx(snips.value) and sndr.std_error == pytest.approx(snips.std_error)


def test_evaluating_the_logging_policy_gives_the_observed_mean() -> None:
    logged, _, _ = bandit()
    itself = TargetData("logging", np.asarray(logged.propensity), logged.q_logged)
    for estimator in (InversePropensity(), SelfNormalisedIPS()):
        interval = estimator.estimate(logged, itself).interval
        assert interval is not None and interval.value == pytest.approx(logged.reward.mean(), abs=1e-12)
    assert InversePropensity().estimate(logged, itself).diagnostics.mean_weight == pytest.approx(1.0)


def test_self_normalised_weights_sum_to_one() -> None:
    logged, target, other = bandit()
    for t in (target, other):
        assert self_normalised_weights(logged, t).sum() == pytest.approx(1.0, abs=1e-12)
    assert SelfNormalisedIPS().estimate(logged, target).interval is not None


def test_intervals_match_scipy_normal_intervals() -> None:
    logged, a, b = bandit()
    w_a, w_b = a.probability_of_logged * 3, b.probability_of_logged * 3
    for target, w in ((a, w_a), (b, w_b)):
        phi = w * logged.reward
        interval = InversePropensity().estimate(logged, target).interval
        low, high = stats.norm.interval(0.95, loc=phi.mean(), scale=stats.sem(phi))
        assert interval is not None and (interval.ci_low, interval.ci_high) == pytest.approx((low, high), rel=1e-12)
    # The paired difference is a one-sample interval on the per-lead differences.
    first, other = InversePropensity().estimate(logged, a), InversePropensity().estimate(logged, b)
    diff = paired_difference(first, other).interval
    delta = (w_b - w_a) * logged.reward
    low, high = stats.norm.interval(0.95, loc=delta.mean(), scale=stats.sem(delta))
    assert diff is not None and (diff.ci_low, diff.ci_high) == pytest.approx((low, high), rel=1e-12)
    dr = DoublyRobust(confidence=0.9).estimate(logged, b).interval
    assert a.q_target is not None and b.q_target is not None and logged.q_logged is not None
    phi = b.q_target + w_b * (logged.reward - logged.q_logged)
    assert dr is not None and dr.ci_high - dr.value == pytest.approx(stats.norm.ppf(0.95) * stats.sem(phi))


def test_self_normalised_delta_method_agrees_with_the_bootstrap() -> None:
    logged, _, b = bandit(n=3_000, seed=3)
    w = b.probability_of_logged * 3
    interval = SelfNormalisedIPS().estimate(logged, b).interval
    boot = stats.bootstrap(
        (w, logged.reward),
        lambda ww, rr: (ww * rr).sum() / ww.sum(),
        paired=True,
        n_resamples=2_000,
        method="percentile",
        rng=np.random.default_rng(0),
    )
    assert interval is not None
    assert interval.std_error == pytest.approx(boot.standard_error, rel=0.1)


def test_estimates_are_unbiased_on_a_known_bandit() -> None:
    """Over 200 replications, each estimator's mean error is within 4 standard errors of 0."""
    truth = float(np.mean([0.1 + 0.2 * x if x <= 0.5 else 0.3 - 0.1 * x for x in np.linspace(0, 1, 200_001)]))
    errors: dict[str, list[float]] = {}
    for seed in range(200):
        logged, _, b = bandit(n=1_000, seed=seed)
        for name in ("ips", "snips", "dr", "sndr"):
            interval = make_estimator(name).estimate(logged, b).interval
            assert interval is not None
            errors.setdefault(name, []).append(interval.value - truth)
    for name, e in errors.items():
        assert abs(np.mean(e)) < 4 * np.std(e) / np.sqrt(len(e)), name


def test_no_propensities_leave_only_the_direct_method_and_say_why() -> None:
    logged, a, b = bandit()
    blind = LoggedData(logged.reward, None, logged.q_logged)
    result = compare(blind, [a, b])
    assert result.available == ("dm",)
    assert set(result.unavailable) == {"ips", "snips", "dr", "sndr", "clipped_dr"}
    assert all("only the direct method (dm) is available" in r for r in result.unavailable.values())
    row = result.policies[1]
    assert row.estimates["dm"].valid and row.diff_vs_first["dm"].valid
    assert not row.diff_vs_first["dr"].valid and "propensities" in (row.diff_vs_first["dr"].reason or "")
    payload = row.to_json()
    assert payload["estimates"]["ips"] == {
        "valid": False,
        "value": None,
        "ci_low": None,
        "ci_high": None,
        "reason": result.unavailable["ips"],
    }


def test_broken_logs_and_missing_support_are_explicit() -> None:
    logged, a, _ = bandit()
    zero = LoggedData(logged.reward, np.where(np.arange(logged.n) == 5, 0.0, 1 / 3), logged.q_logged)
    assert "1 logged decision(s) have a missing, zero or >1 propensity" in (
        InversePropensity().estimate(zero, a).reason or ""
    )
    off = TargetData("a", a.probability_of_logged, a.q_target, np.where(np.arange(logged.n) % 10 == 0, 1.0, 0.0))
    ips, dr = InversePropensity().estimate(logged, off), DoublyRobust().estimate(logged, off)
    assert not ips.valid and "10.0% of its probability on destinations the log never tried" in (ips.reason or "")
    assert dr.valid and any("off the log's support" in w for w in dr.warnings)
    never = TargetData("never", np.zeros(logged.n), a.q_target)
    assert "no logged decision is one the policy could make" in (DoublyRobust().estimate(logged, never).reason or "")
    empty = LoggedData(np.zeros(0), np.zeros(0), np.zeros(0))
    assert (
        DirectMethod().estimate(empty, TargetData("x", np.zeros(0), np.zeros(0))).reason
        == "no matured leads to evaluate"
    )
    no_model = LoggedData(logged.reward, logged.propensity)
    assert "no reward model" in (
        DoublyRobust().estimate(no_model, TargetData("a", a.probability_of_logged)).reason or ""
    )
    with pytest.raises(ValueError, match="unknown 'bogus'"):
        make_estimator("bogus")
    with pytest.raises(ValueError, match="expected shape"):
        LoggedData(np.zeros(3), np.zeros(2))


def test_diagnostics_and_clipping() -> None:
    logged, _, b = bandit()
    d = InversePropensity().estimate(logged, b).diagnostics
    w = b.probability_of_logged * 3
    assert d.effective_sample_size == pytest.approx(w.sum() ** 2 / (w**2).sum())
    assert (d.mean_weight, d.max_weight, d.share_matched) == pytest.approx((w.mean(), 3.0, (w > 0).mean()))
    assert d.n_excluded_not_matured == 100 and d.share_excluded_not_matured == pytest.approx(100 / 4_100)
    wide, dr = ClippedDR(clip=10.0).estimate(logged, b), DoublyRobust().estimate(logged, b)
    assert wide.interval == dr.interval and wide.diagnostics.share_clipped == 0.0
    tight = ClippedDR(clip=2.0).estimate(logged, b)
    assert tight.diagnostics.share_clipped == pytest.approx((w > 2).mean())
    assert tight.interval is not None and dr.interval is not None and tight.interval.std_error < dr.interval.std_error
    assert set(ESTIMATOR_NAMES) == {make_estimator(n).name for n in ESTIMATOR_NAMES}
    # The mean weight checks the log: right propensities pass, propensities off by half do not.
    assert not d.propensities_suspect
    halved = LoggedData(logged.reward, np.asarray(logged.propensity) / 2, logged.q_logged)
    wrong = DoublyRobust().estimate(halved, b)
    assert wrong.diagnostics.propensities_suspect
    assert any("logged propensities look wrong" in w for w in wrong.warnings)


def test_reward_model_follows_the_estimator_contract_and_cross_fits() -> None:
    rng = np.random.default_rng(1)
    n = 1_200
    frame = pl.DataFrame(
        {
            "region": rng.choice(np.array(["NA", "EMEA", None], dtype=object), n).tolist(),
            "employees": rng.integers(1, 5_000, n).astype(float),
            "team": rng.choice(["smb", "enterprise"], n).tolist(),
            "rep_id": rng.choice(np.array(["R1", "R2", None], dtype=object), n).tolist(),
        }
    )
    y = (rng.random(n) < np.where(frame["team"] == "smb", 0.3, 0.1)).astype(float)
    model = RewardModel(categorical=("region", "team", "rep_id"), numeric=("employees",), max_iter=20)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(ValueError, match="call fit before predict"):
        model.predict(frame)
    fitted = clone(model).fit(frame, y)
    assert fitted is not model and not hasattr(model, "model_")
    p = fitted.predict(frame)
    assert p.shape == (n,) and ((p >= 0) & (p <= 1)).all()
    assert abs(p[frame["team"] == "smb"].mean() - 0.3) < 0.05
    revenue = fitted.predict(frame)
    assert not clone(model).fit(frame, y * 1_000.0).binary_ and revenue.shape == (n,)
    # Cross-fitting: each lead's prediction comes from the model fitted on the other fold only.
    leads, logged = frame.select("region", "employees"), frame.select("team", "rep_id")
    target = logged.with_columns(pl.lit("smb").alias("team"))
    out = cross_fit(model, leads, logged, y, [target], folds=2, seed=4)
    other = out.fold == 1
    refit = clone(model).fit(frame.filter(pl.Series(other)), y[other])
    assert out.q_logged[~other] == pytest.approx(refit.predict(frame.filter(pl.Series(~other))))
    with pytest.raises(ValueError, match="at least 2"):
        cross_fit(model, leads, logged, y, [target], folds=1)


def test_destinations_match_on_team_and_rep_with_null_reps() -> None:
    logged = pl.DataFrame({"team": ["a", "a", "nurture", "b"], "rep_id": ["R1", "R2", None, None]})
    target = pl.DataFrame({"team": ["a", "a", "nurture", "b"], "rep_id": ["R1", "R1", None, "R3"]})
    assert same_destination(logged, target).tolist() == [1.0, 0.0, 1.0, 0.0]
    assert unsupported_destinations(logged, target).tolist() == [0.0, 0.0, 0.0, 1.0]
