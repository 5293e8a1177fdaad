"""Check the estimators against the simulated company's ground truth.

For each candidate policy the truth gives two values on the matured leads:

* ``no_interference``: each lead's true probability at the policy's destination with the rep-day
  loads as logged (:meth:`GroundTruth.counterfactual_probability`) — the estimand the
  estimators target, used for coverage;
* ``deployed``: the probability under the policy's own routing, its own loads included
  (:meth:`GroundTruth.conversion_probability`) — reported, not asserted: off-policy estimates
  built on logged outcomes cannot see a change in loads.

Support is exact here: a destination is unsupported when the logging policy's full distribution
(:meth:`LoggingPolicy.probabilities`) gives it probability 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from models.ope.compare import Comparison, compare, offline_inputs
from models.ope.reward import RewardModel, lead_features
from models.ope.types import ESTIMATOR_NAMES
from models.policy import Policy
from models.simulation import SimulatedCompany

DESTINATION = ("team", "rep_id")


@dataclass(frozen=True)
class TruthCheck:
    """The comparison and, per policy, the true values on the same matured leads."""

    comparison: Comparison
    no_interference: dict[str, float]
    deployed: dict[str, float]
    observed_mean: float


def replayed(company: SimulatedCompany, policy: Policy, seed: int = 0) -> pl.DataFrame:
    """The policy's decisions for every lead, in the company's lead order (``lead_id, team, rep_id``)."""
    decisions = policy.replay(company.leads, rng=np.random.default_rng(seed)).decisions
    order = company.leads.select("lead_id")
    return order.join(decisions.select("lead_id", *DESTINATION), on="lead_id", how="left", maintain_order="left")


def logging_support(company: SimulatedCompany, decisions: pl.DataFrame) -> np.ndarray:
    """1.0 where the logging policy gave the decision's destination probability 0."""
    return np.asarray(company.logging_policy.probability_of(company.leads, decisions) <= 0, dtype=np.float64)


def _model(
    features: tuple[pl.DataFrame, tuple[str, ...], tuple[str, ...]], seed: int, iters: int, leaves: int
) -> RewardModel:
    _, categorical, numeric = features
    return RewardModel(
        categorical=(*categorical, *DESTINATION),
        numeric=numeric,
        max_iter=iters,
        max_leaf_nodes=leaves,
        random_state=seed,
    )


def check_against_truth(
    company: SimulatedCompany,
    policies: Mapping[str, Policy | pl.DataFrame],
    *,
    estimators: Sequence[str] = ESTIMATOR_NAMES,
    folds: int = 5,
    seed: int = 0,
    max_iter: int = 100,
    max_leaf_nodes: int = 31,
) -> TruthCheck:
    """Evaluate ``policies`` (bound policies, or decisions frames aligned with the leads) on the
    company's matured log and compute their true values on the same leads."""
    matured_ids = company.matured().select("lead_id", "converted")
    flags = company.leads.select("lead_id").join(matured_ids, on="lead_id", how="left", maintain_order="left")
    mask = np.asarray(flags["converted"].is_not_null().to_numpy(), dtype=bool)
    reward = np.asarray(flags["converted"].fill_null(False).to_numpy(), dtype=np.float64)[mask]
    logged = company.decisions.select("lead_id", *DESTINATION)
    decisions = {
        name: replayed(company, p, seed) if isinstance(p, Policy) else p.select("lead_id", *DESTINATION)
        for name, p in policies.items()
    }
    truth = company.truth
    no_interference, deployed = {}, {}
    for name, d in decisions.items():
        no_interference[name] = float(truth.counterfactual_probability(company.leads, d, logged)[mask].mean())
        deployed[name] = float(truth.conversion_probability(company.leads, d)[mask].mean())
    features = lead_features(company.leads.filter(pl.Series(mask)))
    log, targets = offline_inputs(
        features[0],
        logged.filter(pl.Series(mask)),
        reward,
        {name: d.filter(pl.Series(mask)) for name, d in decisions.items()},
        propensity=company.decisions["propensity"].to_numpy()[mask],
        model=_model(features, seed, max_iter, max_leaf_nodes),
        unsupported={name: logging_support(company, d)[mask] for name, d in decisions.items()},
        n_excluded_not_matured=int((~mask).sum()),
        folds=folds,
        seed=seed,
    )
    comparison = compare(log, targets, estimators)
    return TruthCheck(comparison, no_interference, deployed, float(reward.mean()) if reward.size else 0.0)


@dataclass(frozen=True)
class DiffVsTruth:
    """One estimator's paired difference (``policy - first``) next to the true differences."""

    estimator: str
    valid: bool
    value: float
    ci_low: float
    ci_high: float
    truth: float
    deployed_truth: float

    @property
    def covered(self) -> bool:
        """Whether the interval contains the no-interference difference."""
        return self.valid and self.ci_low <= self.truth <= self.ci_high

    @property
    def width(self) -> float:
        return self.ci_high - self.ci_low


def differences_vs_truth(check: TruthCheck, policy: str) -> dict[str, DiffVsTruth]:
    """Each estimator's paired difference of ``policy`` against the first, with both truths."""
    rows = {p.policy: p for p in check.comparison.policies}
    first = check.comparison.policies[0].policy
    truth = check.no_interference[policy] - check.no_interference[first]
    deployed = check.deployed[policy] - check.deployed[first]
    out: dict[str, DiffVsTruth] = {}
    for name, est in rows[policy].diff_vs_first.items():
        i = est.interval
        nan = float("nan")
        out[name] = DiffVsTruth(
            name,
            est.valid,
            i.value if i else nan,
            i.ci_low if i else nan,
            i.ci_high if i else nan,
            truth,
            deployed,
        )
    return out
