"""The SLA timer over real decision and outcome logs, with a controllable clock.

The endpoint's own pieces are used as they are: a ``RoutingService`` with its ``JsonLog``
routes and logs, outcomes are appended to the outcome log, and the timer derives everything
from those files — so a second timer over the same folders is a restart.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
import yaml

from leadroute.serving.batch import typed_leads
from leadroute.serving.deployment import Arm, Deployment
from leadroute.serving.log import JsonLog, read_records
from leadroute.serving.metrics import Metrics
from leadroute.serving.records import jsonable
from leadroute.serving.router import DECISIONS, RoutingService, decision_seed
from leadroute.serving.sla import SlaTimer
from models.policy import Policy, Roster, parse_policy
from pipelines.policies import parse_text, register
from pipelines.settings import Settings

NY = ZoneInfo("America/New_York")
T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # Wednesday 09:00 in New York
MIN = timedelta(minutes=1)


def spec(**sla: Any) -> dict[str, Any]:
    block = {"first_touch": "30m", "remind": "10m", "max_hops": 1, "escalate": {"team": "queue"}} | sla
    return {
        "name": "timed",
        "rules": [
            {"name": "inbound", "then": {"team": "sales", "notify": True, "fallback": {"team": "queue"}}, "sla": block}
        ],
        "fallback": {"team": "queue"},
    }


def build_roster(absent: dict[str, tuple[date, date]] | None = None, capacity: int = 50) -> Roster:
    reps = pl.DataFrame(
        {
            "rep_id": ["R1", "R2", "R3"],
            "team": ["sales"] * 3,
            "capacity_per_day": [capacity] * 3,
            "active": [True] * 3,
            "timezone": ["America/New_York", "America/New_York", "America/Chicago"],
            "working_hours": ["09:00-17:00"] * 3,
        }
    )
    teams = pl.DataFrame({"team": ["sales", "queue"], "kind": ["sales", "queue"]})
    rows = [(rep, a, b) for rep, (a, b) in (absent or {}).items()]
    absences = pl.DataFrame(rows, schema={"rep_id": pl.String, "starts_on": pl.Date, "ends_on": pl.Date}, orient="row")
    return Roster.from_frames(reps, teams, absences)


class Desk:
    """A workspace with a routing service, an outcome log, a message sink and timers."""

    def __init__(self, home: Path, raw: dict[str, Any], roster: Roster) -> None:
        self.settings = Settings(home=home).ensure()
        self.roster = roster
        # Registered in the workspace, as a deployed policy is (the restart replay resolves it there).
        stored = register(self.settings, parse_text(yaml.safe_dump(raw), "test"))
        policy = Policy(parse_policy(raw), roster, version=stored.version)
        deployment = Deployment(None, (Arm(policy, 1.0),))
        self.log = JsonLog(self.settings.decision_log_dir, DECISIONS)
        self.service = RoutingService(self.settings, roster, deployment, self.log)
        self.outcomes = JsonLog(home / "outcomes", "outcomes")
        self.messages: list[dict[str, Any]] = []
        self.metrics = Metrics()

    def timer(self) -> SlaTimer:
        return SlaTimer(self.service, notify=self.messages.extend, metrics=self.metrics, fsync=False)

    def route_at(self, lead_id: str, at: datetime) -> dict[str, Any]:
        """Route one lead exactly as ``RoutingService.route`` does, decided at ``at``."""
        arm = self.service.deployment.arms[0]
        decision_id = str(uuid.uuid4())
        lead = {"lead_id": lead_id, "created_at": at.isoformat(), "score": 90.0}
        state = self.service._state(arm.key)
        d = arm.policy.route_one(lead, state, np.random.default_rng(decision_seed(decision_id)))
        record = {
            "decision_id": decision_id,
            "decided_at": at.isoformat(),
            "lead_id": d.lead_id,
            "team": d.team,
            "rep_id": d.rep_id,
            "action": d.action,
            "score": d.score,
            "policy": arm.policy.spec.name,
            "policy_version": arm.policy.version,
            "experiment": None,
            "arm": None,
            "propensity": d.propensity,
            "reasons": d.reasons,
            "rule": d.rule,
            "method": d.method,
            "notify": d.notify,
            "deployment_id": None,
            "lead": jsonable(lead),
        }
        self.log.write([record])
        return record

    def touch(self, lead_id: str, at: datetime, event: str = "contacted") -> None:
        self.outcomes.write([{"event_id": str(uuid.uuid4()), "lead_id": lead_id, "event": event, "occurred_at": at}])

    def close(self) -> None:
        self.log.close()
        self.outcomes.close()

    def chain(self, lead_id: str) -> list[dict[str, Any]]:
        return [r for r in read_records(self.settings.decision_log_dir, DECISIONS) if r["lead_id"] == lead_id]


def open_desk(desks: list[Desk], home: Path, raw: dict[str, Any], roster: Roster) -> Desk:
    desk = Desk(home, raw, roster)
    desks.append(desk)
    return desk


@pytest.fixture
def desks() -> Iterator[list[Desk]]:
    opened: list[Desk] = []
    yield opened
    for desk in opened:
        desk.close()


def test_untouched_lead_is_reminded_reassigned_then_escalated_and_a_restart_repeats_nothing(
    tmp_path: Path, desks: list[Desk]
) -> None:
    desk = open_desk(desks, tmp_path / "ws", spec(business_hours=False), build_roster())
    first = desk.route_at("L1", T0)
    assert first["rep_id"] == "R1"
    timer = desk.timer()
    assert timer.tick(T0 + 9 * MIN).reminded == []
    assert timer.tick(T0 + 10 * MIN).reminded == ["L1"]
    assert [m["text"] for m in desk.messages] == [
        f"Reminder: lead L1 is waiting for a first touch by R1; due by {(T0 + 30 * MIN).isoformat()} "
        "(first touch within 30 min of wall-clock time (contacted or meeting); remind after 10 min; "
        "then re-assign up to 1 time; then escalate to team queue)"
    ]
    assert timer.tick(T0 + 29 * MIN).reassigned == []
    done = timer.tick(T0 + 30 * MIN)
    assert done.reassigned == ["L1"] and done.escalated == []
    timer.stop()

    # Restart in the middle: a new timer over the same folders neither loses nor repeats anything.
    again = desk.timer()
    result = again.tick(T0 + 30 * MIN)
    assert (result.reminded, result.reassigned, result.escalated) == ([], [], [])
    hops = desk.chain("L1")
    assert [h["action"] for h in hops] == ["assign", "reassign"]
    second = hops[1]
    # 09:30 in New York: R2 is at work, R3 (Chicago, 08:30) is not yet, so R2 is the only choice.
    assert second["rep_id"] == "R2" and second["sla_root"] == first["decision_id"]
    assert second["propensity"] == pytest.approx(first["propensity"] * 1.0)
    reasons = json.loads(second["reasons"])
    assert reasons["previous_owner"] == "R1" and reasons["sla_breach"] is True and reasons["hop"] == 1
    assert reasons["why"].startswith("SLA breach: no first touch by R1 within first touch within 30 min")
    assert "lead" not in second  # the restart replay of routing state must not route it again
    assert again.tick(T0 + 40 * MIN).reminded == ["L1"]  # the new owner is reminded once
    assert again.tick(T0 + 45 * MIN).reminded == []
    escalated = again.tick(T0 + 60 * MIN)
    assert escalated.escalated == ["L1"]
    hops = desk.chain("L1")
    assert [h["action"] for h in hops] == ["assign", "reassign", "escalate"]
    assert hops[2]["team"] == "queue" and hops[2]["rep_id"] is None
    why = json.loads(hops[2]["reasons"])["why"]
    assert f"no first touch by {second['rep_id']}" in why and why.endswith("escalated to team queue")
    assert again.tick(T0 + 3 * 60 * MIN).escalated == []  # the chain is over
    # Every hop's owner was told; the counters are in /metrics.
    texts = [m["text"] for m in desk.messages]
    assert sum(t.startswith("Reminder") for t in texts) == 2
    assert any(t.startswith(f"Lead L1 is now yours, {second['rep_id']}") for t in texts)
    assert all(m["notify"] is True and m["decision_id"] for m in desk.messages)
    rendered = desk.metrics.render()
    assert "leadroute_sla_reassignments_total 1" in rendered and "leadroute_sla_reminders_total 2" in rendered
    again.stop()


def test_a_touch_in_time_stops_the_chain(tmp_path: Path, desks: list[Desk]) -> None:
    desk = open_desk(desks, tmp_path / "ws", spec(business_hours=False), build_roster())
    desk.route_at("L1", T0)
    desk.route_at("L2", T0)
    desk.touch("L1", T0 + 5 * MIN)  # before the reminder
    desk.touch("L2", T0 + 20 * MIN, "meeting")  # after the reminder, before the deadline
    timer = desk.timer()
    assert timer.tick(T0 + 10 * MIN).reminded == ["L2"]
    result = timer.tick(T0 + 2 * 60 * MIN)
    assert (result.reminded, result.reassigned, result.escalated) == ([], [], [])
    assert [len(desk.chain(lead)) for lead in ("L1", "L2")] == [1, 1]
    # A touch event the SLA does not count ('lost') is no touch.
    desk.route_at("L3", T0 + 2 * 60 * MIN)
    desk.touch("L3", T0 + 2 * 60 * MIN + MIN, "lost")
    assert timer.tick(T0 + 2 * 60 * MIN + 30 * MIN).reassigned == ["L3"]
    timer.stop()


def test_business_hours_and_absences_are_honoured(tmp_path: Path, desks: list[Desk]) -> None:
    friday = datetime(2026, 11, 27, 16, 50, tzinfo=NY).astimezone(UTC)
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=NY).astimezone(UTC)
    # R2 is on leave Monday: the lead must go to R3 (Chicago), who is at work from 10:00 New York time.
    roster = build_roster({"R2": (date(2026, 11, 30), date(2026, 11, 30))})
    desk = open_desk(desks, tmp_path / "ws", spec(remind=None), roster)
    assert desk.route_at("L1", friday)["rep_id"] == "R1"
    timer = desk.timer()
    # 10 business minutes on Friday, then the weekend does not count: due Monday 09:20 New York.
    assert timer.tick(friday + 60 * MIN).reassigned == []
    assert timer.tick(monday + 19 * MIN).reassigned == []
    assert timer.tick(monday + 20 * MIN).reassigned == ["L1"]
    hop = desk.chain("L1")[1]
    assert hop["rep_id"] == "R3"
    reasons = json.loads(hop["reasons"])
    assert reasons["due_at"] == (monday + 20 * MIN).isoformat() and reasons["eligible_reps"] == 1
    # R3 works 09:00-17:00 Chicago (10:00-18:00 New York): their 30 minutes start at 10:00 New York.
    assert timer.tick(monday + 75 * MIN).escalated == []
    assert timer.tick(monday + 90 * MIN).escalated == ["L1"]
    timer.stop()


def test_nobody_eligible_escalates_at_once(tmp_path: Path, desks: list[Desk]) -> None:
    desk = open_desk(desks, tmp_path / "ws", spec(business_hours=False, remind=None), build_roster(capacity=1))
    for i in range(3):
        desk.route_at(f"L{i}", T0 + i * MIN)  # one lead per rep fills every seat of the day
    timer = desk.timer()
    result = timer.tick(T0 + 40 * MIN)
    assert sorted(result.escalated) == ["L0", "L1", "L2"]
    why = json.loads(desk.chain("L0")[1]["reasons"])["why"]
    assert "nobody eligible to take it over" in why
    timer.stop()


def test_real_routing_service_records_and_the_state_rebuild_skip_reassignments(
    tmp_path: Path, desks: list[Desk]
) -> None:
    desk = open_desk(desks, tmp_path / "ws", spec(business_hours=False, remind=None), build_roster())
    records = desk.service.route([{"lead_id": f"L{i}", "created_at": T0.isoformat(), "score": 90.0} for i in range(2)])
    decided = datetime.fromisoformat(records[0]["decided_at"])
    timer = desk.timer()
    assert sorted(timer.tick(decided + 31 * MIN).reassigned) == ["L0", "L1"]
    assert all(h["rep_id"] != r["rep_id"] for r in records for h in desk.chain(r["lead_id"])[1:])
    rebuilt = desk.service.rebuild()
    assert (rebuilt.replayed, rebuilt.matched, rebuilt.skipped) == (2, 2, 2)
    timer.stop()
    # Started on its own thread (as the endpoint runs it), it ticks on the real clock.
    background = desk.timer()
    background.start(interval_s=0.05)
    deadline = time.monotonic() + 10
    while "leadroute_sla_tracked_leads 2" not in background.metrics_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    background.stop()
    assert "leadroute_sla_tracked_leads 2" in background.metrics_text()
    assert "leadroute_sla_tick_errors_total" not in desk.metrics.render()


def test_stuck_leads_are_counted_for_metrics_and_alerted_once(tmp_path: Path, desks: list[Desk]) -> None:
    today = T0.astimezone(NY).date()
    roster = build_roster({"R1": (today + timedelta(days=1), today + timedelta(days=1))}, capacity=2)
    raw = spec(business_hours=False, remind=None, reassign=False)
    del raw["rules"][0]["sla"]["escalate"]
    raw["rules"][0]["then"]["method"] = "least_loaded"
    desk = open_desk(desks, tmp_path / "ws", raw, roster)
    for i in range(6):
        desk.route_at(f"L{i}", T0 + i * MIN)  # 2 seats × 3 reps: every seat of the day is taken
    desk.route_at("Q1", T0 + 7 * MIN)  # every seat taken: the queue
    timer = desk.timer()
    first = timer.tick(T0 + 20 * MIN)
    assert first.stuck.counts() == {"past_sla": 0, "in_queue": 0, "absent_owner": 0, "over_capacity": 0}
    later = timer.tick(T0 + 2 * 60 * MIN)
    assert later.stuck.in_queue == ("Q1",)
    assert sorted(later.stuck.past_sla) == [f"L{i}" for i in range(6)]  # breached, nobody to take over
    assert "alert:in_queue:Q1" in later.alerts and len(later.alerts) == 7
    text = timer.metrics_text()
    assert 'leadroute_sla_stuck_leads{kind="past_sla"} 6' in text
    assert 'leadroute_sla_stuck_leads{kind="in_queue",team="queue"} 1' in text
    assert timer.stuck_counts()["in_queue"] == 1
    timer.stop()
    # After a restart the same stuck leads are not alerted again; the next day R1 is away.
    again = desk.timer()
    tomorrow = again.tick(T0 + 24 * 60 * MIN)
    assert tomorrow.alerts == [f"alert:absent_owner:{lead}" for lead in sorted(tomorrow.stuck.absent_owner)]
    assert tomorrow.stuck.absent_owner and all(
        desk.chain(lead)[0]["rep_id"] == "R1" for lead in tomorrow.stuck.absent_owner
    )
    assert sum(1 for m in desk.messages if m["text"].startswith("Stuck lead alert")) == 7 + len(tomorrow.alerts)
    rendered = desk.metrics.render()
    assert 'leadroute_sla_alerts_total{kind="in_queue"} 1' in rendered
    again.stop()


def test_a_running_timer_follows_decisions_in_process_exactly_as_it_reads_them_back(
    tmp_path: Path, desks: list[Desk]
) -> None:
    raw = spec(business_hours=False)
    raw["rules"].insert(
        0,
        {"name": "cold", "when": {"field": "score", "op": "<", "value": 50}, "then": {"team": "sales"}},
    )  # no SLA: the timer only counts these towards their rep's day
    desk = open_desk(desks, tmp_path / "ws", raw, build_roster())
    now = datetime.now(UTC)

    def leads(prefix: str, n: int) -> list[dict[str, Any]]:
        stamp = now.isoformat()
        return [{"lead_id": f"{prefix}{i}", "created_at": stamp, "score": 30.0 + 10 * (i % 5)} for i in range(n)]

    desk.service.route(leads("A", 10))
    fed = desk.timer()
    fed.start(interval_s=3600)  # reads the log so far, then follows the service
    desk.service.route(leads("B", 10))
    typed, rejects = typed_leads(leads("C", 25) + leads("A", 3))  # A0-A2 routed again
    assert not rejects
    desk.service.route_frame(typed)
    # A batch without an SLA anywhere (counted per rep, not lead by lead) ends A2-A4's chains.
    cold, rejects = typed_leads([dict(lead, score=10.0) for lead in leads("A", 5) + leads("D", 5)])
    assert not rejects
    desk.service.route_frame(cold)
    fed.tick(now)
    reader = desk.timer()  # the same decisions, read back from the log
    reader.tick(now)
    fed.stop()
    reader.stop()
    assert fed._chains.keys() == reader._chains.keys() and len(fed._chains) > 10
    assert not {"A2", "A3", "A4"} & fed._chains.keys()
    for lead_id, chain in fed._chains.items():
        assert chain.hops == reader._chains[lead_id].hops
    assert fed._loads(now) == reader._loads(now) and sum(fed._loads(now).values()) >= 50
    assert fed.metrics_text() == reader.metrics_text()
