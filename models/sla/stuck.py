"""Stuck leads: routing failures made loud.

A lead is *stuck* when nobody is working it and nothing will happen by itself:

* ``past_sla``: untouched past its deadline with no action taken — the chain is exhausted
  (``breached``) or an action has been overdue for longer than ``grace_s`` (the timer is not
  running, or nobody was eligible);
* ``in_queue``: untouched for longer than ``queue_after_s`` in a queue or a sales team's inbox
  (no owner), escalated leads included;
* ``absent_owner``: untouched and owned by a rep who is away today or has left.

Owners *over capacity* (more leads today than their daily capacity) are listed by rep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from models.policy.roster import Roster
from models.policy.spec import Availability
from models.sla.machine import Due

KINDS = ("past_sla", "in_queue", "absent_owner", "over_capacity")


@dataclass(frozen=True)
class OpenLead:
    """One lead's current state: owner (``rep_id`` or a team), since when, and its :class:`Due`."""

    lead_id: str
    team: str
    rep_id: str | None
    since: datetime
    due: Due


@dataclass(frozen=True)
class StuckReport:
    """Lead ids per kind (and rep ids over capacity), with counts by kind and team."""

    past_sla: tuple[str, ...]
    in_queue: tuple[str, ...]
    absent_owner: tuple[str, ...]
    over_capacity: tuple[str, ...]
    by_team: dict[tuple[str, str], int]

    def counts(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in KINDS}


def detect_stuck(
    leads: Sequence[OpenLead],
    roster: Roster,
    now: datetime,
    loads: Mapping[str, int],
    *,
    queue_after_s: float = 3600.0,
    grace_s: float = 300.0,
) -> StuckReport:
    """Classify ``leads`` at ``now`` (see the module docstring); ``loads``: leads per rep today."""
    moment = now if now.tzinfo else now.replace(tzinfo=UTC)
    row = {str(r): i for i, r in enumerate(roster.rep_id.tolist())}
    out: dict[str, list[str]] = {k: [] for k in KINDS}
    by_team: dict[tuple[str, str], int] = {}

    def add(kind: str, lead: OpenLead) -> None:
        out[kind].append(lead.lead_id)
        by_team[(kind, lead.team)] = by_team.get((kind, lead.team), 0) + 1

    for lead in leads:
        due = lead.due
        if due.touched_at is not None or due.status in ("met", "late", "no_sla"):
            continue
        overdue = due.kind in ("reassign", "escalate") and due.is_due(moment - timedelta(seconds=grace_s))
        if due.status == "breached" or overdue:
            add("past_sla", lead)
        kind = roster.kind(lead.team)
        if lead.rep_id is None and kind in ("queue", "sales"):
            if moment - lead.since >= timedelta(seconds=queue_after_s):
                add("in_queue", lead)
        elif lead.rep_id is not None:
            r = row.get(lead.rep_id)
            away = r is None or not bool(
                roster.available_one(moment, np.array([r]), Availability(absences=True, working_hours=False))[0]
            )
            if away:
                add("absent_owner", lead)
    for rep, load in sorted(loads.items()):
        r = row.get(rep)
        if r is not None and load > int(roster.capacity[r]):
            out["over_capacity"].append(rep)
            team = str(roster.team[r])
            by_team[("over_capacity", team)] = by_team.get(("over_capacity", team), 0) + 1
    return StuckReport(
        past_sla=tuple(out["past_sla"]),
        in_queue=tuple(out["in_queue"]),
        absent_owner=tuple(out["absent_owner"]),
        over_capacity=tuple(out["over_capacity"]),
        by_team=by_team,
    )
