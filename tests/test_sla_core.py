"""The pure SLA core: business time, the remind → re-assign → escalate machine, hand-over
choice, stuck leads, KPIs, and the SLA block of the policy language."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from models.policy import PolicySpecError, Roster, diff_policies, parse_policy, validate_policy
from models.policy.roster import EPOCH
from models.policy.spec import Availability, Destination, Sla
from models.sla import (
    BusinessCalendar,
    Hop,
    OpenLead,
    add_time,
    calendars,
    detect_stuck,
    elapsed_time,
    first_touch_frame,
    next_due,
    next_owner,
    sla_kpis,
)

NY = ZoneInfo("America/New_York")
T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # Wednesday 09:00 in New York


def ny(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY).astimezone(UTC)


def roster(absent: dict[str, tuple[date, date]] | None = None, capacity: int = 50) -> Roster:
    reps = pl.DataFrame(
        {
            "rep_id": ["R1", "R2", "R3", "R4"],
            "team": ["sales", "sales", "sales", "sales"],
            "seniority": ["junior", "junior", "senior", "junior"],
            "capacity_per_day": [capacity] * 4,
            "active": [True, True, True, True],
            "timezone": ["America/New_York", "America/New_York", "Europe/Berlin", "Asia/Tokyo"],
            "working_hours": ["09:00-17:00"] * 4,
        }
    )
    teams = pl.DataFrame({"team": ["sales", "queue"], "kind": ["sales", "queue"]})
    rows = [(rep, a, b) for rep, (a, b) in (absent or {}).items()]
    absences = pl.DataFrame(rows, schema={"rep_id": pl.String, "starts_on": pl.Date, "ends_on": pl.Date}, orient="row")
    return Roster.from_frames(reps, teams, absences)


SLA = Sla(first_touch_s=1800, remind_s=600, max_hops=1, escalate=None)


# -- business time ----------------------------------------------------------------------------


def test_business_time_skips_nights_weekends_and_absences() -> None:
    cal = BusinessCalendar("America/New_York", (9 * 60, 17 * 60))
    friday = ny(2026, 11, 27, 16, 50)
    assert cal.add(friday, 1800) == ny(2026, 11, 30, 9, 20)  # 10 min Friday, 20 min Monday
    assert cal.elapsed(friday, ny(2026, 11, 30, 9, 20)) == pytest.approx(1800)
    assert cal.add(ny(2026, 11, 25, 7, 0), 600) == ny(2026, 11, 25, 9, 10)  # before hours: starts at 09:00
    monday = (date(2026, 11, 30) - EPOCH).days
    away = BusinessCalendar("America/New_York", (9 * 60, 17 * 60), absences=((monday, monday),))
    assert away.add(friday, 1800) == ny(2026, 12, 1, 9, 20)
    assert not away.working_at(ny(2026, 11, 30, 10, 0)) and cal.working_at(ny(2026, 11, 30, 10, 0))
    # Wall-clock time without a calendar; a rep away for good has no business time at all.
    assert add_time(friday, 1800, None) == friday + timedelta(minutes=30)
    assert elapsed_time(friday, friday + timedelta(hours=1), None) == 3600
    gone = BusinessCalendar(absences=((0, 100_000),))
    assert gone.add(friday, 60) is None


def test_business_time_follows_the_reps_zone_across_daylight_saving() -> None:
    # New York leaves DST on 2026-11-01: 09:00 local is 13:00 UTC before and 14:00 UTC after.
    cal = BusinessCalendar("America/New_York", (9 * 60, 17 * 60))
    assert cal.add(ny(2026, 10, 30, 16, 30), 3600) == datetime(2026, 11, 2, 14, 30, tzinfo=UTC)
    assert calendars(roster())["R4"].timezone == "Asia/Tokyo"


# -- the state machine ------------------------------------------------------------------------


def chain(*hops: tuple[str, datetime, str | None, str]) -> list[Hop]:
    return [Hop(d, at, rep, "queue" if action == "escalate" else "sales", action) for d, at, rep, action in hops]


def test_untouched_lead_is_reminded_then_reassigned_then_escalated() -> None:
    sla = parse_policy(_spec()).sla_for("inbound")
    assert sla is not None and sla.escalate is not None and sla.escalate.team == "queue"
    cal = calendars(roster()).get
    first = chain(("d1", T0, "R1", "assign"))
    due = next_due(first, sla, [], T0, cal)
    assert (due.kind, due.at, due.status) == ("remind", T0 + timedelta(minutes=10), "open")
    assert not due.is_due(T0 + timedelta(minutes=9)) and due.is_due(T0 + timedelta(minutes=10))
    due = next_due(first, sla, [], T0 + timedelta(minutes=10), cal, reminded={"d1"})
    assert (due.kind, due.at) == ("reassign", T0 + timedelta(minutes=30))
    t1 = T0 + timedelta(minutes=30)
    second = [*first, *chain(("d2", t1, "R2", "reassign"))]
    due = next_due(second, sla, [], t1, cal, reminded={"d1"})
    assert (due.kind, due.at, due.hops) == ("remind", t1 + timedelta(minutes=10), 1)
    due = next_due(second, sla, [], t1 + timedelta(minutes=10), cal, reminded={"d1", "d2"})
    assert (due.kind, due.at) == ("escalate", t1 + timedelta(minutes=30))
    assert due.first_deadline == T0 + timedelta(minutes=30)
    third = [*second, *chain(("d3", t1 + timedelta(minutes=30), None, "escalate"))]
    assert next_due(third, sla, [], t1 + timedelta(hours=2), cal).status == "escalated"


def test_a_touch_stops_the_chain_and_says_whether_it_was_in_time() -> None:
    cal = calendars(roster()).get
    first = chain(("d1", T0, "R1", "assign"))
    now = T0 + timedelta(hours=3)
    met = next_due(first, SLA, [T0 + timedelta(minutes=20)], now, cal)
    assert (met.kind, met.status, met.touched_at) == ("done", "met", T0 + timedelta(minutes=20))
    late = next_due(first, SLA, [T0 + timedelta(minutes=45)], now, cal)
    assert (late.kind, late.status) == ("done", "late")
    # A touch before the lead was routed, or one the clock has not reached yet, does not count.
    assert next_due(first, SLA, [T0 - timedelta(minutes=5)], T0 + timedelta(minutes=1), cal).kind == "remind"
    assert next_due(first, SLA, [T0 + timedelta(hours=5)], T0 + timedelta(minutes=1), cal).kind == "remind"


def test_business_hours_deadline_and_an_exhausted_chain_is_breached() -> None:
    cal = calendars(roster()).get
    friday = ny(2026, 11, 27, 16, 50)
    sla = Sla(first_touch_s=1800, business_hours=True, reassign=False)
    first = chain(("d1", friday, "R1", "assign"))
    due = next_due(first, sla, [], friday + timedelta(hours=1), cal)
    assert (due.kind, due.at) == ("none", ny(2026, 11, 30, 9, 20))  # waits over the weekend
    assert next_due(first, sla, [], ny(2026, 11, 30, 9, 21), cal).status == "breached"
    wall = Sla(first_touch_s=1800, business_hours=False, max_hops=1)
    assert next_due(first, wall, [], friday, cal).at == friday + timedelta(minutes=30)
    assert next_due(first, None, [], friday, cal).status == "no_sla"
    assert next_due(chain(("d1", friday, None, "inbox")), sla, [], friday, cal).status == "no_owner"
    with pytest.raises(ValueError, match="at least one decision"):
        next_due([], sla, [], friday, cal)


def test_next_owner_never_returns_a_previous_owner_and_honours_absences_and_capacity() -> None:
    rng = np.random.default_rng(0)
    dest = Destination(team="sales")
    wednesday = T0 + timedelta(hours=1)  # 10:00 New York, 16:00 Berlin, midnight Tokyo
    rules = Availability(absences=True)
    got = next_owner(roster(), dest, wednesday, {"R1"}, rules, {}, rng)
    # R2 (New York) and R3 (Berlin) are at work, R4 (Tokyo) is not: a fair draw between the two.
    assert got is not None and got.rep_id in ("R2", "R3") and got.working and got.eligible == 3
    assert got.probability == 0.5
    away = roster({"R2": (date(2026, 11, 25), date(2026, 11, 26))})
    got = next_owner(away, dest, wednesday, {"R1"}, rules, {}, rng)
    assert got is not None and got.rep_id == "R3"  # R2 is on leave; R3 works now, R4 sleeps
    got = next_owner(away, dest, wednesday, {"R1", "R3"}, rules, {}, rng)
    assert got is not None and got.rep_id == "R4" and not got.working  # nobody at work: still a taker
    full = roster(capacity=2)
    got = next_owner(full, dest, wednesday, {"R1"}, rules, {"R2": 2, "R3": 1, "R4": 1}, rng)
    assert got is not None and got.rep_id == "R3"
    assert next_owner(full, dest, wednesday, {"R1", "R3", "R4"}, rules, {"R2": 2}, rng) is None
    only = next_owner(roster(), Destination(team="sales"), wednesday, {"R1", "R3"}, Availability(), {}, rng)
    assert only is not None and only.rep_id == "R2" and only.probability == 1.0


# -- stuck leads ------------------------------------------------------------------------------


def test_stuck_leads_past_sla_in_queue_absent_owner_and_over_capacity() -> None:
    r = roster({"R2": (date(2026, 11, 25), date(2026, 11, 25))}, capacity=3)
    cal = calendars(r).get
    now = T0 + timedelta(hours=2)
    breached_sla = Sla(first_touch_s=1800, business_hours=False, reassign=False)
    leads = [
        OpenLead("L1", "sales", "R1", T0, next_due(chain(("a", T0, "R1", "assign")), breached_sla, [], now, cal)),
        OpenLead("L2", "queue", None, T0, next_due(chain(("b", T0, None, "queue")), SLA, [], now, cal)),
        OpenLead("L3", "sales", "R2", now, next_due(chain(("c", now, "R2", "assign")), SLA, [], now, cal)),
        OpenLead("L4", "sales", "R1", T0, next_due(chain(("d", T0, "R1", "assign")), SLA, [], now, cal)),
        OpenLead("L5", "sales", "R3", T0, next_due(chain(("e", T0, "R3", "assign")), SLA, [T0], now, cal)),
    ]
    report = detect_stuck(leads, r, now, {"R1": 4, "R3": 1})
    assert report.past_sla == ("L1", "L4")  # L4: its re-assignment is overdue (the timer is not running)
    assert report.in_queue == ("L2",)
    assert report.absent_owner == ("L3",)
    assert report.over_capacity == ("R1",)
    assert report.counts() == {"past_sla": 2, "in_queue": 1, "absent_owner": 1, "over_capacity": 1}
    assert report.by_team[("past_sla", "sales")] == 2
    assert detect_stuck(leads[1:2], r, T0 + timedelta(minutes=30), {}).in_queue == ()


# -- KPIs -------------------------------------------------------------------------------------


def test_first_touch_frame_and_sla_kpis() -> None:
    r = roster()
    sla = Sla(first_touch_s=1800, business_hours=False)
    decisions = pl.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L4", "L2"],
            "decided_at": [T0, T0, T0, T0 + timedelta(hours=5), T0 + timedelta(minutes=30)],
            "team": ["sales", "sales", "sales", "sales", "sales"],
            "rep_id": ["R1", "R1", "R2", "R2", "R3"],
            "policy": ["p"] * 5,
            "policy_version": [1, 1, 1, 2, 1],
            "rule": ["r"] * 5,
            "sla_root": [None, None, None, None, "x"],
        },
        schema_overrides={"decided_at": pl.Datetime("us", "UTC")},
    )
    outcomes = pl.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3"],
            "event": ["contacted", "contacted", "lost"],
            "occurred_at": [T0 + timedelta(minutes=10), T0 + timedelta(minutes=50), T0 + timedelta(minutes=5)],
        },
        schema_overrides={"occurred_at": pl.Datetime("us", "UTC")},
    )
    leads = pl.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L4"],
            "created_at": [T0] * 3 + [T0 + timedelta(hours=5)],
            "source": ["web"] * 4,
        },
        schema_overrides={"created_at": pl.Datetime("us", "UTC")},
    )
    frame = first_touch_frame(
        decisions, outcomes, leads, lambda p, v, rule: sla, calendars(r).get, T0 + timedelta(hours=5)
    )
    by_lead = {row["lead_id"]: row for row in frame.iter_rows(named=True)}
    assert by_lead["L1"]["met"] is True and by_lead["L1"]["minutes_to_first_touch"] == pytest.approx(10)
    assert by_lead["L2"]["met"] is False and by_lead["L2"]["reassigned"] is True
    assert by_lead["L3"]["met"] is False and by_lead["L3"]["minutes_to_first_touch"] is None  # 'lost' is no touch
    assert by_lead["L4"]["met"] is None  # still inside its SLA
    table = {row["group"]: row for row in sla_kpis(frame, "rep_id").iter_rows(named=True)}
    assert table["R1"]["attainment"] == pytest.approx(0.5) and table["R1"]["due"] == 2
    assert table["R1"]["median_minutes_to_first_touch"] == pytest.approx(30)
    assert table["R2"]["due"] == 1 and table["R2"]["attainment"] == 0.0
    versions = sla_kpis(frame, "policy_version")
    assert versions["group"].to_list() == ["p@1", "p@2"]


# -- the policy language ----------------------------------------------------------------------


def _spec(**sla: Any) -> dict[str, Any]:
    block = {"first_touch": "30m", "remind": "10m", "max_hops": 1, "escalate": {"team": "queue"}} | sla
    return {
        "name": "timed",
        "rules": [{"name": "inbound", "then": {"team": "sales", "fallback": {"team": "queue"}}, "sla": block}],
        "fallback": {"team": "queue"},
        "sla": {"first_touch": "2h", "business_hours": False},
    }


def test_sla_block_parses_validates_and_diffs() -> None:
    spec = parse_policy(_spec())
    rule_sla = spec.sla_for("inbound")
    assert rule_sla is not None and rule_sla.first_touch_s == 1800 and rule_sla.remind_s == 600
    assert rule_sla.touch_events == ("contacted", "meeting") and rule_sla.business_hours
    assert spec.sla_for("fallback") == spec.sla and spec.sla is not None and spec.sla.first_touch_s == 7200
    assert validate_policy(spec, roster()).ok
    report = validate_policy(parse_policy(_spec(escalate={"team": "managers", "rep": "R9"})), roster())
    assert "rule 'inbound' sla: escalation to unknown team 'managers'" in report.errors
    assert "rule 'inbound' sla: escalation to unknown rep 'R9'" in report.errors
    changes = diff_policies(spec, parse_policy(_spec(first_touch="5m", remind=None)))
    assert changes == [
        "rule 'inbound' SLA is now: first touch within 5 min of business time (contacted or meeting); "
        "then re-assign up to 1 time; then escalate to team queue (was: first touch within 30 min of business "
        "time (contacted or meeting); remind after 10 min; then re-assign up to 1 time; then escalate to team queue)"
    ]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"first_touch": "soon"}, "rule 'inbound' sla first_touch: 'soon' is not a duration"),
        ({"remind": "45m"}, "rule 'inbound' sla: 'remind' (45m) must come before 'first_touch' (30m)"),
        ({"touch_events": ["called"]}, "rule 'inbound' sla: unknown touch event 'called'"),
        ({"max_hops": 99}, "rule 'inbound' sla: 'max_hops' must be a whole number from 0 to 10"),
        ({"escalate": {"queue": 1}}, "rule 'inbound' sla escalate: must name a team and/or a rep"),
        ({"business_hours": "yes"}, "rule 'inbound' sla: 'business_hours' must be true or false"),
        ({"deadline": "5m"}, "rule 'inbound' sla: unknown key 'deadline'"),
    ],
)
def test_sla_errors_name_the_rule(block: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicySpecError) as caught:
        parse_policy(_spec(**block))
    assert any(p.startswith(message) for p in caught.value.problems), caught.value.problems


def test_missing_first_touch_is_an_error() -> None:
    raw = _spec()
    del raw["rules"][0]["sla"]["first_touch"]
    with pytest.raises(PolicySpecError, match="'first_touch' is mandatory"):
        parse_policy(raw)
