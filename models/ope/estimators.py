"""Off-policy estimators of a routing policy's value: a small base plus variants.

Notation, per matured lead ``i`` of ``n``: ``r_i`` the logged outcome, ``mu_i = mu(a_i|x_i)`` the
logged propensity, ``pi_i = pi(a_i|x_i)`` the target's probability of that same destination,
``w_i = pi_i / mu_i`` the importance weight, ``q_i = q(x_i, a_i)`` the cross-fitted reward model
at the logged destination and ``qbar_i = sum_a pi(a|x_i) q(x_i, a)`` at the target's.

Every estimator returns its value ``V`` and per-lead influence contributions ``psi_i`` (mean 0);
the 95% interval is ``V ± z * sd(psi) / sqrt(n)`` (CLT). Linear estimators ``V = mean(phi)`` have
``psi_i = phi_i - V``; the self-normalised ones are ratios, linearised by the delta method. Two
policies evaluated on the same leads give a paired difference with ``psi_B - psi_A``.

Assumptions (stated in every output): outcomes of matured leads are final; the logged
propensities are the probabilities the logging policy really used; no interference — a lead's
outcome at a destination does not depend on where the other leads went (the rep-day loads are
those of the log); for IPS/SNIPS, every destination the target uses was possible in the log.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy import stats

from models.ope.types import Diagnostics, Estimate, Interval, LoggedData, TargetData

SUPPORT_TOLERANCE = 0.01
"""IPS and SNIPS are refused when the target puts more than this share of mass off the log's support."""
MIN_EFFECTIVE_SAMPLE = 1_000.0
"""Below this many effective samples a few large weights dominate: the CLT interval of a
*value* undercovers (measured: about 0.8 at 50–200). Paired differences fare better."""


def importance_weights(logged: LoggedData, target: TargetData) -> np.ndarray:
    """``w_i = pi(a_i|x_i) / mu(a_i|x_i)``; requires logged propensities."""
    if logged.propensity is None:
        raise ValueError("no logged propensities: importance weights cannot be formed")
    return np.asarray(target.probability_of_logged / logged.propensity, dtype=np.float64)


def self_normalised_weights(logged: LoggedData, target: TargetData) -> np.ndarray:
    """``w_i / sum_j w_j`` (they sum to one); the weights of SNIPS and SNDR."""
    w = importance_weights(logged, target)
    total = w.sum()
    if total <= 0:
        raise ValueError("no logged decision matches the policy: self-normalised weights are undefined")
    return np.asarray(w / total, dtype=np.float64)


def diagnostics(logged: LoggedData, target: TargetData, clip: float | None = None) -> Diagnostics:
    """Weight diagnostics (see :class:`Diagnostics`); weights are not formed without propensities."""
    n, excluded = logged.n, logged.n_excluded_not_matured
    share_excluded = excluded / (n + excluded) if n + excluded else 0.0
    deficit = None if target.unsupported is None or n == 0 else float(target.unsupported.mean())
    usable = logged.propensity is not None and n > 0 and bool(np.all(logged.propensity > 0))
    if not usable:
        return Diagnostics(n, excluded, share_excluded, None, None, None, 0.0, deficit, None)
    w = importance_weights(logged, target)
    square = float(np.square(w).sum())
    return Diagnostics(
        n_leads=n,
        n_excluded_not_matured=excluded,
        share_excluded_not_matured=share_excluded,
        effective_sample_size=float(w.sum()) ** 2 / square if square > 0 else 0.0,
        mean_weight=float(w.mean()),
        max_weight=float(w.max()),
        share_clipped=float((w > clip).mean()) if clip is not None else 0.0,
        support_deficit=deficit,
        share_matched=float((w > 0).mean()),
        mean_weight_std_error=float(w.std(ddof=1) / np.sqrt(n)) if n > 1 else None,
    )


