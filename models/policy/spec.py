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
class Rule:
    name: str
    when: Condition
    then: Destination
    description: str = ""


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
