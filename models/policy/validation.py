"""Checks a parsed spec against the workspace: every problem names its rule.

Errors make a spec unusable: an unknown field, team or rep, a rule that can never fire (an
earlier rule shadows it), a team with nobody to take leads. Warnings are worth a look: gaps and
overlaps between score ranges, a method on a team without reps.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from models.policy.conditions import describe
from models.policy.roster import Roster
from models.policy.spec import ALWAYS, AllOf, Condition, Destination, Leaf, Not, PolicySpec, Sla

_OPEN, _CLOSED = False, True


@dataclass(frozen=True)
class ValidationReport:
    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors

    def lines(self) -> list[str]:
        return [f"error: {e}" for e in self.errors] + [f"warning: {w}" for w in self.warnings]


@dataclass(frozen=True)
class Interval:
    """A range of one numeric field; ``lo_closed``/``hi_closed`` say whether ends are included."""

    field: str
    lo: float
    lo_closed: bool
    hi: float
    hi_closed: bool

    @property
    def empty(self) -> bool:
        return self.lo > self.hi or (self.lo == self.hi and not (self.lo_closed and self.hi_closed))

    def __str__(self) -> str:
        return f"{'[' if self.lo_closed else '('}{self.lo:g}, {self.hi:g}{']' if self.hi_closed else ')'}"


def validate_policy(
    spec: PolicySpec, roster: Roster | None = None, fields: Collection[str] | None = None
) -> ValidationReport:
    """Validate ``spec``; ``roster`` enables team/rep checks, ``fields`` (lead columns and extra
    attributes; ``score`` is always known) enables field checks."""
    errors: list[str] = []
    warnings: list[str] = []
    if fields is not None:
        known = set(fields) | {"score"}
        for rule in spec.rules:
            for leaf in _leaves(rule.when):
                if leaf.field not in known:
                    errors.append(f"rule '{rule.name}': unknown field '{leaf.field}'")
    if roster is not None:
        _check_destinations(spec, roster, errors, warnings)
        _check_slas(spec, roster, errors, warnings)
    _check_shadowing(spec, errors)
    _check_score_ranges(spec, warnings)
    return ValidationReport(tuple(errors), tuple(warnings))


def _leaves(condition: Condition) -> Iterator[Leaf]:
    if isinstance(condition, Leaf):
        yield condition
    elif isinstance(condition, Not):
        yield from _leaves(condition.item)
    else:
        for item in condition.items:
            yield from _leaves(item)


def _check_destinations(spec: PolicySpec, roster: Roster, errors: list[str], warnings: list[str]) -> None:
    known_reps = set(roster.rep_id.tolist())
    for place, dest in spec.destinations():
        if dest.team is not None and roster.kind(dest.team) is None:
            errors.append(f"{place}: unknown team '{dest.team}'")
            continue
        for rep in dest.reps:
            if rep not in known_reps:
                errors.append(f"{place}: unknown rep '{rep}'")
        kind = "sales" if dest.team is None else roster.kind(dest.team)
        if kind == "sales" and roster.members(dest.team, dest.seniority, dest.reps).size == 0:
            who = f" with seniority {', '.join(dest.seniority)}" if dest.seniority else ""
            errors.append(f"{place}: team '{dest.team or 'any'}' has no active rep{who} to take leads")
        if kind != "sales" and dest.method != "round_robin":
            warnings.append(f"{place}: team '{dest.team}' has no reps; method {dest.method} is ignored")
    if spec.exploration is not None:
        for team in spec.exploration.teams:
            if roster.kind(team) is None:
                errors.append(f"exploration: unknown team '{team}'")


def _check_slas(spec: PolicySpec, roster: Roster, errors: list[str], warnings: list[str]) -> None:
    """SLA escalation targets must exist; an SLA on a destination without reps has no owner to time."""
    known_reps = set(roster.rep_id.tolist())
    places: list[tuple[str, Sla | None, Destination | None]] = [("policy sla", spec.sla, None)]
    places += [(f"rule '{r.name}' sla", r.sla, r.then) for r in spec.rules]
    for place, sla, dest in places:
        if sla is None:
            continue
        if sla.escalate is not None:
            if sla.escalate.team is not None and roster.kind(sla.escalate.team) is None:
                errors.append(f"{place}: escalation to unknown team '{sla.escalate.team}'")
            if sla.escalate.rep is not None and sla.escalate.rep not in known_reps:
                errors.append(f"{place}: escalation to unknown rep '{sla.escalate.rep}'")
        if dest is None:
            continue
        kind = "sales" if dest.team is None else roster.kind(dest.team)
        if kind is not None and kind != "sales":
            warnings.append(f"{place}: team '{dest.team}' has no reps, so the SLA never starts")
        elif (
            kind == "sales"
            and sla.reassign
            and sla.max_hops > 0
            and roster.members(dest.team, dest.seniority, dest.reps).size < 2
        ):
            warnings.append(f"{place}: only one rep can take these leads, so a breach cannot be re-assigned")


def interval(condition: Condition) -> Interval | None:
    """The numeric range a condition selects, if it is a range of one field (else ``None``)."""
    if isinstance(condition, Leaf):
        v = condition.value
        inf = float("inf")
        if condition.op == "between" and isinstance(v, tuple):
            return Interval(condition.field, float(v[0]), _CLOSED, float(v[1]), _CLOSED)
        if isinstance(v, int | float) and not isinstance(v, bool):
            x = float(v)
            ranges = {
                "<": (-inf, _OPEN, x, _OPEN),
                "<=": (-inf, _OPEN, x, _CLOSED),
                ">": (x, _OPEN, inf, _OPEN),
                ">=": (x, _CLOSED, inf, _OPEN),
                "=": (x, _CLOSED, x, _CLOSED),
            }
            if condition.op in ranges:
                lo, lc, hi, hc = ranges[condition.op]
                return Interval(condition.field, lo, lc, hi, hc)
        return None
    if isinstance(condition, AllOf) and condition.items:
        parts = [interval(c) for c in condition.items]
        if any(p is None for p in parts) or len({p.field for p in parts if p}) != 1:
            return None
        found = [p for p in parts if p is not None]
        out = found[0]
        for p in found[1:]:
            low = max((out.lo, not out.lo_closed), (p.lo, not p.lo_closed))
            high = min((out.hi, out.hi_closed), (p.hi, p.hi_closed))
            out = Interval(out.field, low[0], not low[1], high[0], high[1])
        return out
    return None


def _covered(target: Interval, cover: list[Interval]) -> bool:
    """Whether the union of ``cover`` contains ``target``."""
    point, closed = target.lo, not target.lo_closed  # covered up to `point` (inclusive if closed)
    for c in sorted(cover, key=lambda i: (i.lo, not i.lo_closed)):
        starts_ok = c.lo < point or (c.lo == point and (c.lo_closed or closed))
        if not starts_ok:
            break
        if (c.hi, c.hi_closed) > (point, closed):
            point, closed = c.hi, c.hi_closed
    return (point, closed) >= (target.hi, target.hi_closed)


def _check_shadowing(spec: PolicySpec, errors: list[str]) -> None:
    seen: list[tuple[str, Condition]] = []
    for rule in spec.rules:
        mine = interval(rule.when)
        if mine is not None and mine.empty:
            errors.append(f"rule '{rule.name}': can never fire: '{describe(rule.when)}' selects no value")
            seen.append((rule.name, rule.when))
            continue
        for name, cond in seen:
            if cond == ALWAYS or cond == rule.when:
                errors.append(f"rule '{rule.name}': can never fire: rule '{name}' above matches every lead it would")
                break
        else:
            if mine is not None:
                cover = [i for _, c in seen if (i := interval(c)) is not None and i.field == mine.field]
                if cover and _covered(mine, cover):
                    errors.append(
                        f"rule '{rule.name}': can never fire: rules above already take every {mine.field} in {mine}"
                    )
        seen.append((rule.name, rule.when))


def _check_score_ranges(spec: PolicySpec, warnings: list[str]) -> None:
    ranges = [(r.name, i) for r in spec.rules if (i := interval(r.when)) is not None and i.field == "score"]
    if not ranges:
        return
    for a in range(len(ranges)):
        for b in range(a + 1, len(ranges)):
            (na, ia), (nb, ib) = ranges[a], ranges[b]
            lo = max((ia.lo, not ia.lo_closed), (ib.lo, not ib.lo_closed))
            hi = min((ia.hi, ia.hi_closed), (ib.hi, ib.hi_closed))
            both = Interval("score", lo[0], not lo[1], hi[0], hi[1])
            if not both.empty:
                warnings.append(f"rules '{na}' and '{nb}': score ranges overlap on {both} ('{na}' wins there)")
    full = Interval("score", 0.0, _CLOSED, 100.0, _CLOSED)
    cover = [i for _, i in ranges]
    if not _covered(full, cover):
        warnings.append(
            "score ranges leave gaps in [0, 100] (covered: "
            + ", ".join(str(i) for i in sorted(cover, key=lambda i: i.lo))
            + "); those leads go to later rules or the fallback"
        )