class Estimator:
    """Base: checks assumptions, computes diagnostics and the CLT interval from influences.

    Variants override :meth:`_influence` (value and per-lead influence) and say what they need.

    Args:
        confidence: two-sided level of the interval (default 0.95).
    """

    name: ClassVar[str] = "base"
    needs_propensity: ClassVar[bool] = True
    needs_reward_model: ClassVar[bool] = False
    clip: float | None = None

    def __init__(self, confidence: float = 0.95) -> None:
        if not 0.0 < confidence < 1.0:
            raise ValueError(f"confidence: must be within (0, 1), got {confidence}")
        self.confidence = confidence

    @property
    def z(self) -> float:
        return float(stats.norm.ppf(0.5 + self.confidence / 2))

    def estimate(self, logged: LoggedData, target: TargetData) -> Estimate:
        """Value of ``target`` with its interval, or an explicit not-valid result with the reason."""
        if target.probability_of_logged.size != logged.n:
            raise ValueError(f"target '{target.name}' covers {target.probability_of_logged.size} leads, log {logged.n}")
        diag = diagnostics(logged, target, self.clip)
        reason = self._invalid(logged, target, diag)
        if reason is not None:
            return Estimate(self.name, False, None, diag, reason=reason)
        value, influence = self._influence(logged, target)
        return Estimate(self.name, True, self.interval(value, influence), diag, None, self._warnings(diag), influence)

    def interval(self, value: float, influence: np.ndarray) -> Interval:
        """``value ± z * sd(influence) / sqrt(n)`` (sample sd, ddof 1; 0 for a single lead)."""
        n = influence.size
        se = float(influence.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
        return Interval(float(value), float(value - self.z * se), float(value + self.z * se), se)

    def _influence(self, logged: LoggedData, target: TargetData) -> tuple[float, np.ndarray]:
        phi = self._contributions(logged, target)
        value = float(phi.mean())
        return value, phi - value

    def _contributions(self, logged: LoggedData, target: TargetData) -> np.ndarray:
        raise NotImplementedError

    def _invalid(self, logged: LoggedData, target: TargetData, diag: Diagnostics) -> str | None:
        if logged.n == 0:
            return "no matured leads to evaluate"
        if self.needs_propensity:
            if logged.propensity is None:
                return (
                    "no logged propensities: the log does not say how likely each routing was, so"
                    " importance weights cannot be formed; only the direct method (dm) is available"
                )
            bad = int((~(logged.propensity > 0) | ~(logged.propensity <= 1)).sum())
            if bad:
                return f"{bad} logged decision(s) have a missing, zero or >1 propensity: weights are undefined"
            if diag.share_matched == 0:
                return "no logged decision is one the policy could make: nothing to weight"
        if self.needs_reward_model and (target.q_target is None or (self.needs_propensity and logged.q_logged is None)):
            return "no reward model predictions: the direct and doubly robust estimators need one"
        return None

    def _warnings(self, diag: Diagnostics) -> tuple[str, ...]:
        out: list[str] = []
        ess = diag.effective_sample_size
        if ess is not None and self.needs_propensity and ess < MIN_EFFECTIVE_SAMPLE:
            out.append(
                f"only {ess:.0f} effective samples: a few large weights dominate and the interval may undercover"
            )
        if diag.support_deficit and diag.support_deficit >= 0.001 and self.needs_reward_model and self.needs_propensity:
            out.append(
                f"{diag.support_deficit:.1%} of the policy's mass is off the log's support: the model alone covers it"
            )
        if self.needs_propensity and diag.propensities_suspect:
            out.append(
                f"mean importance weight {diag.mean_weight:.3f} is far from its expected"
                f" {1 - (diag.support_deficit or 0):.3f}: the logged propensities look wrong"
            )
        if not self.needs_propensity:
            out.append("dm: the interval reflects lead sampling only, not the reward model's bias")
        return tuple(out)


class DirectMethod(Estimator):
    """DM: ``V = mean(qbar_i)``; unbiased only if the reward model is (no weights needed)."""

    name = "dm"
    needs_propensity = False
    needs_reward_model = True

    def _contributions(self, logged: LoggedData, target: TargetData) -> np.ndarray:
        assert target.q_target is not None
        return target.q_target


class InversePropensity(Estimator):
    """IPS: ``V = mean(w_i r_i)``; unbiased under full support and correct propensities."""

    name = "ips"

    def _invalid(self, logged: LoggedData, target: TargetData, diag: Diagnostics) -> str | None:
        reason = super()._invalid(logged, target, diag)
        if reason is None and diag.support_deficit is not None and diag.support_deficit > SUPPORT_TOLERANCE:
            return (
                f"the policy puts {diag.support_deficit:.1%} of its probability on destinations the log never"
                " tried: weighting cannot see those outcomes (use dr)"
            )
        return reason

    def _contributions(self, logged: LoggedData, target: TargetData) -> np.ndarray:
        return np.asarray(importance_weights(logged, target) * logged.reward, dtype=np.float64)


class SelfNormalisedIPS(InversePropensity):
    """SNIPS: ``V = sum w_i r_i / sum w_i``; delta method ``psi_i = w_i (r_i - V) / mean(w)``."""

    name = "snips"

    def _influence(self, logged: LoggedData, target: TargetData) -> tuple[float, np.ndarray]:
        w = importance_weights(logged, target)
        value = float((w * logged.reward).sum() / w.sum())
        return value, w * (logged.reward - value) / w.mean()


class DoublyRobust(Estimator):
    """DR: ``V = mean(qbar_i + w_i (r_i - q_i))``; unbiased if the propensities *or* the model are right."""

    name = "dr"
    needs_reward_model = True

    def _weights(self, logged: LoggedData, target: TargetData) -> np.ndarray:
        return importance_weights(logged, target)

    def _contributions(self, logged: LoggedData, target: TargetData) -> np.ndarray:
        assert target.q_target is not None and logged.q_logged is not None
        correction = self._weights(logged, target) * (logged.reward - logged.q_logged)
        return np.asarray(target.q_target + correction, dtype=np.float64)


class SelfNormalisedDR(DoublyRobust):
    """SNDR: ``V = mean(qbar) + sum w_i (r_i - q_i) / sum w_i``; delta method
    ``psi_i = (qbar_i - mean qbar) + w_i (r_i - q_i - c) / mean(w)`` with ``c`` the weighted residual."""

    name = "sndr"

    def _influence(self, logged: LoggedData, target: TargetData) -> tuple[float, np.ndarray]:
        assert target.q_target is not None and logged.q_logged is not None
        w = importance_weights(logged, target)
        residual = logged.reward - logged.q_logged
        c = float((w * residual).sum() / w.sum())
        base = float(target.q_target.mean())
        return base + c, (target.q_target - base) + w * (residual - c) / w.mean()


class ClippedDR(DoublyRobust):
    """Clipped DR: DR with ``min(w_i, clip)``: less variance, biased towards the model where clipped.

    Args:
        clip: the largest weight used (default 50).
    """

    name = "clipped_dr"

    def __init__(self, clip: float = 50.0, confidence: float = 0.95) -> None:
        super().__init__(confidence)
        if clip <= 0:
            raise ValueError(f"clip: must be positive, got {clip}")
        self.clip = clip

    def _weights(self, logged: LoggedData, target: TargetData) -> np.ndarray:
        cap = self.clip if self.clip is not None else np.inf
        return np.asarray(np.minimum(importance_weights(logged, target), cap), dtype=np.float64)


def paired_difference(first: Estimate, other: Estimate, confidence: float = 0.95) -> Estimate:
    """``other - first`` on the same leads: ``psi_B - psi_A`` gives the paired interval."""
    name = other.estimator
    if not (first.valid and other.valid) or first.influence is None or other.influence is None:
        why = other.reason if not other.valid else first.reason
        return Estimate(name, False, None, other.diagnostics, reason=f"not available: {why}")
    if first.interval is None or other.interval is None or first.influence.size != other.influence.size:
        raise ValueError("paired difference: both estimates must come from the same leads")
    delta = other.influence - first.influence
    base = Estimator(confidence)
    interval = base.interval(other.interval.value - first.interval.value, delta)
    return Estimate(name, True, interval, other.diagnostics, None, other.warnings, delta)


def make_estimator(name: str, *, confidence: float = 0.95, clip: float = 50.0) -> Estimator:
    """The estimator called ``name`` (one of ``ESTIMATOR_NAMES``)."""
    kinds: dict[str, type[Estimator]] = {
        "dm": DirectMethod,
        "ips": InversePropensity,
        "snips": SelfNormalisedIPS,
        "dr": DoublyRobust,
        "sndr": SelfNormalisedDR,
    }
    if name == "clipped_dr":
        return ClippedDR(clip, confidence)
    if name not in kinds:
        raise ValueError(f"estimator: unknown '{name}' (known: dm, ips, snips, dr, sndr, clipped_dr)")
    return kinds[name](confidence)
