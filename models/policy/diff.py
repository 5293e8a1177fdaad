"""What changed between two versions of a policy, in the words an analyst uses."""

from __future__ import annotations

from models.policy.conditions import describe
from models.policy.spec import ALWAYS, Condition, Destination, PolicySpec

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
    return out


def _leads(condition: Condition) -> str:
    return "all remaining leads" if condition == ALWAYS else f"leads where {describe(condition)}"
