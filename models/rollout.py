"""Guardrails and the canary ramp: pure decisions over per-decision indicators.

A canary sends a share of live traffic to a new policy version while the rest stays on the
baseline. At each look the guardrails compare the canary's decisions with the baseline's decided
in the same step (same hours, same reps, same lead mix, by the sticky hash): a guardrail is
*breached* when the always-valid confidence sequence of ``canary − baseline`` lies wholly above
its tolerance, so looking at every tick does not inflate false rollbacks (see
``docs/statistics.md``). A ramp step advances when it has enough canary decisions and time and no
guardrail is breached.

Guardrails measured per decision (all "higher is worse"):

- ``rep_overload`` — the lead went to a rep who had already reached ``capacity_per_day`` that
  day (counting both arms: they share the reps).
- ``no_owner`` — a sales destination ended without a rep (nobody eligible): a routing failure.
- ``fallback`` — a fallback path had to be taken (the chosen destination could not take it).
- ``speed_to_lead_hours`` — hours from decision to the first ``contacted`` event, among touched
  leads (needs outcomes back; skipped while too few exist).
- ``fairness_gini`` — Gini of assigned leads over the arm's reps; a single number per arm, so it
  is compared with its tolerance directly, without an interval (stated in the verdict).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.experiments import ArmData, Metric, compare
from models.policy.metrics import gini

DEFAULT_STEPS: tuple[float, ...] = (0.05, 0.25, 0.5, 1.0)
DEFAULT_GUARDRAILS: Mapping[str, float] = {
    "rep_overload": 0.02,
    "no_owner": 0.02,
    "fallback": 0.05,
    "speed_to_lead_hours": 1.0,
    "fairness_gini": 0.10,
}
PER_DECISION = ("rep_overload", "no_owner", "fallback")
MIN_PER_ARM = 30  # fewer observations than this per arm: the guardrail is "not yet measurable"


@dataclass(frozen=True)
class ArmOutcomes:
    """What one arm's decisions in the step showed (equal-length arrays per decision)."""

    rep_overload: np.ndarray
    no_owner: np.ndarray
    fallback: np.ndarray
    touch_hours: np.ndarray  # NaN where the lead has not been touched (yet)
    assigned_per_rep: np.ndarray  # lead counts over the arm's eligible reps (zeros included)

    @property
    def n(self) -> int:
        return int(self.rep_overload.size)


@dataclass(frozen=True)
class GuardrailCheck:
    """One guardrail at one look."""

    name: str
    tolerance: float
    canary: float | None
    baseline: float | None
    ci_low: float | None
    ci_high: float | None
    breached: bool
    measurable: bool
    note: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tolerance": self.tolerance,
            "canary": self.canary,
            "baseline": self.baseline,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "breached": self.breached,
            "measurable": self.measurable,
            "note": self.note,
        }


@dataclass(frozen=True)
class Verdict:
    """What the ramp should do now: ``hold``, ``advance`` or ``rollback``, and why."""

    action: str
    reason: str
    checks: tuple[GuardrailCheck, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "reason": self.reason, "checks": [c.to_json() for c in self.checks]}


def check_guardrails(
    canary: ArmOutcomes,
    baseline: ArmOutcomes,
    tolerances: Mapping[str, float] = DEFAULT_GUARDRAILS,
    *,
    alpha: float = 0.05,
) -> tuple[GuardrailCheck, ...]:
    """Each configured guardrail: breached only when ``canary − baseline`` is surely above tolerance."""
    checks = []
    for name, tolerance in tolerances.items():
        if name in PER_DECISION or name == "speed_to_lead_hours":
            if name == "speed_to_lead_hours":
                c = canary.touch_hours[~np.isnan(canary.touch_hours)]
                b = baseline.touch_hours[~np.isnan(baseline.touch_hours)]
                metric: Metric = "mean"
            else:
                c = np.asarray(getattr(canary, name), dtype=np.float64)
                b = np.asarray(getattr(baseline, name), dtype=np.float64)
                metric = "proportion"
            if min(c.size, b.size) < MIN_PER_ARM:
                checks.append(
                    GuardrailCheck(
                        name,
                        tolerance,
                        float(c.mean()) if c.size else None,
                        float(b.mean()) if b.size else None,
                        None,
                        None,
                        False,
                        False,
                        f"not yet measurable: {c.size} canary and {b.size} baseline observations"
                        f" (needs {MIN_PER_ARM} each)",
                    )
                )
                continue
            result = compare(ArmData("baseline", b), ArmData("canary", c), alpha=alpha, metric=metric, sequential=True)
            assert result.sequential_ci_low is not None and result.sequential_ci_high is not None
            low, high = result.sequential_ci_low, result.sequential_ci_high
            breached = low > tolerance
            note = (
                f"canary − baseline is at least {low:+.4g} (always-valid {1 - alpha:.0%} interval), above"
                f" the tolerance {tolerance:g}"
                if breached
                else f"canary − baseline in [{low:+.4g}, {high:+.4g}]; tolerance {tolerance:g}"
            )
            checks.append(
                GuardrailCheck(name, tolerance, float(c.mean()), float(b.mean()), low, high, breached, True, note)
            )
        elif name == "fairness_gini":
            c_g, b_g = gini(canary.assigned_per_rep), gini(baseline.assigned_per_rep)
            measurable = min(canary.n, baseline.n) >= MIN_PER_ARM
            breached = measurable and (c_g - b_g) > tolerance
            checks.append(
                GuardrailCheck(
                    name,
                    tolerance,
                    c_g,
                    b_g,
                    None,
                    None,
                    breached,
                    measurable,
                    f"Gini {c_g:.3f} vs {b_g:.3f} (a point comparison, no interval)",
                )
            )
        else:
            raise ValueError(f"unknown guardrail '{name}' (known: {', '.join(DEFAULT_GUARDRAILS)})")
    return tuple(checks)


def ramp_verdict(
    checks: Sequence[GuardrailCheck],
    *,
    canary_decisions: int,
    min_decisions: int,
    step_age_s: float,
    min_step_s: float,
) -> Verdict:
    """Roll back on any breach; advance when the step has enough decisions and time; else hold."""
    breached = [c for c in checks if c.breached]
    if breached:
        return Verdict("rollback", "; ".join(f"guardrail {c.name} breached: {c.note}" for c in breached), tuple(checks))
    if canary_decisions < min_decisions:
        return Verdict("hold", f"{canary_decisions} of {min_decisions} canary decisions in this step", tuple(checks))
    if step_age_s < min_step_s:
        return Verdict("hold", f"step has run {step_age_s:.0f} s of {min_step_s:.0f} s", tuple(checks))
    return Verdict("advance", f"guardrails held over {canary_decisions} canary decisions", tuple(checks))


def parse_steps(text: str | Sequence[float], first: float | None = None) -> tuple[float, ...]:
    """Ramp steps as shares in (0, 1], increasing, ending at 1 (``"5,25,50,100"`` in percent)."""
    try:
        shares = [float(v) / 100 for v in text.split(",")] if isinstance(text, str) else [float(v) for v in text]
    except ValueError:
        raise ValueError(f"--steps: '{text}' is not a comma-separated list of percentages") from None
    if first is not None:
        shares = [first] + [s for s in shares if s > first]
    if not shares or any(not 0 < s <= 1 for s in shares):
        raise ValueError("--steps: each step is a percentage in (0, 100]")
    if any(b <= a for a, b in itertools.pairwise(shares)):
        raise ValueError("--steps: steps must increase")
    if shares[-1] != 1.0:
        shares.append(1.0)
    return tuple(shares)
