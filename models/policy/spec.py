"""The policy spec: a YAML-loaded mapping parsed into frozen, typed objects.

A spec is data, never code: it is read with ``yaml.safe_load`` by the edge and handed here as
plain dicts/lists/scalars. Parsing checks shape, names, operators and sizes and fails with a
message naming the rule; nothing in a spec is ever evaluated or formatted into SQL.

Shape::

    name: seed
    description: …
    rules:                       # ordered, first match wins
      - name: hot
        when: {field: score, op: ">", value: 80}      # or {all: [...]}, {any: [...]}, {not: {...}}
        then: {team: enterprise, method: round_robin, notify: true, fallback: {team: queue}}
    fallback: {team: queue}      # mandatory: a lead no rule matches goes here
    availability: {absences: true, working_hours: false}
    exploration: {share: 0.1, floor: 0.02}            # optional
    sla: {first_touch: 30m, remind: 15m, max_hops: 1, escalate: {team: queue}}  # optional default

A rule may carry its own ``sla`` (same shape); it overrides the policy-wide default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

Operator = Literal["=", "!=", "<", "<=", ">", ">=", "between", "in", "not in", "contains", "is missing"]
OPERATORS: tuple[Operator, ...] = ("=", "!=", "<", "<=", ">", ">=", "between", "in", "not in", "contains", "is missing")
Method = Literal[
    "round_robin", "weighted", "least_loaded", "skill_match", "territory", "account_owner", "best_fit", "random"
]
METHODS: tuple[Method, ...] = (
    "round_robin",
    "weighted",
    "least_loaded",
    "skill_match",
    "territory",
    "account_owner",
    "best_fit",
    "random",
)
Scalar: TypeAlias = str | int | float | bool

# Size limits: a spec is a page an analyst reads, not a data dump; these stop a huge or
# deeply nested spec before it costs memory or time anywhere downstream.
MAX_RULES = 200
MAX_DEPTH = 8
MAX_NODES = 2_000
MAX_LIST_VALUES = 1_000
MAX_TEXT = 200
MAX_SPEC_BYTES = 256_000


class PolicySpecError(ValueError):
    """A spec that cannot be used; ``problems`` lists every problem found, each naming its place."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems) if problems else "invalid policy spec")


@dataclass(frozen=True)
class Leaf:
    """One comparison of a lead field (canonical, extra attribute, or ``score``) with a value."""

    field: str
    op: Operator
    value: Scalar | tuple[Scalar, ...] | None = None


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition: TypeAlias = Leaf | AllOf | AnyOf | Not
ALWAYS = AllOf(())
"""The empty conjunction: true for every lead (a rule without ``when``)."""


@dataclass(frozen=True)
class Destination:
    """Where a lead goes and how a rep is chosen there.

    Attributes:
        team: the team; ``None`` means the reps of every sales team (the rep's team is recorded).
        method: how a rep is chosen in a sales team (ignored for nurture and queue teams).
        seniority: only reps with one of these seniorities (e.g. the junior bench).
        reps: only these reps (by ``rep_id``).
        skills: for ``skill_match``: which lead fields must match the rep (industry, language).
        respect_capacity: a rep at their daily capacity is not eligible.
        notify: tell the assigned owner (the endpoint sends it; replay only records it).
        fallback: where the lead goes if nobody here is eligible (else the policy fallback).
    """

    team: str | None
    method: Method = "round_robin"
    seniority: tuple[str, ...] = ()
    reps: tuple[str, ...] = ()
    skills: tuple[str, ...] = ("industry",)
    respect_capacity: bool = True
    notify: bool = False
    fallback: Destination | None = None


@dataclass(frozen=True)
class Escalation:
    """Where a lead goes when its SLA chain is exhausted: a team (e.g. a queue) and/or a manager rep."""

    team: str | None = None
    rep: str | None = None


TOUCH_EVENTS: tuple[str, ...] = ("contacted", "meeting", "qualified", "converted", "lost")
MAX_SLA_HOPS = 10


@dataclass(frozen=True)
class Sla:
    """Speed-to-lead service level of a rule: how soon the owner must first touch a lead.

    Attributes:
        first_touch_s: seconds from assignment to the first touch event.
        business_hours: count the time in the owner's working hours (their time zone, weekdays,
            minus absences) instead of wall-clock time.
        touch_events: outcome events that count as a touch.
        remind_s: remind the owner this long after assignment (``None``: no reminder).
        reassign: re-assign to the next eligible rep of the same destination on a breach.
        max_hops: at most this many re-assignments; then escalate (or stop).
        escalate: where the lead goes when the chain is exhausted (``None``: nowhere, only alerted).
    """

    first_touch_s: int
    business_hours: bool = True
    touch_events: tuple[str, ...] = ("contacted", "meeting")
    remind_s: int | None = None
    reassign: bool = True
    max_hops: int = 1
    escalate: Escalation | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    when: Condition
    then: Destination
    description: str = ""
    sla: Sla | None = None


@dataclass(frozen=True)
class Availability:
    absences: bool = True
    working_hours: bool = False


@dataclass(frozen=True)
class Exploration:
    """A share of traffic spread uniformly over ``teams`` (default: every team the policy uses),
    so each of them keeps at least ``floor`` probability and offline evaluation has support."""

    share: float
    floor: float = 0.0
    teams: tuple[str, ...] = ()

    def effective_share(self, k: int) -> float:
        return min(1.0, max(self.share, self.floor * k)) if k else 0.0


@dataclass(frozen=True)
class PolicySpec:
    name: str
    rules: tuple[Rule, ...]
    fallback: Destination
    description: str = ""
    availability: Availability = Availability()
    exploration: Exploration | None = None
    sla: Sla | None = None

    def sla_for(self, rule: str | None) -> Sla | None:
        """The SLA of the rule named ``rule`` (``fallback`` or unknown: the policy default)."""
        for r in self.rules:
            if r.name == rule:
                return r.sla or self.sla
        return self.sla

    def destinations(self) -> list[tuple[str, Destination]]:
        """Every destination in the spec with where it sits (``rule 'x'``, ``fallback``, ...)."""
        out: list[tuple[str, Destination]] = []
        for place, dest in [(f"rule '{r.name}'", r.then) for r in self.rules] + [("fallback", self.fallback)]:
            depth = 0
            node: Destination | None = dest
            while node is not None:
                out.append((place if depth == 0 else f"{place} fallback {depth}", node))
                node, depth = node.fallback, depth + 1
        return out
