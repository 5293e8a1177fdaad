"""What changed between two versions of a policy, in the words an analyst uses."""

from __future__ import annotations

from models.policy.conditions import describe
from models.policy.spec import ALWAYS, Condition, Destination, PolicySpec, Sla

_METHOD_WORDS = {
    "round_robin": "round robin",
    "weighted": "weighted round robin",
    "least_loaded": "least loaded",
    "skill_match": "skill match",
    "territory": "territory",
    "account_owner": "the account owner",
    "best_fit": "best fit",
    "random": "random",
}


def describe_destination(dest: Destination) -> str:
    """E.g. ``team smb (junior reps) by round robin, notify the owner; if nobody is eligible: team queue``."""
    text = f"team {dest.team}" if dest.team else "the reps of every sales team"
    if dest.seniority:
        text += f" ({', '.join(dest.seniority)} reps)"
    if dest.reps:
        text += f" (only {', '.join(dest.reps)})"
    if dest.method != "round_robin" or dest.team is None:
        text += f" by {_METHOD_WORDS[dest.method]}"
    if dest.method == "skill_match":
        text += f" on {' and '.join(dest.skills)}"
    if not dest.respect_capacity and dest.method != "account_owner":
        text += ", ignoring daily capacity"
    if dest.notify:
        text += ", notify the owner"
    if dest.fallback is not None:
        text += f"; if nobody is eligible: {describe_destination(dest.fallback)}"
    return text


def describe_sla(sla: Sla | None) -> str:
    """E.g. ``first touch within 30 min of business time (contacted or meeting); remind after 15 min;
    then re-assign up to 1 time; then escalate to team queue``."""
    if sla is None:
        return "no SLA"
    clock = "business time" if sla.business_hours else "wall-clock time"
    text = f"first touch within {_duration(sla.first_touch_s)} of {clock} ({' or '.join(sla.touch_events)})"
    if sla.remind_s is not None:
        text += f"; remind after {_duration(sla.remind_s)}"
    if sla.reassign and sla.max_hops > 0:
        text += f"; then re-assign up to {sla.max_hops} time{'s' if sla.max_hops != 1 else ''}"
    if sla.escalate is not None:
        target = " and ".join(
            t for t in (f"team {sla.escalate.team}" if sla.escalate.team else "", sla.escalate.rep or "") if t
        )
        text += f"; then escalate to {target}"
    return text


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def diff_policies(old: PolicySpec, new: PolicySpec) -> list[str]:
    """Changes from ``old`` to ``new``, one sentence each (empty when they route identically)."""
    out: list[str] = []
    if old.name != new.name:
        out.append(f"renamed from '{old.name}' to '{new.name}'")
    if old.description != new.description:
        out.append("the description changed")
    before = {r.name: (i, r) for i, r in enumerate(old.rules)}
    after = {r.name: (i, r) for i, r in enumerate(new.rules)}
    for name, (i, rule) in before.items():
        if name not in after:
            out.append(
                f"rule '{name}' (#{i + 1}) was removed: {_leads(rule.when)} no longer go to "
                f"{describe_destination(rule.then)}"
            )
    for name, (j, rule) in after.items():
        if name not in before:
            out.append(f"new rule '{name}' at #{j + 1}: send {_leads(rule.when)} to {describe_destination(rule.then)}")
            continue
        i, was = before[name]
        if i != j:
            out.append(f"rule '{name}' moved from #{i + 1} to #{j + 1} (order decides which rule wins)")
        if was.when != rule.when:
            out.append(f"rule '{name}' now applies when {describe(rule.when)} (was: {describe(was.when)})")
        if was.then != rule.then:
            out.append(
                f"rule '{name}' now sends leads to {describe_destination(rule.then)} "
                f"(was: {describe_destination(was.then)})"
            )
    if old.fallback != new.fallback:
        out.append(
            f"leads no rule matches now go to {describe_destination(new.fallback)} "
            f"(was: {describe_destination(old.fallback)})"
        )
    if old.availability != new.availability:
        a, b = old.availability, new.availability
        if a.absences != b.absences:
            out.append("absences are " + ("now respected" if b.absences else "no longer respected"))
        if a.working_hours != b.working_hours:
            out.append("working hours are " + ("now enforced" if b.working_hours else "no longer enforced"))
    if old.exploration != new.exploration:

        def words(p: PolicySpec) -> str:
            e = p.exploration
            return "none" if e is None else f"{e.share:.0%} of traffic (floor {e.floor:g})"

        out.append(f"exploration is now {words(new)} (was: {words(old)})")
    if old.sla != new.sla:
        out.append(f"the default SLA is now: {describe_sla(new.sla)} (was: {describe_sla(old.sla)})")
    for name, (_, rule) in after.items():
        if name in before and before[name][1].sla != rule.sla:
            out.append(f"rule '{name}' SLA is now: {describe_sla(rule.sla)} (was: {describe_sla(before[name][1].sla)})")
        elif name not in before and rule.sla is not None:
            out.append(f"new rule '{name}' has an SLA: {describe_sla(rule.sla)}")
    return out


def _leads(condition: Condition) -> str:
    return "all remaining leads" if condition == ALWAYS else f"leads where {describe(condition)}"
