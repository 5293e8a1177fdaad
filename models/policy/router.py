"""A policy ready to route: rule matching, exploration, destinations with fallbacks, assignment.

One semantics, two speeds. :meth:`Policy.replay` routes many leads in time order: rule matching is
one polars expression over all leads, assignment runs per destination over numpy segments.
:meth:`Policy.route_one` routes one lead with plain Python conditions and the same assignment
engine. :meth:`Policy.team_probabilities` is the stateless distribution over teams (rules plus
exploration) that off-policy evaluation reads; a decision's propensity is its team probability
times the probability of the rep chosen inside the team in the state it was decided in. When
nobody is eligible and a lead moves down a fallback chain, the propensity is that of the path
taken (the intended team's probability): a lower bound of the final destination's probability,
exact whenever only one team can fall back there (:meth:`Policy.distribution_one` gives the exact
distribution for one lead). Replay processes destinations one after another, each in time
order; when two destinations share a rep, the earlier one in the spec gets that rep's seats of
the day first (the endpoint, deciding in arrival order, is exact).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

import numpy as np
import polars as pl

from models.policy.assignment import METHOD_TYPES, AssignmentMethod, Inputs, RoutingState
from models.policy.conditions import compile_condition, describe, evaluate
from models.policy.decisions import compact_json, decisions_frame, why_without_rep
from models.policy.roster import Roster, utc_day
from models.policy.spec import Destination, PolicySpec
from models.policy.types import Decision, FitScorer, LeadScorer, OneLeadFit, OneLeadScorer

_END, _POLICY_FALLBACK = -1, -2
ANY_TEAM = "(any sales team)"
_FILTER_FIELDS = {"territory": ("region",), "account_owner": ("account_id",)}


@dataclass(frozen=True)
class Replay:
    """Decisions in time order (``lead_id, created_at, team, rep_id, action, propensity, score,
    rule, method, notify, reasons``) and the state routing ended in."""

    decisions: pl.DataFrame
    state: RoutingState


class Policy:
    """A parsed spec bound to a roster and (optionally) injected scorers.

    Args:
        spec: the parsed policy.
        roster: teams and reps to route into.
        version: the registered version (recorded in decisions by the callers).
        scorer: gives the 0–100 ``score`` rules read; without it the leads' ``score`` column is used.
        fit: expected value per lead and rep, needed by ``best_fit`` destinations.
    """

    def __init__(
        self,
        spec: PolicySpec,
        roster: Roster,
        *,
        version: int | None = None,
        scorer: LeadScorer | None = None,
        fit: FitScorer | None = None,
    ) -> None:
        self.spec, self.roster, self.version, self.scorer, self.fit = spec, roster, version, scorer, fit
        # The scorers' optional one-lead paths (same values, no one-row frame): see types.py.
        self._score_one = cast(OneLeadScorer, scorer) if callable(getattr(scorer, "score_one", None)) else None
        self._fit_one = cast(OneLeadFit, fit) if callable(getattr(fit, "expected_value_one", None)) else None
        self._dests: list[Destination] = []
        self._next: list[int] = []
        heads = [self._chain(rule.then) for rule in spec.rules]
        ex = spec.exploration
        teams = [d.team for d in [r.then for r in spec.rules] + [spec.fallback] if d.team is not None]
        self.explore_teams: tuple[str, ...] = (ex.teams or tuple(dict.fromkeys(teams))) if ex else ()
        self.epsilon = ex.effective_share(len(self.explore_teams)) if ex else 0.0
        explore_heads = []
        for team in self.explore_teams:
            found = [h for h, rule in zip(heads, spec.rules, strict=True) if rule.then.team == team]
            explore_heads.append(found[0] if found else self._chain(Destination(team=team)))
        fallback = self._chain(spec.fallback, end=_END)
        self._next = [fallback if n == _POLICY_FALLBACK else n for n in self._next]
        self._rule_head = np.array([*heads, fallback], dtype=np.int64)
        self._explore_head = np.array(explore_heads, dtype=np.int64)
        self._methods: list[AssignmentMethod] = [METHOD_TYPES[d.method]() for d in self._dests]
        self._draws_rep = any(d.method == "random" for d in self._dests)
        self.rule_names = [r.name for r in spec.rules] + ["fallback"]
        self._conditions = [describe(r.when) for r in spec.rules] + ["no rule matched"]
        self._head_team = np.array([self._dests[h].team or ANY_TEAM for h in self._rule_head], dtype=object)
        # The roster is fixed for the policy's life: each destination's reps, computed once.
        self._pools = [roster.members(d.team, d.seniority, d.reps) for d in self._dests]
        # One lead at a time: who is available in a destination only changes on whole minutes, and
        # live leads arrive "now", so many share one (bounded; cleared when full).
        self._available: dict[tuple[int, int], np.ndarray] = {}
        self._matchers: dict[tuple[tuple[str, pl.DataType], ...], pl.Expr] = {}  # per leads schema

    @property
    def destinations(self) -> list[Destination]:
        """Every destination, fallbacks included, in processing order (a fallback after its sources)."""
        return self._dests

    @property
    def methods(self) -> list[AssignmentMethod]:
        return self._methods

    @property
    def conditions(self) -> list[str]:
        """Each rule's condition in words (then "no rule matched" for the fallback)."""
        return self._conditions

    def _chain(self, dest: Destination, end: int = _POLICY_FALLBACK) -> int:
        nodes: list[Destination] = []
        node: Destination | None = dest
        while node is not None:
            nodes.append(node)
            node = node.fallback
        start = len(self._dests)
        for i, n in enumerate(nodes):
            self._dests.append(n)
            self._next.append(start + i + 1 if i + 1 < len(nodes) else end)
        return start

    # -- stateless: scores, rules, team distribution ----------------------------------------

    def scored(self, leads: pl.DataFrame) -> pl.DataFrame:
        """``leads`` with a Float64 ``score`` column (from the scorer, else the existing column)."""
        if self.scorer is not None:
            return leads.with_columns(pl.Series("score", np.asarray(self.scorer.score(leads), dtype=np.float64)))
        if "score" in leads.columns:
            return leads.with_columns(pl.col("score").cast(pl.Float64, strict=False))
        return leads.with_columns(pl.lit(None, pl.Float64).alias("score"))

    def match(self, leads: pl.DataFrame) -> np.ndarray:
        """Index of the first matching rule per lead (``len(rules)`` = the fallback); leads must be scored."""
        if not self.spec.rules:
            return np.full(leads.height, 0, dtype=np.int64)
        schema = tuple(leads.schema.items())
        expr = self._matchers.get(schema)
        if expr is None:  # building the expressions costs as much as running them on a batch
            chain: Any = pl
            for i, rule in enumerate(self.spec.rules):
                chain = chain.when(compile_condition(rule.when, dict(schema))).then(pl.lit(i, pl.Int64))
            expr = chain.otherwise(pl.lit(len(self.spec.rules), pl.Int64)).alias("_rule")
            if len(self._matchers) >= 64:
                self._matchers.clear()
            self._matchers[schema] = expr
        # with_columns broadcasts a constant condition (a rule without `when`) to every lead.
        return np.asarray(leads.with_columns(expr)["_rule"].to_numpy())

    def match_one(self, lead: Mapping[str, Any]) -> int:
        """The same as :meth:`match` for one lead (a mapping that includes ``score``)."""
        for i, rule in enumerate(self.spec.rules):
            if evaluate(rule.when, lead):
                return i
        return len(self.spec.rules)

    def team_probabilities(self, leads: pl.DataFrame) -> pl.DataFrame:
        """Every team with nonzero probability per lead: ``lead_id, team, probability`` (sums to 1)."""
        frame = self.scored(leads)
        rule = self.match(frame)
        teams = list(dict.fromkeys([*self._head_team.tolist(), *self.explore_teams]))
        p = np.zeros((frame.height, len(teams)))
        code = {t: i for i, t in enumerate(teams)}
        p[np.arange(frame.height), [code[t] for t in self._head_team[rule]]] += 1.0 - self.epsilon
        for team in self.explore_teams:
            p[:, code[team]] += self.epsilon / len(self.explore_teams)
        rows, cols = np.nonzero(p > 0)
        return pl.DataFrame(
            {
                "lead_id": frame["lead_id"].cast(pl.String).gather(rows),
                "team": np.array(teams, dtype=object)[cols].tolist(),
                "probability": p[rows, cols],
            },
            schema={"lead_id": pl.String, "team": pl.String, "probability": pl.Float64},
        )

    # -- batch ------------------------------------------------------------------------------

    def replay(self, leads: pl.DataFrame, *, rng: np.random.Generator, state: RoutingState | None = None) -> Replay:
        """Route ``leads`` in time order (``created_at``, ties by input order), honouring state."""
        frame = self.scored(leads)
        if not frame["created_at"].is_sorted():  # the endpoint's batches come sorted
            frame = frame.sort("created_at", maintain_order=True)
        n = frame.height
        state = state or RoutingState(self.roster.size)
        rule = self.match(frame)
        head = self._rule_head[rule]
        team_p, explored = np.ones(n), np.zeros(n, dtype=bool)
        if self.epsilon > 0:
            explored = rng.random(n) < self.epsilon
            head = np.where(explored, self._explore_head[rng.integers(0, len(self.explore_teams), n)], head)
            team_p = self._team_share(self._head_team[rule], self._team_label(head))
        draw = rng.random(n) if any(d.method == "random" for d in self._dests) else None
        created, day = frame["created_at"], utc_day(frame["created_at"])
        at, rep, rep_p = head.copy(), np.full(n, -1, dtype=np.int64), np.ones(n)
        final, eligible = np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
        # Destinations are numbered so that a fallback always comes after every destination
        # that can fall back to it: one pass in index order sees each lead's whole path.
        for d, dest in enumerate(self._dests):
            pos = np.flatnonzero(at == d)
            if pos.size == 0:
                continue
            if self._kind(dest) != "sales":
                final[pos] = d
                continue
            pool = self._pools[d]
            mask = self.roster.available(created.gather(pos), pool, self.spec.availability)
            values = {f: _column(frame, f, pos) for f in self._fields(dest)}
            value = self._values(dest, frame[pos], pool) if dest.method == "best_fit" else None
            x = self._inputs(dest, pool, mask, values, day[pos], value, None if draw is None else draw[pos])
            res = self._methods[d].assign(str(d), x, state)
            got = res.rep >= 0
            rep[pos[got]], rep_p[pos[got]], eligible[pos[got]], final[pos[got]] = (
                res.rep[got],
                res.probability[got],
                res.eligible[got],
                d,
            )
            missed = pos[~got]
            if self._next[d] == _END:
                final[missed] = d
            else:
                at[missed] = self._next[d]
        decisions = decisions_frame(self, frame, rule, head, final, rep, team_p * rep_p, eligible, explored)
        return Replay(decisions=decisions, state=state)

    # -- one lead ---------------------------------------------------------------------------

    def route_one(self, lead: Mapping[str, Any], state: RoutingState, rng: np.random.Generator) -> Decision:
        """Route one lead (a mapping of fields; ``created_at`` a datetime or ISO text), updating ``state``."""
        view, created = self._view(lead)
        rule = self.match_one(view)
        head = int(self._rule_head[rule])
        team_p, explored = 1.0, False
        if self.epsilon > 0 and rng.random() < self.epsilon:
            explored = True
            head = int(self._explore_head[rng.integers(0, len(self.explore_teams))])
        if self.epsilon > 0:
            team_p = float(self._team_share(self._head_team[[rule]], self._team_label(np.array([head])))[0])
        draw = np.array([rng.random()]) if self._draws_rep else None
        d, rep, rep_p, eligible = self._walk(head, view, lead, created, state, draw)
        dest = self._dests[d]
        team = str(self.roster.team[rep]) if rep >= 0 else str(dest.team)
        kind = self.roster.kind(team) or "unknown"
        action = ("assign" if rep >= 0 else "inbox") if kind == "sales" else kind
        score = view.get("score")
        reasons = {
            "rule": self.rule_names[rule],
            "condition": self._conditions[rule],
            "method": dest.method if rep >= 0 else None,
            "why": self._methods[d].words if rep >= 0 else why_without_rep(kind),
            "eligible_reps": eligible,
            "explored": explored,
            "fallback": self.path_note(head, d),
            "notify": dest.notify,
        }
        return Decision(
            lead_id=str(view.get("lead_id")),
            team=team,
            rep_id=str(self.roster.rep_id[rep]) if rep >= 0 else None,
            action=action,
            propensity=team_p * rep_p,
            score=None if score is None else float(score),
            rule=self.rule_names[rule],
            method=dest.method if rep >= 0 else None,
            notify=dest.notify,
            reasons=compact_json(reasons),
        )

    def distribution_one(self, lead: Mapping[str, Any], state: RoutingState) -> list[tuple[str, str | None, float]]:
        """Every destination ``(team, rep_id, probability)`` this lead could get in ``state``
        (which is not changed): rules and exploration over teams, then each team's method and
        fallbacks as they stand, so a destination reached by several paths sums them. The
        probabilities sum to 1, and :meth:`route_one`'s decisions follow this distribution."""
        view, created = self._view(lead)
        rule = self.match_one(view)
        heads: dict[int, float] = {}
        for h, p in [(int(self._rule_head[rule]), 1.0 - self.epsilon)] + [
            (int(h), self.epsilon / len(self.explore_teams)) for h in self._explore_head
        ]:
            heads[h] = heads.get(h, 0.0) + p
        out: dict[tuple[str, str | None], float] = {}
        for h, p in heads.items():
            if p <= 0:
                continue
            d, rep, _, k = self._walk(h, view, lead, created, state.fork(), np.zeros(1))
            if rep >= 0 and self._dests[d].method == "random" and k > 1:
                picks = [self._walk(h, view, lead, created, state.fork(), np.array([(i + 0.5) / k])) for i in range(k)]
            else:
                picks = [(d, rep, 1.0, k)]
            for d, rep, _, _ in picks:
                key = (
                    str(self.roster.team[rep]) if rep >= 0 else str(self._dests[d].team),
                    str(self.roster.rep_id[rep]) if rep >= 0 else None,
                )
                out[key] = out.get(key, 0.0) + p / len(picks)
        return [(team, rep_id, p) for (team, rep_id), p in out.items()]

    def _view(self, lead: Mapping[str, Any]) -> tuple[dict[str, Any], datetime]:
        view = dict(lead)
        if self._score_one is not None:
            view["score"] = float(self._score_one.score_one(lead))
        elif self.scorer is not None:
            view["score"] = float(self.scorer.score(pl.DataFrame([lead]))[0])
        return view, _instant(view.get("created_at"))

    def _walk(
        self,
        d: int,
        view: Mapping[str, Any],
        lead: Mapping[str, Any],
        created: datetime,
        state: RoutingState,
        draw: np.ndarray | None,
    ) -> tuple[int, int, float, int]:
        """Follow the destination chain from ``d`` for one lead: (final destination, rep row or
        -1, probability of the rep, eligible reps)."""
        day = np.array([(created.astimezone(UTC).date() - date(1970, 1, 1)).days], dtype=np.int64)
        while True:
            dest = self._dests[d]
            if self._kind(dest) != "sales":
                return d, -1, 1.0, 0
            pool = self._pools[d]
            mask = self._available_one(d, created)[None, :]
            values = {f: [view.get(f)] for f in self._fields(dest)}
            value = self._values_one(dest, lead, pool) if dest.method == "best_fit" else None
            res = self._methods[d].assign(str(d), self._inputs(dest, pool, mask, values, day, value, draw), state)
            if res.rep[0] >= 0:
                return d, int(res.rep[0]), float(res.probability[0]), int(res.eligible[0])
            if self._next[d] == _END:
                return d, -1, 1.0, 0
            d = self._next[d]

    def _available_one(self, d: int, created: datetime) -> np.ndarray:
        minute = int(created.timestamp() // 60)
        key = (d, minute)
        found = self._available.get(key)
        if found is None:
            if len(self._available) >= 4096:
                self._available.clear()
            found = self.roster.available_one(created, self._pools[d], self.spec.availability)
            found.flags.writeable = False
            self._available[key] = found
        return found

    # -- shared pieces ----------------------------------------------------------------------

    def _kind(self, dest: Destination) -> str:
        return "sales" if dest.team is None else (self.roster.kind(dest.team) or "unknown")

    def _team_label(self, heads: np.ndarray) -> np.ndarray:
        return np.array([self._dests[h].team or ANY_TEAM for h in heads], dtype=object)

    def _team_share(self, rule_team: np.ndarray, team: np.ndarray) -> np.ndarray:
        k = len(self.explore_teams)
        share = np.where(rule_team == team, 1.0 - self.epsilon, 0.0)
        explore = np.isin(team.astype(str), list(self.explore_teams)) * (self.epsilon / k)
        return np.asarray(share + explore, dtype=np.float64)

    @staticmethod
    def _fields(dest: Destination) -> tuple[str, ...]:
        return dest.skills if dest.method == "skill_match" else _FILTER_FIELDS.get(dest.method, ())

    def _inputs(
        self,
        dest: Destination,
        pool: np.ndarray,
        mask: np.ndarray,
        values: Mapping[str, list[Any]],
        day: np.ndarray,
        value: np.ndarray | None,
        draw: np.ndarray | None,
    ) -> Inputs:
        if dest.method == "account_owner":
            mask = mask & self.roster.owner_mask(pool, values["account_id"])
        elif dest.method in ("territory", "skill_match"):
            skills = ("region",) if dest.method == "territory" else dest.skills
            matched = mask & self.roster.skill_mask(pool, values, skills)
            # Prefer matching reps; if none is available, any available rep of the team (a fallback).
            mask = np.where(matched.any(axis=1, keepdims=True), matched, mask)
        r = self.roster
        return Inputs(pool, mask, day, r.capacity[pool], r.weight[pool], dest.respect_capacity, value, draw)

    def _values(self, dest: Destination, leads: pl.DataFrame, pool: np.ndarray) -> np.ndarray | None:
        if dest.method != "best_fit":
            return None
        if self.fit is None:
            raise ValueError(f"policy '{self.spec.name}': best_fit needs a fit scorer, and none was given")
        return np.asarray(self.fit.expected_value(leads, self.roster.rep_id[pool].tolist()), dtype=np.float64)

    def _values_one(self, dest: Destination, lead: Mapping[str, Any], pool: np.ndarray) -> np.ndarray | None:
        """:meth:`_values` for one lead: ``(1, len(pool))``, through the fit's one-lead path if it has one."""
        if self._fit_one is None:
            return self._values(dest, pl.DataFrame([lead]), pool)
        row = self._fit_one.expected_value_one(lead, self.roster.rep_id[pool].tolist())
        return np.asarray(row, dtype=np.float64).reshape(1, -1)

    def path_note(self, head: int, final: int) -> str:
        """Every destination a lead passed before ``final`` had nobody eligible (a fallback path)."""
        out, d = [], head
        while d != final and d >= 0:
            out.append(f"nobody eligible in {self._dests[d].team or ANY_TEAM}")
            d = self._next[d]
        return "; ".join(out)


def _column(frame: pl.DataFrame, name: str, pos: np.ndarray) -> list[Any]:
    return frame[name].gather(pos).to_list() if name in frame.columns else [None] * pos.size


def _instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError("lead: created_at is required (a timestamp) to route a lead")


def reasons_of(decision: Decision) -> dict[str, Any]:
    """The decision's reasons as a dict."""
    parsed: dict[str, Any] = json.loads(decision.reasons)
    return parsed
