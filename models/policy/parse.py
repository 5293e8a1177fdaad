"""Parsing a YAML-loaded mapping into a :class:`~models.policy.spec.PolicySpec`.

The parser never evaluates anything: it checks shapes, names (identifier patterns), operators,
value types and sizes, and refuses values that look like injected SQL or code. Every problem is
collected with the rule it belongs to, so one run tells an analyst everything to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from models.policy.spec import (
    ALWAYS,
    MAX_DEPTH,
    MAX_LIST_VALUES,
    MAX_NODES,
    MAX_RULES,
    MAX_SLA_HOPS,
    MAX_TEXT,
    METHODS,
    OPERATORS,
    TOUCH_EVENTS,
    AllOf,
    AnyOf,
    Availability,
    Condition,
    Destination,
    Escalation,
    Exploration,
    Leaf,
    Not,
    Operator,
    PolicySpec,
    PolicySpecError,
    Rule,
    Scalar,
    Sla,
)

# Spellings analysts type, mapped to the one canonical operator.
_ALIASES: dict[str, Operator] = {
    "==": "=",
    "eq": "=",
    "ne": "!=",
    "<>": "!=",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "not_in": "not in",
    "is_missing": "is missing",
    "missing": "is missing",
}

_DURATION = re.compile(r"^\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>s|sec|m|min|h|hr|d)\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}
MAX_SLA_S = 30 * 86400
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
ENTITY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")
# Values that look like an injection attempt. They would be harmless here (values are only ever
# compared, never executed or spliced into SQL), but a spec carrying them is almost certainly
# malicious or corrupted, so it is refused with a clear reason instead of silently kept.
_SUSPICIOUS = re.compile(
    r";\s*(drop|delete|insert|update|select|alter|create|attach|copy|pragma|truncate)\b|--|/\*|\*/"
    r"|\bunion\s+(all\s+)?select\b|\bor\s+1\s*=\s*1\b|__\w+__|\$\{|\{\{|`"
    r"|\b(eval|exec|import|compile|open|system|getattr|lambda)\s*\(|[\x00-\x08\x0b\x0c\x0e-\x1f]",
    re.IGNORECASE,
)


def parse_policy(raw: object) -> PolicySpec:
    """Parse a YAML-loaded mapping into a :class:`PolicySpec`.

    Raises:
        PolicySpecError: every problem found, each naming the rule or key.
    """
    p = _Parser()
    spec = p.policy(raw)
    if p.problems or spec is None:
        raise PolicySpecError(p.problems)
    return spec


class _Parser:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.nodes = 0

    def fail(self, where: str, message: str) -> None:
        if len(self.problems) < 50:  # a broken huge spec must not produce a huge message
            self.problems.append(f"{where}: {message}")

    def policy(self, raw: object) -> PolicySpec | None:
        if not isinstance(raw, Mapping):
            self.fail("policy", "must be a mapping with 'name', 'rules' and 'fallback'")
            return None
        self.keys("policy", raw, {"name", "description", "rules", "fallback", "availability", "exploration", "sla"})
        name = self.name("policy name", raw.get("name"), ENTITY_NAME)
        rules_raw = raw.get("rules", [])
        if not isinstance(rules_raw, list):
            self.fail("rules", "must be a list")
            rules_raw = []
        if len(rules_raw) > MAX_RULES:
            self.fail("rules", f"{len(rules_raw)} rules; at most {MAX_RULES} are allowed")
            rules_raw = []
        rules = [self.rule(i, r) for i, r in enumerate(rules_raw)]
        names = [r.name for r in rules if r is not None]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            self.fail(f"rule '{dup}'", "the name is used by more than one rule")
        if "fallback" not in raw:
            self.fail("fallback", "is mandatory: say where a lead goes when no rule matches (e.g. {team: queue})")
        fallback = self.destination("fallback", raw["fallback"], 0) if "fallback" in raw else None
        last = fallback
        while last is not None and last.fallback is not None:
            last = last.fallback
        if last is not None and last.team is None:
            # The end of the line must be a team, so a lead nobody can take still has an owner.
            self.fail("fallback", "its last step must name a team (e.g. {team: queue})")
        return PolicySpec(
            name=name or "",
            rules=tuple(r for r in rules if r is not None),
            fallback=fallback or Destination(team="queue"),
            description=self.text("description", raw.get("description", "")),
            availability=self.availability(raw.get("availability")),
            exploration=self.exploration(raw.get("exploration")),
            sla=self.sla("policy sla", raw.get("sla")),
        )

    def keys(self, where: str, raw: Mapping[Any, Any], allowed: set[str]) -> None:
        for key in raw:
            if key not in allowed:
                self.fail(where, f"unknown key '{str(key)[:40]}' (allowed: {', '.join(sorted(allowed))})")

    def name(self, where: str, value: object, pattern: re.Pattern[str]) -> str | None:
        if not isinstance(value, str) or not pattern.match(value):
            self.fail(where, f"{str(value)[:40]!r} is not a valid name (letters, digits, '_', '-', '.'; ≤ 64)")
            return None
        return value

    def text(self, where: str, value: object) -> str:
        if not isinstance(value, str) or len(value) > 2_000:
            self.fail(where, "must be text of at most 2,000 characters")
            return ""
        return value

    def rule(self, i: int, raw: object) -> Rule | None:
        where = f"rule {i + 1}"
        if not isinstance(raw, Mapping):
            self.fail(where, "must be a mapping with 'name', 'when' and 'then'")
            return None
        name = self.name(f"{where} name", raw.get("name"), ENTITY_NAME)
        where = f"rule '{name}'" if name else where
        self.keys(where, raw, {"name", "description", "when", "then", "sla"})
        when = ALWAYS if raw.get("when") is None else self.condition(where, raw["when"], 0)
        then = self.destination(where, raw.get("then"), 0)
        sla = self.sla(f"{where} sla", raw.get("sla"))
        if name is None or when is None or then is None:
            return None
        return Rule(name=name, when=when, then=then, description=self.text(where, raw.get("description", "")), sla=sla)

    def condition(self, where: str, raw: object, depth: int) -> Condition | None:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            self.fail(where, f"conditions nest deeper than {MAX_DEPTH} or have more than {MAX_NODES} parts")
            return None
        if not isinstance(raw, Mapping) or not raw:
            self.fail(where, "a condition must be a mapping: {field, op, value} or {all|any: [...]} or {not: ...}")
            return None
        if len(raw) == 1 and next(iter(raw)) in ("all", "any"):
            key = next(iter(raw))
            items = raw[key]
            if not isinstance(items, list) or len(items) > MAX_LIST_VALUES:
                self.fail(where, f"'{key}' needs a list of conditions")
                return None
            parsed = [self.condition(where, item, depth + 1) for item in items]
            if any(c is None for c in parsed):
                return None
            clean = tuple(c for c in parsed if c is not None)
            return AllOf(clean) if key == "all" else AnyOf(clean)
        if len(raw) == 1 and "not" in raw:
            inner = self.condition(where, raw["not"], depth + 1)
            return None if inner is None else Not(inner)
        self.keys(where, raw, {"field", "op", "value"})
        field = self.name(f"{where} field", raw.get("field"), FIELD_NAME)
        op_raw = raw.get("op")
        op = _ALIASES.get(str(op_raw).strip().lower(), str(op_raw).strip().lower()) if isinstance(op_raw, str) else None
        if op not in OPERATORS:
            self.fail(where, f"unknown operator {str(op_raw)[:40]!r} (use one of: {', '.join(OPERATORS)})")
            return None
        value = self.value(where, op, raw.get("value"))
        if field is None or (value is None and op != "is missing"):
            return None
        return Leaf(field=field, op=op, value=value)

    def value(self, where: str, op: str, raw: object) -> Scalar | tuple[Scalar, ...] | None:
        if op == "is missing":
            if raw is not None:
                self.fail(where, "'is missing' takes no value")
            return None
        if op in ("in", "not in", "between"):
            if not isinstance(raw, list | tuple) or not raw or len(raw) > MAX_LIST_VALUES:
                self.fail(where, f"'{op}' needs a non-empty list (at most {MAX_LIST_VALUES} values)")
                return None
            items = [self.scalar(where, v) for v in raw]
            if any(v is None for v in items):
                return None
            values = tuple(v for v in items if v is not None)
            if op == "between" and (
                len(values) != 2 or not all(_is_number(v) for v in values) or float(values[0]) > float(values[1])
            ):
                self.fail(where, "'between' needs [low, high] numbers with low ≤ high")
                return None
            return values
        scalar = self.scalar(where, raw)
        if scalar is None:
            return None
        if op in ("<", "<=", ">", ">=") and not _is_number(scalar):
            self.fail(where, f"'{op}' needs a number, got {str(scalar)[:40]!r}")
            return None
        if op == "contains" and not isinstance(scalar, str):
            self.fail(where, "'contains' needs text")
            return None
        return scalar

    def scalar(self, where: str, raw: object) -> Scalar | None:
        if isinstance(raw, bool | int | float) and not (isinstance(raw, float) and raw != raw):
            return raw
        if isinstance(raw, str):
            if len(raw) > MAX_TEXT:
                self.fail(where, f"a value is longer than {MAX_TEXT} characters")
                return None
            if _SUSPICIOUS.search(raw):
                self.fail(where, f"value {raw[:40]!r} looks like code or SQL; values are plain text or numbers")
                return None
            return raw
        self.fail(where, f"values must be text, numbers or booleans, got {type(raw).__name__}")
        return None

    def destination(self, where: str, raw: object, depth: int) -> Destination | None:
        if not isinstance(raw, Mapping):
            self.fail(where, "'then'/'fallback' must be a mapping such as {team: smb, method: round_robin}")
            return None
        if depth > 5:
            self.fail(where, "fallback chains are limited to 5 steps")
            return None
        self.keys(
            where, raw, {"team", "method", "seniority", "reps", "skills", "respect_capacity", "notify", "fallback"}
        )
        method = raw.get("method", "round_robin")
        if method not in METHODS:
            self.fail(where, f"unknown assignment method {str(method)[:40]!r} (use one of: {', '.join(METHODS)})")
            return None
        team = raw.get("team")
        if team is not None and self.name(f"{where} team", team, ENTITY_NAME) is None:
            return None
        seniority = self.names(where, raw.get("seniority", []))
        reps = self.names(where, raw.get("reps", []))
        skills = self.names(where, raw.get("skills", ["industry"]))
        for skill in skills:
            if skill not in ("industry", "language"):
                self.fail(where, f"unknown skill {skill!r} (use industry, language)")
        fallback = None
        if raw.get("fallback") is not None:
            fallback = self.destination(f"{where} fallback", raw["fallback"], depth + 1)
        flags = {
            k: raw.get(k, method != "account_owner" if k == "respect_capacity" else False)
            for k in ("respect_capacity", "notify")
        }
        for k, v in flags.items():
            if not isinstance(v, bool):
                self.fail(where, f"'{k}' must be true or false")
        return Destination(
            team=team,
            method=method,
            seniority=seniority,
            reps=reps,
            skills=skills or ("industry",),
            respect_capacity=bool(flags["respect_capacity"]),
            notify=bool(flags["notify"]),
            fallback=fallback,
        )

    def names(self, where: str, raw: object) -> tuple[str, ...]:
        if not isinstance(raw, list) or len(raw) > MAX_LIST_VALUES:
            self.fail(where, "expected a list of names")
            return ()
        return tuple(n for n in (self.name(where, v, ENTITY_NAME) for v in raw) if n is not None)

    def availability(self, raw: object) -> Availability:
        if raw is None:
            return Availability()
        if not isinstance(raw, Mapping):
            self.fail("availability", "must be a mapping {absences: bool, working_hours: bool}")
            return Availability()
        self.keys("availability", raw, {"absences", "working_hours"})
        values = {k: raw.get(k, k == "absences") for k in ("absences", "working_hours")}
        if not all(isinstance(v, bool) for v in values.values()):
            self.fail("availability", "absences and working_hours must be true or false")
            return Availability()
        return Availability(absences=bool(values["absences"]), working_hours=bool(values["working_hours"]))

    def exploration(self, raw: object) -> Exploration | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            self.fail("exploration", "must be a mapping {share, floor, teams}")
            return None
        self.keys("exploration", raw, {"share", "floor", "teams"})
        share, floor = raw.get("share", 0.0), raw.get("floor", 0.0)
        if not (_is_number(share) and _is_number(floor) and 0 <= share <= 1 and 0 <= floor <= 1):
            self.fail("exploration", "share and floor must be numbers within [0, 1]")
            return None
        return Exploration(
            share=float(share), floor=float(floor), teams=self.names("exploration", raw.get("teams", []))
        )

    def duration(self, where: str, raw: object) -> int | None:
        """``30m``, ``2h``, ``90s`` (or a bare number of minutes) → whole seconds."""
        seconds: float | None = None
        if _is_number(raw):
            seconds = float(raw) * 60  # type: ignore[arg-type]
        elif isinstance(raw, str) and (match := _DURATION.match(raw)):
            seconds = float(match["amount"]) * _UNIT_S[match["unit"].lower()]
        if seconds is None or not 0 < seconds <= MAX_SLA_S:
            self.fail(where, f"{str(raw)[:40]!r} is not a duration like 5m, 30m, 2h or 90s (at most 30 days)")
            return None
        return round(seconds)

    def sla(self, where: str, raw: object) -> Sla | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            self.fail(where, "must be a mapping such as {first_touch: 30m, remind: 15m, max_hops: 1}")
            return None
        allowed = {"first_touch", "business_hours", "touch_events", "remind", "reassign", "max_hops", "escalate"}
        self.keys(where, raw, allowed)
        if "first_touch" not in raw:
            self.fail(where, "'first_touch' is mandatory (e.g. first_touch: 30m)")
            return None
        first = self.duration(f"{where} first_touch", raw["first_touch"])
        remind = None if raw.get("remind") is None else self.duration(f"{where} remind", raw["remind"])
        if first is not None and remind is not None and remind >= first:
            self.fail(where, f"'remind' ({raw['remind']}) must come before 'first_touch' ({raw['first_touch']})")
        flags = {k: raw.get(k, True) for k in ("business_hours", "reassign")}
        for k, v in flags.items():
            if not isinstance(v, bool):
                self.fail(where, f"'{k}' must be true or false")
        events_raw = raw.get("touch_events", ["contacted", "meeting"])
        events: tuple[str, ...] = ()
        if not isinstance(events_raw, list) or not events_raw:
            self.fail(where, f"'touch_events' must be a non-empty list of outcome events ({', '.join(TOUCH_EVENTS)})")
        else:
            for event in events_raw:
                if event not in TOUCH_EVENTS:
                    self.fail(where, f"unknown touch event {str(event)[:40]!r} (use: {', '.join(TOUCH_EVENTS)})")
            events = tuple(dict.fromkeys(e for e in events_raw if e in TOUCH_EVENTS))
        hops = raw.get("max_hops", 1)
        if not (isinstance(hops, int) and not isinstance(hops, bool) and 0 <= hops <= MAX_SLA_HOPS):
            self.fail(where, f"'max_hops' must be a whole number from 0 to {MAX_SLA_HOPS}")
            hops = 0
        escalate = self.escalation(f"{where} escalate", raw.get("escalate"))
        if first is None or not events:
            return None
        return Sla(
            first_touch_s=first,
            business_hours=bool(flags["business_hours"]),
            touch_events=events,
            remind_s=remind,
            reassign=bool(flags["reassign"]),
            max_hops=int(hops),
            escalate=escalate,
        )

    def escalation(self, where: str, raw: object) -> Escalation | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping) or not ({"team", "rep"} & set(raw)):
            self.fail(where, "must name a team and/or a rep, e.g. {team: queue} or {rep: R007}")
            return None
        self.keys(where, raw, {"team", "rep"})
        team = None if raw.get("team") is None else self.name(f"{where} team", raw["team"], ENTITY_NAME)
        rep = None if raw.get("rep") is None else self.name(f"{where} rep", raw["rep"], ENTITY_NAME)
        return Escalation(team=team, rep=rep) if team or rep else None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
