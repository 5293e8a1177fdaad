"""Typed inputs and results of off-policy evaluation (one lead = one logged decision)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

EstimatorName = Literal["dm", "ips", "snips", "dr", "sndr", "clipped_dr"]
ESTIMATOR_NAMES: tuple[EstimatorName, ...] = ("dm", "ips", "snips", "dr", "sndr", "clipped_dr")


def _array(name: str, value: np.ndarray | None, n: int) -> None:
    if value is not None and np.shape(value) != (n,):
        raise ValueError(f"{name}: expected shape ({n},), got {np.shape(value)}")


@dataclass(frozen=True)
class LoggedData:
    """What the log says, aligned per matured lead.

    Attributes:
        reward: observed outcome ``r_i`` of the logged decision (1/0 conversion, or revenue).
        propensity: ``mu(a_i|x_i)``, the logging policy's probability of the logged destination;
            ``None`` when the log has none (then only the direct method is available).
        q_logged: cross-fitted reward model at the logged destination, ``q(x_i, a_i)``.
        n_excluded_not_matured: leads left out because their outcome window is still open.
    """

    reward: np.ndarray
    propensity: np.ndarray | None = None
    q_logged: np.ndarray | None = None
    n_excluded_not_matured: int = 0

    def __post_init__(self) -> None:
        n = int(np.size(self.reward))
        _array("reward", self.reward, n)
        _array("propensity", self.propensity, n)
        _array("q_logged", self.q_logged, n)

    @property
    def n(self) -> int:
        return int(self.reward.size)

    def subset(self, mask: np.ndarray) -> LoggedData:
        """The leads selected by a boolean mask (a segment); exclusions are not carried over."""
        pick = None if self.propensity is None else self.propensity[mask]
        q = None if self.q_logged is None else self.q_logged[mask]
        return LoggedData(self.reward[mask], pick, q, 0)


@dataclass(frozen=True)
class TargetData:
    """What the evaluated policy does on the same leads.

    Attributes:
        name: the policy (with its version, if any).
        probability_of_logged: ``pi(a_i|x_i)``, the target's probability of the *logged*
            destination (0/1 for a deterministic replay).
        q_target: the reward model averaged over the target's destinations,
            ``sum_a pi(a|x_i) q(x_i, a)`` (cross-fitted).
        unsupported: per lead, the target's probability on destinations the log never tried
            (``mu = 0``); ``None`` when unknown.
    """

    name: str
    probability_of_logged: np.ndarray
    q_target: np.ndarray | None = None
    unsupported: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = int(np.size(self.probability_of_logged))
        _array("probability_of_logged", self.probability_of_logged, n)
        _array("q_target", self.q_target, n)
        _array("unsupported", self.unsupported, n)

    def subset(self, mask: np.ndarray) -> TargetData:
        q = None if self.q_target is None else self.q_target[mask]
        u = None if self.unsupported is None else self.unsupported[mask]
        return TargetData(self.name, self.probability_of_logged[mask], q, u)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its symmetric normal (CLT) interval."""

    value: float
    ci_low: float
    ci_high: float
    std_error: float

    def to_json(self) -> dict[str, float]:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "std_error": self.std_error}


@dataclass(frozen=True)
class Diagnostics:
    """Checks that come with every estimate (weights are ``w_i = pi(a_i|x_i) / mu(a_i|x_i)``).

    Attributes:
        n_leads: matured leads evaluated.
        n_excluded_not_matured, share_excluded_not_matured: leads left out (outcome pending).
        effective_sample_size: ``(sum w)^2 / sum w^2`` (Kish); ``None`` without propensities.
        mean_weight: ``mean(w)``; its expectation is ``1 - support_deficit`` when propensities
            are right, so it is a free check of the log.
        max_weight: ``max(w)``.
        share_clipped: share of leads whose weight an estimator capped (clipped DR only).
        support_deficit: mean probability the target puts on destinations the log never tried.
        share_matched: share of leads whose logged destination the target could choose (``w > 0``).
        mean_weight_std_error: standard error of ``mean_weight`` (for the check of the log).
    """

    n_leads: int
    n_excluded_not_matured: int
    share_excluded_not_matured: float
    effective_sample_size: float | None
    mean_weight: float | None
    max_weight: float | None
    share_clipped: float
    support_deficit: float | None
    share_matched: float | None
    mean_weight_std_error: float | None = None

    @property
    def propensities_suspect(self) -> bool:
        """``mean_weight`` more than 4 standard errors from ``1 - support_deficit``."""
        if self.mean_weight is None or not self.mean_weight_std_error:
            return False
        expected = 1.0 - (self.support_deficit or 0.0)
        return abs(self.mean_weight - expected) > 4.0 * self.mean_weight_std_error

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Estimate:
    """One estimator's answer for one policy (or one paired difference): never a bare number.

    ``valid`` is False with a ``reason`` when the estimator's assumptions fail; ``interval`` is
    then ``None``. ``warnings`` name weaker problems (few effective samples, model reliance).
    ``influence`` holds the per-lead influence contributions the interval came from (mean 0).
    """

    estimator: str
    valid: bool
    interval: Interval | None
    diagnostics: Diagnostics
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    influence: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"valid": self.valid}
        if self.interval is not None:
            out.update(self.interval.to_json())
        else:
            out.update({"value": None, "ci_low": None, "ci_high": None})
        if self.reason:
            out["reason"] = self.reason
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out
