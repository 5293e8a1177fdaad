"""Choosing a rep inside a destination: one small base class, variants override only what differs.

The engine works on *segments*: consecutive leads (in time order) on the same UTC day whose set
of eligible reps is identical. Inside a segment the stateful methods are pure numpy:

* ``round_robin``/``weighted``/``territory``/``skill_match``/``account_owner`` use stride
  scheduling: each rep has a *pass*; the next lead goes to the lowest pass (ties by roster order)
  and the rep's pass grows by ``1 / weight``. Equal weights give exactly the rotation of a round
  robin pointer. A rep who comes back from an absence (or from a full day) restarts at the
  destination's *virtual time* (the lowest pass among reps who kept working), so a returning rep
  takes their turn in the rotation instead of a burst that "catches up".
* ``least_loaded`` ranks by load relative to daily capacity.
* ``random`` draws uniformly among eligible reps (probability ``1/k``); ``best_fit`` takes the
  eligible rep with the highest expected value. Both loop per lead inside the segment.

Every method respects per-rep daily capacity (when asked): a segment's leads beyond the seats
left come back unassigned (``-1``) and the router sends them to the destination's fallback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from models.policy.roster import UNLIMITED


@dataclass
class RoutingState:
    """What routing remembers between leads: loads per UTC day, stride passes per destination.

    Replay builds one and threads it through history; the endpoint keeps one per deployment.
    """

    n_reps: int
    loads: dict[int, np.ndarray] = field(default_factory=dict)
    passes: dict[str, np.ndarray] = field(default_factory=dict)
    vtime: dict[str, float] = field(default_factory=dict)

    def load(self, day: int) -> np.ndarray:
        if day not in self.loads:
            self.loads[day] = np.zeros(self.n_reps, dtype=np.int64)
        return self.loads[day]

    def pass_of(self, key: str) -> np.ndarray:
        if key not in self.passes:
            self.passes[key] = np.zeros(self.n_reps)
        return self.passes[key]

    def fork(self) -> RoutingState:
        """An independent copy (for what-if routing that must not change the real state)."""
        return RoutingState(
            self.n_reps,
            {d: v.copy() for d, v in self.loads.items()},
            {k: v.copy() for k, v in self.passes.items()},
            dict(self.vtime),
        )

    def to_json(self, keep_days: int | None = None) -> dict[str, Any]:
        """A JSON-ready snapshot (the endpoint persists it to survive a restart); with
        ``keep_days`` only the latest that many capacity days are kept."""
        days = sorted(self.loads)[-keep_days:] if keep_days else sorted(self.loads)
        return {
            "n_reps": self.n_reps,
            "loads": {str(d): self.loads[d].tolist() for d in days},
            "passes": {k: v.tolist() for k, v in self.passes.items()},
            "vtime": dict(self.vtime),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoutingState:
        n = int(data["n_reps"])
        loads = {int(d): np.asarray(v, dtype=np.int64) for d, v in data.get("loads", {}).items()}
        passes = {str(k): np.asarray(v, dtype=np.float64) for k, v in data.get("passes", {}).items()}
        if any(v.size != n for v in [*loads.values(), *passes.values()]):
            raise ValueError(f"routing state: every vector must have {n} reps (the roster changed?)")
        return cls(n, loads, passes, {str(k): float(v) for k, v in data.get("vtime", {}).items()})


@dataclass(frozen=True)
class Segmented:
    """Per lead: the chosen rep (row of the roster, -1 if nobody), its probability and how many
    reps were eligible when it was chosen."""

    rep: np.ndarray
    probability: np.ndarray
    eligible: np.ndarray


@dataclass(frozen=True)
class Inputs:
    """What a destination's leads bring: ``mask`` (n × len(pool)) of eligible reps, ``day`` (UTC
    day numbers, nondecreasing), optional per-lead ``value`` (n × len(pool), best fit) and ``draw``
    (uniform [0, 1) per lead, random)."""

    pool: np.ndarray
    mask: np.ndarray
    day: np.ndarray
    capacity: np.ndarray
    weight: np.ndarray
    respect_capacity: bool = True
    value: np.ndarray | None = None
    draw: np.ndarray | None = None


class AssignmentMethod:
    """Base: split into segments, hand each to :meth:`segment`, update the day's loads."""

    name: ClassVar[str] = "base"
    words: ClassVar[str] = "assigned"

    def assign(self, key: str, x: Inputs, state: RoutingState) -> Segmented:
        n = x.day.size
        rep = np.full(n, -1, dtype=np.int64)
        prob = np.ones(n)
        eligible = np.zeros(n, dtype=np.int64)
        if n == 0 or x.pool.size == 0:
            return Segmented(rep, prob, eligible)
        if n == 1:  # one lead (the endpoint): one segment, without the segmenting
            load = state.load(int(x.day[0]))
            remaining = x.capacity - load[x.pool] if x.respect_capacity else np.full(x.pool.size, UNLIMITED)
            local, p, k = self.segment(key, x, 0, 1, x.mask[0] & (remaining > 0), remaining, state)
            if local[0] >= 0:
                rep[0] = x.pool[local[0]]
                load[rep[0]] += 1
            return Segmented(rep, np.asarray(p, dtype=np.float64), np.asarray(k, dtype=np.int64))
        change = np.ones(n, dtype=bool)
        change[1:] = (x.day[1:] != x.day[:-1]) | (x.mask[1:] != x.mask[:-1]).any(axis=1)
        starts = np.flatnonzero(change)
        ends = np.append(starts[1:], n)
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            day = int(x.day[a])
            load = state.load(day)
            remaining = x.capacity - load[x.pool] if x.respect_capacity else np.full(x.pool.size, UNLIMITED)
            local, p, k = self.segment(key, x, a, b, x.mask[a] & (remaining > 0), remaining, state)
            got = local >= 0
            rep[a:b][got] = x.pool[local[got]]
            prob[a:b], eligible[a:b] = p, k
            np.add.at(load, x.pool[local[got]], 1)
        return Segmented(rep, prob, eligible)

    def segment(
        self, key: str, x: Inputs, a: int, b: int, open_: np.ndarray, remaining: np.ndarray, state: RoutingState
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local pool index per lead of ``[a, b)`` (-1 none), probability, eligible count."""
        raise NotImplementedError


class StrideMethod(AssignmentMethod):
    """Stride scheduling (see the module docstring); variants change only the rep's step."""

    name = "round_robin"
    words = "round robin: next in the rotation"

    def step(self, x: Inputs, elig: np.ndarray) -> np.ndarray:
        return np.ones(elig.size, dtype=np.float64)

    def start(self, key: str, x: Inputs, elig: np.ndarray, state: RoutingState) -> np.ndarray:
        passes = state.pass_of(key)
        # Rejoin rule: nobody starts below the virtual time, so a returning rep gets no burst.
        return np.asarray(np.maximum(passes[x.pool[elig]], state.vtime.get(key, 0.0)), dtype=np.float64)

    def finish(
        self,
        key: str,
        x: Inputs,
        elig: np.ndarray,
        keys: np.ndarray,
        counts: np.ndarray,
        present: np.ndarray,
        state: RoutingState,
    ) -> None:
        passes = state.pass_of(key)
        passes[x.pool[elig]] = keys + counts * self.step(x, elig)
        # Virtual time: the lowest pass among the reps present in this segment (full ones too).
        # It only depends on the segment's end state, so one lead at a time (the endpoint) and a
        # whole segment at once (replay) reach the same value.
        state.vtime[key] = max(state.vtime.get(key, 0.0), float(passes[x.pool[present]].min()))

    def segment(
        self, key: str, x: Inputs, a: int, b: int, open_: np.ndarray, remaining: np.ndarray, state: RoutingState
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = b - a
        elig = np.flatnonzero(open_)
        out = np.full(m, -1, dtype=np.int64)
        if elig.size == 0:
            return out, np.ones(m), np.zeros(m, dtype=np.int64)
        if m == 1:  # one lead (the endpoint): the lowest pass, ties to the first rep; same result
            first = self.start(key, x, elig, state)
            best = int(np.argmin(first))
            counts = np.zeros(elig.size, dtype=np.int64)
            counts[best] = 1
            self.finish(key, x, elig, first, counts, np.flatnonzero(x.mask[a]), state)
            out[0] = elig[best]
            return out, np.ones(1), np.array([elig.size], dtype=np.int64)
        take = np.minimum(remaining[elig], m)
        first = self.start(key, x, elig, state)
        step = self.step(x, elig)
        owner = np.repeat(np.arange(elig.size), take)
        j = np.arange(owner.size) - np.repeat(np.cumsum(take) - take, take)
        order = np.lexsort((owner, first[owner] + j * step[owner]))[:m]
        chosen = owner[order]
        out[: chosen.size] = elig[chosen]
        counts = np.bincount(chosen, minlength=elig.size)
        self.finish(key, x, elig, first, counts, np.flatnonzero(x.mask[a]), state)
        # Eligible reps per lead, as one-at-a-time routing sees them: a rep whose seats ran out
        # stops counting after their last lead.
        last = np.full(elig.size, -1)
        np.maximum.at(last, chosen, np.arange(chosen.size))
        full = (counts >= remaining[elig]) & (counts > 0)
        gone = np.sort(last[full])
        eligible = elig.size - np.searchsorted(gone, np.arange(m), side="left")
        return out, np.ones(m), eligible.astype(np.int64)


class WeightedMethod(StrideMethod):
    name = "weighted"
    words = "weighted rotation: lowest assignments per unit of weight"

    def step(self, x: Inputs, elig: np.ndarray) -> np.ndarray:
        return np.asarray(1.0 / x.weight[elig], dtype=np.float64)


class LeastLoadedMethod(StrideMethod):
    name = "least_loaded"
    words = "least loaded today relative to capacity"

    def start(self, key: str, x: Inputs, elig: np.ndarray, state: RoutingState) -> np.ndarray:
        day = int(x.day[0]) if x.day.size else 0
        return np.asarray(state.load(day)[x.pool[elig]] * self.step(x, elig), dtype=np.float64)

    def step(self, x: Inputs, elig: np.ndarray) -> np.ndarray:
        cap = x.capacity[elig].astype(np.float64)
        return 1.0 / np.where(cap >= UNLIMITED, 1.0, np.maximum(cap, 1.0))

    def segment(
        self, key: str, x: Inputs, a: int, b: int, open_: np.ndarray, remaining: np.ndarray, state: RoutingState
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # The start key reads the segment's own day, so hand it a view positioned there.
        local = Inputs(x.pool, x.mask[a:b], x.day[a:b], x.capacity, x.weight, x.respect_capacity)
        return StrideMethod.segment(self, key, local, 0, b - a, open_, remaining, state)

    def finish(
        self,
        key: str,
        x: Inputs,
        elig: np.ndarray,
        keys: np.ndarray,
        counts: np.ndarray,
        present: np.ndarray,
        state: RoutingState,
    ) -> None:
        return None  # loads are the state, updated by the base


class TerritoryMethod(StrideMethod):
    name = "territory"
    words = "territory: round robin among reps covering the lead's region"


class SkillMatchMethod(StrideMethod):
    name = "skill_match"
    words = "skill match: round robin among reps with the lead's skills"


class AccountOwnerMethod(StrideMethod):
    name = "account_owner"
    words = "account owner: the rep who owns the lead's account"


class RandomMethod(AssignmentMethod):
    name = "random"
    words = "uniform random among eligible reps"

    def segment(
        self, key: str, x: Inputs, a: int, b: int, open_: np.ndarray, remaining: np.ndarray, state: RoutingState
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = b - a
        out, prob, count = np.full(m, -1, dtype=np.int64), np.ones(m), np.zeros(m, dtype=np.int64)
        draw = x.draw[a:b] if x.draw is not None else np.zeros(m)
        left = remaining.copy()
        is_open = open_.copy()
        for i in range(m):
            elig = np.flatnonzero(is_open)
            if elig.size == 0:
                break
            pick = elig[min(int(draw[i] * elig.size), elig.size - 1)]
            out[i], prob[i], count[i] = pick, 1.0 / elig.size, elig.size
            left[pick] -= 1
            is_open[pick] = left[pick] > 0
        return out, prob, count


class BestFitMethod(AssignmentMethod):
    name = "best_fit"
    words = "best fit: highest expected value among eligible reps"

    def segment(
        self, key: str, x: Inputs, a: int, b: int, open_: np.ndarray, remaining: np.ndarray, state: RoutingState
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = b - a
        out, count = np.full(m, -1, dtype=np.int64), np.zeros(m, dtype=np.int64)
        if x.value is None:
            raise ValueError("best_fit needs a fit scorer (expected value per lead and rep)")
        left = remaining.copy()
        is_open = open_.copy()
        for i in range(m):
            if not is_open.any():
                break
            pick = int(np.argmax(np.where(is_open, x.value[a + i], -np.inf)))
            out[i], count[i] = pick, int(is_open.sum())
            left[pick] -= 1
            is_open[pick] = left[pick] > 0
        return out, np.ones(m), count


METHOD_TYPES: dict[str, type[AssignmentMethod]] = {
    cls.name: cls
    for cls in (
        StrideMethod,
        WeightedMethod,
        LeastLoadedMethod,
        TerritoryMethod,
        SkillMatchMethod,
        AccountOwnerMethod,
        RandomMethod,
        BestFitMethod,
    )
}
