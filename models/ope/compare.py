"""Compare routing policies on the same logged leads: every estimator, paired differences, segments.

Pure wiring over :mod:`models.ope.estimators` and :mod:`models.ope.reward`: the caller hands in
the matured leads, the logged decisions with their rewards and propensities, and each
candidate's replayed decisions (capacity enforced by the replay); this module forms the
importance ratios and cross-fitted model predictions and returns typed results.

A replayed decision is one draw from the candidate policy, so ``pi(a_i|x_i)`` is taken as
``1[replayed destination == logged destination]`` — exact for deterministic policies, and an
unbiased draw for policies with exploration. Destinations are ``(team, rep_id or null)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from models.ope.estimators import Estimator, make_estimator, paired_difference
from models.ope.reward import RewardModel, cross_fit, same_rows
from models.ope.types import ESTIMATOR_NAMES, Estimate, LoggedData, TargetData

ASSUMPTIONS: tuple[str, ...] = (
    "matured outcomes are final; leads whose conversion window is still open are excluded",
    "logged propensities are the probabilities the logging policy really used",
    "no interference: each lead's outcome at a destination is valued with the rep-day loads of the log;"
    " a policy that changes loads (overload, slower response) is not charged for it by the estimators",
    "capacity: candidates are replayed with rep capacity and absences enforced, in time order",
    "ips/snips need every destination the policy uses to have been possible in the log (see support_deficit)",
    "dm and dr rely on a cross-fitted reward model; dm's interval ignores the model's bias",
)


def same_destination(logged: pl.DataFrame, target: pl.DataFrame) -> np.ndarray:
    """1.0 where the target's ``(team, rep_id)`` equals the logged one (nulls equal), else 0.0."""
    return same_rows(logged, target).astype(np.float64)


def unsupported_destinations(logged: pl.DataFrame, target: pl.DataFrame) -> np.ndarray:
    """1.0 where the target's destination never occurs among the logged decisions.

    A proxy for ``mu(a|x) = 0`` when only logged propensities are known (not the logging
    policy's full distribution): a destination the log never used in the whole window (a team
    inbox, a rep the logger never routed to) has no outcome to weight. It cannot see finer gaps
    (a logger that never sends *this kind* of lead to a rep); the simulated workspace uses the
    logging policy's exact support instead.
    """
    used = logged.select(pl.col("team").cast(pl.String), pl.col("rep_id").cast(pl.String)).unique()
    wanted = target.select(pl.col("team").cast(pl.String), pl.col("rep_id").cast(pl.String))
    joined = wanted.join(
        used.with_columns(pl.lit(True).alias("_used")),
        on=["team", "rep_id"],
        how="left",
        nulls_equal=True,
        maintain_order="left",
    )
    return np.asarray(joined["_used"].is_null().to_numpy(), dtype=np.float64)


@dataclass(frozen=True)
class PolicyEstimates:
    """One candidate: every estimator's value and its paired difference against the first policy."""

    policy: str
    estimates: dict[str, Estimate]
    diff_vs_first: dict[str, Estimate]

    def to_json(self) -> dict[str, Any]:
        diag = _weight_diagnostics(self.estimates) if self.estimates else {}
        return {
            "policy": self.policy,
            "estimates": {k: e.to_json() for k, e in self.estimates.items()},
            "diff_vs_first": {k: e.to_json() for k, e in self.diff_vs_first.items()},
            "diagnostics": diag,
        }


def _weight_diagnostics(estimates: Mapping[str, Estimate]) -> dict[str, Any]:
    """One diagnostics block per policy (weights are shared); the clipped share from clipped DR."""
    chosen = next(iter(estimates.values())).diagnostics.to_json()
    if "clipped_dr" in estimates:
        chosen["share_clipped"] = estimates["clipped_dr"].diagnostics.share_clipped
    else:
        chosen.pop("share_clipped", None)
    return chosen


@dataclass(frozen=True)
class Comparison:
    """Every candidate's estimates on the same matured leads, plus what the inputs allowed."""

    policies: tuple[PolicyEstimates, ...]
    estimators: tuple[str, ...]
    available: tuple[str, ...]
    unavailable: dict[str, str]
    n_leads: int
    assumptions: tuple[str, ...] = ASSUMPTIONS
    logged: LoggedData | None = field(default=None, repr=False, compare=False)
    targets: tuple[TargetData, ...] = field(default=(), repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "policies": [p.to_json() for p in self.policies],
            "estimators": list(self.estimators),
            "available": list(self.available),
            "unavailable": self.unavailable,
            "n_leads": self.n_leads,
            "assumptions": list(self.assumptions),
        }


