"""The SLA state machine: given a lead's ownership chain, its touches and ``now``, what is due.

A *chain* is the sequence of logged decisions of one lead: the routing decision, then every
re-assignment and the escalation. Each hop with a rep as owner has a deadline: the SLA's
``first_touch`` added to the hop's ``decided_at`` in the owner's business time (or wall-clock
time). Until a touch arrives the chain walks:

    assigned ──remind_s──▶ remind ──first_touch_s──▶ reassign (≤ max_hops) … ──▶ escalate ──▶ done

A touch (any of the SLA's ``touch_events`` after the chain started) ends it: ``met`` when it came
before the first owner's deadline, ``late`` otherwise. A chain without reassignments left and
without an escalation target ends ``breached`` at its deadline. Everything is a pure function of
its inputs — the clock is passed in — so the timer service, a restart and a test agree.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from models.policy.roster import Roster
from models.policy.spec import Availability, Destination, PolicySpec, Sla
from models.sla.clock import BusinessCalendar, add_time

DueKind = Literal["none", "remind", "reassign", "escalate", "done"]
Status = Literal["open", "met", "late", "breached", "escalated", "no_sla", "no_owner"]
REASSIGN: Literal["reassign"] = "reassign"
ESCALATE: Literal["escalate"] = "escalate"


@dataclass(frozen=True)
class Hop:
    """One owner of a lead: the logged decision that gave it to them."""

    decision_id: str
    decided_at: datetime
    rep_id: str | None
    team: str
    action: str


@dataclass(frozen=True)
class Due:
    """What a chain needs next.

    Attributes:
        kind: ``none`` (wait for a touch), ``remind``/``reassign``/``escalate`` (at ``at``),
            ``done`` (nothing more will happen).
        at: when the action is due (``None`` for ``none`` without a deadline and ``done``).
        deadline: the current owner's first-touch deadline (``None`` without an owner or SLA).
        first_deadline: the first owner's deadline: the promise the KPI measures.
        status: ``open`` or how the chain ended (met, late, breached, escalated, no_sla, no_owner).
        hop: index of the current hop in the chain; ``hops``: re-assignments so far.
        touched_at: the first touch, if any.
    """

    kind: DueKind
    at: datetime | None
    deadline: datetime | None
    first_deadline: datetime | None
    status: Status
    hop: int
    hops: int
    touched_at: datetime | None = None

    def is_due(self, now: datetime) -> bool:
        return self.kind in ("remind", REASSIGN, ESCALATE) and self.at is not None and self.at <= now


CalendarOf = Callable[[str], BusinessCalendar | None]


def deadline_of(hop: Hop, sla: Sla, calendar: CalendarOf, seconds: int | None = None) -> datetime | None:
    """``seconds`` (default: the SLA's first touch) after the hop, in its owner's business time."""
    if hop.rep_id is None:
        return None
    cal = calendar(hop.rep_id) if sla.business_hours else None
    if sla.business_hours and cal is None:
        cal = BusinessCalendar()
    at = add_time(hop.decided_at, sla.first_touch_s if seconds is None else seconds, cal)
    # No working time ahead (a rep who left or is away for more than a year): due at once.
    return at if at is not None else _utc(hop.decided_at)


def next_due(
    chain: Sequence[Hop],
    sla: Sla | None,
    touches: Collection[datetime],
    now: datetime,
    calendar: CalendarOf,
    reminded: Collection[str] = (),
) -> Due:
    """What ``chain`` needs next at ``now`` (see the module docstring).

    Args:
        chain: the lead's decisions in log order (first = the routing decision).
        sla: the SLA of the routing decision's rule (``None``: no SLA).
        touches: instants of the lead's touch events (only those of ``sla.touch_events``).
        now: the clock.
        calendar: the business calendar of a rep (by ``rep_id``).
        reminded: decision ids of hops whose owner was already reminded.
    """
    if not chain:
        raise ValueError("a chain needs at least one decision")
    head, current = chain[0], chain[-1]
    hops = sum(1 for h in chain if h.action == REASSIGN)
    index = len(chain) - 1
    if sla is None:
        return Due("done", None, None, None, "no_sla", index, hops)
    first_deadline = deadline_of(head, sla, calendar)
    start = _utc(head.decided_at)
    touched = min((_utc(t) for t in touches if _utc(t) >= start and _utc(t) <= _utc(now)), default=None)
    if touched is not None:
        met = first_deadline is not None and touched <= first_deadline
        return Due("done", None, None, first_deadline, "met" if met else "late", index, hops, touched)
    if current.action == ESCALATE:
        return Due("done", None, None, first_deadline, "escalated", index, hops)
    if current.rep_id is None:
        return Due("done", None, None, first_deadline, "no_owner", index, hops)
    deadline = deadline_of(current, sla, calendar)
    if deadline is None:  # pragma: no cover - an owner always has a deadline
        return Due("done", None, None, first_deadline, "no_owner", index, hops)
    if sla.remind_s is not None and current.decision_id not in reminded and _utc(now) < deadline:
        remind_at = deadline_of(current, sla, calendar, sla.remind_s)
        if remind_at is not None and remind_at < deadline:
            return Due("remind", remind_at, deadline, first_deadline, "open", index, hops)
    if sla.reassign and hops < sla.max_hops:
        return Due(REASSIGN, deadline, deadline, first_deadline, "open", index, hops)
    if sla.escalate is not None:
        return Due(ESCALATE, deadline, deadline, first_deadline, "open", index, hops)
    if _utc(now) >= deadline:
        return Due("done", None, deadline, first_deadline, "breached", index, hops)
    return Due("none", deadline, deadline, first_deadline, "open", index, hops)


@dataclass(frozen=True)
class Handoff:
    """The rep a breached lead goes to: roster row, id, team, and how the choice was made."""

    row: int
    rep_id: str
    team: str
    probability: float
    eligible: int
    working: bool


def destination_of(spec: PolicySpec, rule: str | None, team: str | None) -> Destination | None:
    """The destination in ``rule``'s chain (then its fallbacks) that gave the lead to ``team``."""
    head = next((r.then for r in spec.rules if r.name == rule), spec.fallback)
    node: Destination | None = head
    while node is not None:
        if node.team == team:
            return node
        node = node.fallback
    return head if head.team is None else None


def next_owner(
    roster: Roster,
    destination: Destination,
    at: datetime,
    exclude: Collection[str],
    availability: Availability,
    loads: dict[str, int],
    rng: np.random.Generator,
) -> Handoff | None:
    """The next eligible rep of ``destination`` at ``at``, never one in ``exclude``.

    Eligible: an active member of the destination (team, seniority, named reps) who is
    available by the policy's rules (absences, working hours if enforced) and, when the
    destination respects capacity, has seats left today (``loads``: leads owned today by rep).
    Among them, reps at work right now come first, then the least loaded; a tie is drawn
    uniformly with ``rng`` (so the probability of the choice is ``1 / ties``).
    """
    pool = roster.members(destination.team, destination.seniority, destination.reps)
    pool = np.array([r for r in pool.tolist() if str(roster.rep_id[r]) not in exclude], dtype=np.int64)
    if pool.size == 0:
        return None
    ok = roster.available_one(at, pool, availability)
    if destination.respect_capacity:
        ok &= np.array([loads.get(str(roster.rep_id[r]), 0) < roster.capacity[r] for r in pool], dtype=bool)
    eligible = pool[ok]
    if eligible.size == 0:
        return None
    working = roster.available_one(at, eligible, Availability(absences=True, working_hours=True))
    candidates = eligible[working] if working.any() else eligible
    load = np.array([loads.get(str(roster.rep_id[r]), 0) for r in candidates])
    ties = candidates[load == load.min()]
    pick = int(ties[int(rng.integers(0, ties.size))]) if ties.size > 1 else int(ties[0])
    return Handoff(
        row=pick,
        rep_id=str(roster.rep_id[pick]),
        team=str(roster.team[pick]),
        probability=1.0 / ties.size,
        eligible=int(eligible.size),
        working=bool(working.any()),
    )


def _utc(moment: datetime) -> datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
