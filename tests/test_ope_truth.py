"""Off-policy estimates against the simulated company's ground truth.

The estimand is the **no-interference** value (:meth:`GroundTruth.counterfactual_probability`):
each lead's true probability at the policy's destination with the rep-day loads as logged. The
deployed value (the policy's own loads) is reported by ``benchmarks/ope_coverage.py``, not
asserted: estimators built on logged outcomes cannot see a change in loads.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from models.ope import InversePropensity, LoggedData, TargetData
from models.ope.truth_check import TruthCheck, check_against_truth, differences_vs_truth
from models.policy import Policy, Roster
from models.simulation import SimulatedCompany, SimulationConfig, simulate_company
from pipelines.policies import SHIPPED_DIR, read_file
from pipelines.replay import TruthFit, TruthScorer

SHIPPED = ("seed", "best_fit", "territory", "account_owner", "round_robin")


def bound(company: SimulatedCompany, names: tuple[str, ...]) -> dict[str, Policy]:
    roster = Roster.from_frames(company.reps, company.teams, company.absences, company.accounts)
    scorer, fit = TruthScorer(company), TruthFit(company)
    return {n: Policy(read_file(SHIPPED_DIR / f"{n}.yaml").spec, roster, scorer=scorer, fit=fit) for n in names}


@pytest.fixture(scope="module")
def company() -> SimulatedCompany:
    return simulate_company(SimulationConfig(n_leads=20_000, seed=11))


@pytest.fixture(scope="module")
def check(company: SimulatedCompany) -> TruthCheck:
    return check_against_truth(company, bound(company, SHIPPED), folds=3, max_iter=50, max_leaf_nodes=15)


def test_counterfactual_probability_moves_one_lead_alone(company: SimulatedCompany) -> None:
    leads, logged = company.leads.head(3_000), company.decisions.head(3_000)
    truth = company.truth
    assert truth.counterfactual_probability(leads, logged, logged) == pytest.approx(
        truth.conversion_probability(leads, logged), abs=0
    )
    # Moving a single lead: the whole routing's loads are the logged loads plus that lead, which
    # is exactly the no-interference definition for that lead.
    busiest = logged.filter(pl.col("rep_id").is_not_null())["rep_id"].mode()[0]
    row = int(np.flatnonzero((logged["rep_id"] != busiest).fill_null(True).to_numpy())[0])
    moved = logged.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(busiest)).otherwise(pl.col("rep_id")).alias("rep_id")
    )
    alone = truth.counterfactual_probability(leads, moved, logged)
    assert alone[row] == pytest.approx(truth.conversion_probability(leads, moved)[row], rel=1e-12)
    # Sending every lead to that rep overloads them: the deployed value falls far below the
    # no-interference value, which only charges each lead its own move.
    everyone = logged.with_columns(pl.lit(busiest).alias("rep_id"))
    deployed = truth.conversion_probability(leads, everyone).mean()
    assert deployed < 0.8 * truth.counterfactual_probability(leads, everyone, logged).mean()


def test_shipped_policies_are_estimated_within_tolerance(check: TruthCheck) -> None:
    """Tolerances: IPS, SNIPS, DR, SNDR within 3.5 standard errors of the no-interference truth
    (a 1-in-2000 miss each if the interval were exact); clipped DR within 3.5 SE + 0.02 (its
    clipping bias); DM within 0.05 (its interval ignores the model's bias, so none is claimed)."""
    for row in check.comparison.policies:
        truth = check.no_interference[row.policy]
        for name, estimate in row.estimates.items():
            assert estimate.valid, (row.policy, name, estimate.reason)
            i = estimate.interval
            assert i is not None
            slack = {"dm": 0.05, "clipped_dr": 3.5 * i.std_error + 0.02}.get(name, 3.5 * i.std_error)
            assert abs(i.value - truth) <= slack, (row.policy, name, i.value, truth)
        for name, diff in differences_vs_truth(check, row.policy).items():
            if row.policy != check.comparison.policies[0].policy and name in ("ips", "snips", "dr", "sndr"):
                se = (diff.ci_high - diff.ci_low) / (2 * stats.norm.ppf(0.975))
                assert abs(diff.value - diff.truth) <= 3.5 * se, (row.policy, name)
        diag = row.estimates["dr"].diagnostics
        assert diag.support_deficit is not None and diag.support_deficit < 0.01
        assert diag.share_excluded_not_matured == pytest.approx(
            check.comparison.policies[0].estimates["dr"].diagnostics.share_excluded_not_matured
        )
        assert 0.0 < (diag.share_matched or 0.0) < 0.3  # deterministic targets: sparse rep-level weights


def test_evaluating_the_logging_policy_itself(company: SimulatedCompany) -> None:
    matured = company.matured()
    mask = company.leads["lead_id"].is_in(matured["lead_id"].implode()).to_numpy()
    reward = matured["converted"].to_numpy().astype(float)
    propensity = company.decisions["propensity"].to_numpy()[mask]
    logged = LoggedData(reward, propensity)
    # pi(a_i|x_i) = mu(a_i|x_i) from the policy itself: every weight is 1, IPS is the observed mean.
    exact = company.logging_policy.probability_of(company.leads, company.decisions)[mask]
    ips = InversePropensity().estimate(logged, TargetData("legacy", exact)).interval
    assert ips is not None and ips.value == pytest.approx(reward.mean(), rel=1e-9)
    # A fresh draw of the logging policy as the candidate: IPS covers the observed mean.
    redraw = company.logging_policy.sample(company.leads, np.random.default_rng(5))
    same = (
        (redraw["team"] == company.decisions["team"]) & redraw["rep_id"].eq_missing(company.decisions["rep_id"])
    ).to_numpy()[mask]
    drawn = InversePropensity().estimate(logged, TargetData("redraw", same.astype(float))).interval
    assert drawn is not None and drawn.ci_low <= reward.mean() <= drawn.ci_high


def test_paired_difference_coverage_over_seeds() -> None:
    """DR's 95% interval of the paired difference covers the no-interference truth.

    24 seeds × 3,000 leads × 2 candidates (best_fit, territory) against the seed policy: 48
    intervals, two per seed (not independent within a seed). Threshold 0.90: if the true coverage
    were 0.95, P(observed < 0.90) = P(Bin(48, 0.95) <= 42) ≈ 0.04 — the binomial slack we allow
    for a nominal 0.95; the benchmark (100 seeds × 10,000 leads × 4 candidates) pins it tighter.
    """
    seeds, names = 24, ("seed", "best_fit", "territory")
    covered: list[bool] = []
    for seed in range(seeds):
        company = simulate_company(SimulationConfig(n_leads=3_000, seed=500 + seed))
        check = check_against_truth(
            company, bound(company, names), estimators=("dr",), folds=2, seed=seed, max_iter=30, max_leaf_nodes=15
        )
        covered += [differences_vs_truth(check, n)["dr"].covered for n in names[1:]]
    coverage = float(np.mean(covered))
    assert stats.binom.cdf(42, 48, 0.95) < 0.05
    assert coverage >= 0.90, coverage