def compare(
    logged: LoggedData,
    targets: Sequence[TargetData],
    estimators: Sequence[str] = ESTIMATOR_NAMES,
    *,
    confidence: float = 0.95,
    clip: float = 50.0,
) -> Comparison:
    """Run each estimator on each target; differences are ``target - targets[0]`` on the same leads."""
    if not targets:
        raise ValueError("compare: at least one policy is needed")
    made: list[Estimator] = [make_estimator(name, confidence=confidence, clip=clip) for name in estimators]
    rows: list[PolicyEstimates] = []
    firsts: dict[str, Estimate] = {}
    for i, target in enumerate(targets):
        estimates = {e.name: e.estimate(logged, target) for e in made}
        if i == 0:
            firsts = estimates
        diffs = {k: paired_difference(firsts[k], e, confidence) for k, e in estimates.items()} if i else {}
        rows.append(PolicyEstimates(target.name, estimates, diffs))
    unavailable = {k: e.reason or "" for k, e in rows[0].estimates.items() if not e.valid}
    available = tuple(k for k in rows[0].estimates if k not in unavailable)
    return Comparison(
        tuple(rows), tuple(estimators), available, unavailable, logged.n, ASSUMPTIONS, logged, tuple(targets)
    )


def offline_inputs(
    leads: pl.DataFrame,
    logged: pl.DataFrame,
    reward: np.ndarray,
    targets: Mapping[str, pl.DataFrame],
    *,
    propensity: np.ndarray | None,
    model: RewardModel | None,
    unsupported: Mapping[str, np.ndarray] | None = None,
    n_excluded_not_matured: int = 0,
    folds: int = 5,
    seed: int = 0,
) -> tuple[LoggedData, list[TargetData]]:
    """Form the estimators' inputs: cross-fitted model predictions and replay-based ``pi``.

    Args:
        leads: matured leads (model features), aligned with ``logged`` and each target.
        logged: logged destinations ``team``, ``rep_id``.
        reward: observed rewards.
        targets: policy name → its replayed destinations (``team``, ``rep_id``), aligned.
        propensity: logged propensities, or ``None`` when the log has none.
        model: the reward model (``None``: no DM/DR).
        unsupported: policy name → per-lead mass off the log's support (default: unknown).
    """
    names = list(targets)
    q_logged: np.ndarray | None = None
    q_targets: list[np.ndarray | None] = [None] * len(names)
    if model is not None and leads.height:
        fitted = cross_fit(model, leads, logged, reward, [targets[n] for n in names], folds=folds, seed=seed)
        q_logged, q_targets = fitted.q_logged, list(fitted.q_targets)
    log = LoggedData(np.asarray(reward, dtype=np.float64), propensity, q_logged, n_excluded_not_matured)
    out = [
        TargetData(name, same_destination(logged, targets[name]), q, None if unsupported is None else unsupported[name])
        for name, q in zip(names, q_targets, strict=True)
    ]
    return log, out


@dataclass(frozen=True)
class SegmentRow:
    """One segment value: leads in it and each policy's estimate (and paired difference)."""

    segment: str
    value: str
    n_leads: int
    estimates: dict[str, Estimate]
    diff_vs_first: dict[str, Estimate]

    def to_json(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "value": self.value,
            "n_leads": self.n_leads,
            "estimates": {k: e.to_json() for k, e in self.estimates.items()},
            "diff_vs_first": {k: e.to_json() for k, e in self.diff_vs_first.items()},
        }


def by_segment(
    logged: LoggedData,
    targets: Sequence[TargetData],
    segments: Mapping[str, pl.Series],
    estimator: str = "dr",
    *,
    min_leads: int = 30,
    confidence: float = 0.95,
) -> list[SegmentRow]:
    """The estimator per segment value (lead attributes such as region, source, score tier).

    A segment's value is the policy's mean reward *over the leads in that segment*; the paired
    difference is on those same leads. Values with fewer than ``min_leads`` leads are skipped.
    """
    made = make_estimator(estimator, confidence=confidence)
    rows: list[SegmentRow] = []
    for segment, labels in segments.items():
        text = labels.cast(pl.String).fill_null("(missing)")
        for value in sorted(text.unique().to_list()):
            mask = np.asarray((text == value).to_numpy(), dtype=bool)
            if mask.sum() < min_leads:
                continue
            part = logged.subset(mask)
            est = {t.name: made.estimate(part, t.subset(mask)) for t in targets}
            first = est[targets[0].name]
            diffs = {t.name: paired_difference(first, est[t.name], confidence) for t in targets[1:]}
            rows.append(SegmentRow(segment, value, int(mask.sum()), est, diffs))
    return rows
