"""Assignment, replay and metrics on hand-checked fixtures (every expected number worked out by hand)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest

from models.policy import Policy, Roster, RoutingState, gini, operational_metrics, parse_policy
from models.policy.metrics import coefficient_of_variation

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def roster(
    reps: Sequence[tuple[str, str, int, float]] = (("A", "t", 2, 1.0), ("B", "t", 2, 1.0), ("C", "t", 2, 1.0)),
    absences: Sequence[tuple[str, date, date]] = (),
    owners: dict[str, str] | None = None,
    **extra: list[Any],
) -> Roster:
    frame = pl.DataFrame(
        {
            "rep_id": [r[0] for r in reps],
            "team": [r[1] for r in reps],
            "capacity_per_day": [r[2] for r in reps],
            "weight": [r[3] for r in reps],
            "active": [True] * len(reps),
            "timezone": ["UTC"] * len(reps),
            **extra,
        }
    )
    absent = pl.DataFrame(
        {
            "rep_id": [a[0] for a in absences],
            "starts_on": [a[1] for a in absences],
            "ends_on": [a[2] for a in absences],
        },
        schema={"rep_id": pl.String, "starts_on": pl.Date, "ends_on": pl.Date},
    )
    accounts = pl.DataFrame({"account_id": list((owners or {}).keys()), "owner_rep_id": list((owners or {}).values())})
    return Roster.from_frames(frame, None, absent, accounts if owners else None)


def leads(times: Sequence[datetime], **columns: list[Any]) -> pl.DataFrame:
    return pl.DataFrame(
        {"lead_id": [f"L{i:03d}" for i in range(len(times))], "created_at": list(times), **columns},
        schema_overrides={"created_at": pl.Datetime("us", "UTC")},
    )


def spec(then: dict[str, Any], **more: Any) -> Any:
    return parse_policy({"name": "p", "rules": [{"name": "all", "then": then}], "fallback": {"team": "queue"}, **more})


def hours(n: int, day: int = 0) -> list[datetime]:
    return [T0 + timedelta(days=day, minutes=10 * i) for i in range(n)]


def test_round_robin_with_capacity_and_hand_checked_metrics() -> None:
    # Day 1: 7 leads, 3 reps with 2 seats each → A B C A B C, the 7th overflows to the queue.
    # Day 2: 2 leads → the rotation continues where it stopped (A, B), capacity is fresh.
    r = roster()
    frame = leads(hours(7) + hours(2, day=1))
    replay = Policy(spec({"team": "t", "fallback": {"team": "queue"}}), r).replay(frame, rng=np.random.default_rng(0))
    d = replay.decisions
    assert d["rep_id"].to_list() == ["A", "B", "C", "A", "B", "C", None, "A", "B"]
    assert d["team"].to_list() == ["t"] * 6 + ["queue"] + ["t"] * 2
    assert d["action"].to_list() == ["assign"] * 6 + ["queue"] + ["assign"] * 2
    assert json.loads(d["reasons"][6])["fallback"] == "nobody eligible in t"
    assert d["propensity"].to_list() == [1.0] * 9

    m = operational_metrics(d, r)
    assert m.unrouted == 0
    assert m.share == pytest.approx({"t": 8 / 9, "queue": 1 / 9})
    assert m.capacity_breaches == 0
    assert m.load.filter(pl.col("day") == date(2026, 3, 2))["load"].to_list() == [2, 2, 2]
    # Assignments A=3, B=3, C=2: mean 8/3, population sd sqrt(2/9); Gini = Σ|xi-xj| / (2 n² mean) = 4 / (2·9·8/3).
    fairness = m.fairness[0]
    assert fairness.assigned == 8
    assert fairness.cv == pytest.approx(np.sqrt(2 / 9) / (8 / 3))
    assert fairness.gini == pytest.approx(4 / (2 * 9 * 8 / 3))


def test_capacity_breaches_are_counted_when_capacity_is_ignored() -> None:
    r = roster(reps=(("A", "t", 2, 1.0),))
    d = Policy(spec({"team": "t", "respect_capacity": False}), r).replay(leads(hours(5)), rng=np.random.default_rng(0))
    m = operational_metrics(d.decisions, r)
    assert d.decisions["rep_id"].to_list() == ["A"] * 5
    assert (m.capacity_breaches, m.leads_over_capacity) == (1, 3)


def test_a_returning_rep_takes_turns_instead_of_a_burst() -> None:
    # B is away on day 2 and 3; A and C share those leads. When B returns on day 4 the rotation
    # goes A B C A B C: B gets 2 of 6, not the 6 a "catch up on counts" rotation would give.
    r = roster(
        reps=(("A", "t", 99, 1.0), ("B", "t", 99, 1.0), ("C", "t", 99, 1.0)),
        absences=(("B", date(2026, 3, 3), date(2026, 3, 4)),),
    )
    frame = leads(hours(3) + hours(6, day=1) + hours(6, day=2) + hours(6, day=3))
    d = Policy(spec({"team": "t"}), r).replay(frame, rng=np.random.default_rng(0)).decisions
    reps = d["rep_id"].to_list()
    assert reps[:3] == ["A", "B", "C"]
    assert "B" not in reps[3:15]
    assert reps[15:] == ["A", "B", "C", "A", "B", "C"]


def test_weighted_and_least_loaded_follow_weights_and_capacity() -> None:
    r = roster(reps=(("A", "t", 99, 2.0), ("B", "t", 99, 1.0)))
    d = Policy(spec({"team": "t", "method": "weighted"}), r).replay(leads(hours(6)), rng=np.random.default_rng(0))
    assert d.decisions["rep_id"].to_list().count("A") == 4  # twice B's share
    r = roster(reps=(("A", "t", 4, 1.0), ("B", "t", 2, 1.0)))
    d = Policy(spec({"team": "t", "method": "least_loaded"}), r).replay(leads(hours(6)), rng=np.random.default_rng(0))
    # Load relative to capacity: A 0/4, B 0/2 → A; A 1/4 < B 0/2? no, 0 < 0.25 → B; then A (.25 < .5) …
    assert d.decisions["rep_id"].to_list() == ["A", "B", "A", "A", "B", "A"]


def test_random_propensity_is_one_over_eligible_and_reproducible() -> None:
    r = roster(reps=(("A", "t", 99, 1.0), ("B", "t", 99, 1.0), ("C", "t", 99, 1.0), ("D", "t", 99, 1.0)))
    policy = Policy(spec({"team": "t", "method": "random"}), r)
    one = policy.replay(leads(hours(40)), rng=np.random.default_rng(5)).decisions
    two = policy.replay(leads(hours(40)), rng=np.random.default_rng(5)).decisions
    assert one["rep_id"].to_list() == two["rep_id"].to_list()
    assert one["propensity"].to_list() == [0.25] * 40
    assert set(one["rep_id"]) == {"A", "B", "C", "D"}


def test_skill_territory_owner_and_best_fit() -> None:
    r = roster(
        reps=(("A", "t", 99, 1.0), ("B", "t", 99, 1.0)),
        owners={"ACC1": "B"},
        industries=[["Retail"], ["Software"]],
        regions=[["EMEA"], ["NA"]],
    )
    frame = leads(
        hours(4),
        industry=["Software", "Retail", "Mining", None],
        region=["NA", "EMEA", "NA", "APAC"],
        account_id=["ACC1", None, "ACC1", "X"],
    )
    rng = np.random.default_rng(0)
    skill = Policy(spec({"team": "t", "method": "skill_match"}), r).replay(frame, rng=rng).decisions
    assert skill["rep_id"].to_list()[:2] == ["B", "A"]  # matched; the others relax to the whole team
    territory = Policy(spec({"team": "t", "method": "territory"}), r).replay(frame, rng=rng).decisions
    assert territory["rep_id"].to_list()[:3] == ["B", "A", "B"]
    owner = Policy(spec({"method": "account_owner"}), r).replay(frame, rng=rng).decisions
    assert owner["rep_id"].to_list() == ["B", None, "B", None]
    assert owner["team"].to_list() == ["t", "queue", "t", "queue"]

    class Fit:
        def expected_value(self, leads: pl.DataFrame, rep_ids: Sequence[str]) -> np.ndarray:
            prefers_a = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.5]])
            order = [["A", "B"].index(x) for x in rep_ids]
            return prefers_a[: leads.height][:, order]

    capped = roster(reps=(("A", "t", 2, 1.0), ("B", "t", 99, 1.0)))
    fit = Policy(spec({"team": "t", "method": "best_fit"}), capped, fit=Fit()).replay(frame, rng=rng).decisions
    assert fit["rep_id"].to_list() == ["A", "B", "A", "B"]  # A is full after two leads


def test_exploration_probabilities_sum_to_one_and_keep_a_floor() -> None:
    r = roster()
    policy = Policy(
        parse_policy(
            {
                "name": "p",
                "rules": [{"name": "hot", "when": {"field": "score", "op": ">", "value": 50}, "then": {"team": "t"}}],
                "fallback": {"team": "nurture"},
                "exploration": {"share": 0.05, "floor": 0.1},
            }
        ),
        r,
    )
    frame = leads(hours(300), score=[float(i % 100) for i in range(300)])
    table = policy.team_probabilities(frame)
    sums = table.group_by("lead_id").agg(pl.col("probability").sum())["probability"]
    assert np.allclose(sums.to_numpy(), 1.0)
    assert table["probability"].min() == pytest.approx(0.1)  # floor 0.1 × 2 teams → share 0.2
    d = policy.replay(frame, rng=np.random.default_rng(3)).decisions
    explored = d["reasons"].map_elements(lambda t: json.loads(t)["explored"], return_dtype=pl.Boolean)
    assert 0.1 < explored.mean() < 0.3  # type: ignore[operator]
    # Propensity = team probability × rep probability (round robin: 1).
    assert set(np.round(d["propensity"].to_numpy(), 6)) <= {0.9, 0.1}


def test_gini_and_cv_degenerate_inputs_are_zero_not_nan() -> None:
    assert gini(np.zeros(3)) == 0.0
    assert coefficient_of_variation(np.zeros(3)) == 0.0
    assert gini(np.array([0.0, 0.0, 3.0])) == pytest.approx(2 / 3)


def test_route_one_replays_like_the_batch_with_state() -> None:
    r = roster(absences=(("B", date(2026, 3, 3), date(2026, 3, 3)),))
    policy = Policy(spec({"team": "t", "fallback": {"team": "queue"}}), r)
    frame = leads(hours(8) + hours(8, day=1) + hours(4, day=2))
    batch = policy.replay(frame, rng=np.random.default_rng(0)).decisions
    state = RoutingState(r.size)
    one = [policy.route_one(lead, state, np.random.default_rng(0)) for lead in frame.to_dicts()]
    assert [x.rep_id for x in one] == batch["rep_id"].to_list()
    assert [x.team for x in one] == batch["team"].to_list()
    assert [x.reasons for x in one] == batch["reasons"].to_list()  # the very same text


def test_routing_state_survives_a_json_round_trip_mid_stream() -> None:
    r = roster()
    policy = Policy(spec({"team": "t", "method": "weighted", "fallback": {"team": "queue"}}), r)
    frame = leads(hours(5) + hours(5, day=1))
    whole = policy.replay(frame, rng=np.random.default_rng(0)).decisions
    first = policy.replay(frame.head(4), rng=np.random.default_rng(0))
    restored = RoutingState.from_json(json.loads(json.dumps(first.state.to_json())))
    rest = policy.replay(frame.tail(6), rng=np.random.default_rng(0), state=restored).decisions
    assert first.decisions["rep_id"].to_list() + rest["rep_id"].to_list() == whole["rep_id"].to_list()
    with pytest.raises(ValueError, match="every vector must have 4 reps"):
        RoutingState.from_json({**first.state.to_json(), "n_reps": 4})


def test_one_lead_propensity_matches_the_team_distribution_under_exploration() -> None:
    r = roster(reps=(("A", "t", 99, 1.0), ("B", "t", 99, 1.0)))  # no capacity fallback in play
    raw = {
        "name": "p",
        "rules": [{"name": "hot", "when": {"field": "score", "op": ">", "value": 50}, "then": {"team": "t"}}],
        "fallback": {"team": "nurture"},
        "exploration": {"share": 0.3},
    }
    policy = Policy(parse_policy(raw), r)
    frame = leads(hours(60), score=[float(i % 100) for i in range(60)])
    table = {(a, b): p for a, b, p in policy.team_probabilities(frame).iter_rows()}
    state, rng = RoutingState(r.size), np.random.default_rng(4)
    decided = [policy.route_one(lead, state, rng) for lead in frame.to_dicts()]
    assert {d.propensity == pytest.approx(table[(d.lead_id, d.team)]) for d in decided} == {True}
    assert any(json.loads(d.reasons)["explored"] for d in decided)


def test_distribution_one_is_complete_and_does_not_touch_the_state() -> None:
    r = roster(reps=(("A", "t", 1, 1.0), ("B", "t", 1, 1.0), ("C", "u", 9, 1.0)))
    raw = {
        "name": "p",
        "rules": [
            {
                "name": "hot",
                "when": {"field": "score", "op": ">", "value": 50},
                "then": {"team": "t", "method": "random", "fallback": {"team": "u"}},
            }
        ],
        "fallback": {"team": "nurture"},
        "exploration": {"share": 0.2, "teams": ["t", "nurture"]},
    }
    policy = Policy(parse_policy(raw), r)
    state, rng = RoutingState(r.size), np.random.default_rng(0)
    lead = {"lead_id": "L1", "created_at": T0, "score": 90.0}
    before = state.to_json()
    dist = policy.distribution_one(lead, state)
    assert state.to_json() == before
    assert sorted(dist) == [
        ("nurture", None, pytest.approx(0.1)),
        ("t", "A", pytest.approx(0.45)),
        ("t", "B", pytest.approx(0.45)),
    ]
    policy.route_one({**lead, "lead_id": "L0"}, state, rng)
    policy.route_one({**lead, "lead_id": "L0b"}, state, rng)
    # Both seats of team t are taken: whoever intends t now falls back to u (C).
    dist = dict(((t, rep), p) for t, rep, p in policy.distribution_one(lead, state))
    assert dist == {("u", "C"): pytest.approx(0.9), ("nurture", None): pytest.approx(0.1)}


@pytest.mark.parametrize("working_hours", [True, False])
def test_availability_per_instant_in_python_equals_the_polars_pass(
    working_hours: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Few distinct instants go through available_one (zoneinfo), many through polars: the same
    # answer either way, across zones with DST changes, absences and working hours.
    from models.policy import roster as roster_module
    from models.policy.spec import Availability

    zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "America/Sao_Paulo"]
    team = roster(
        [(f"R{i}", "t", 5, 1.0) for i in range(6)],
        absences=[("R1", date(2026, 3, 28), date(2026, 3, 30)), ("R4", date(2026, 10, 4), date(2026, 10, 5))],
        timezone=zones,
        working_hours=["09:00-17:00", "08:30-16:30", "10:00-18:00", None, "07:00-15:00", "12:00-20:00"],
    )
    rng = np.random.default_rng(3)
    starts = [datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC)]  # both sides of DST changes
    stamps = [s + timedelta(minutes=int(m)) for s in starts for m in rng.integers(0, 6 * 24 * 60, 150)]
    created = pl.Series("created_at", stamps, dtype=pl.Datetime("us", "UTC"))
    rules = Availability(absences=True, working_hours=working_hours)
    reps = np.arange(6)
    monkeypatch.setattr(roster_module, "PYTHON_CELLS", 0)
    by_polars = team.available(created, reps, rules)
    monkeypatch.setattr(roster_module, "PYTHON_CELLS", 10**9)
    by_python = team.available(created, reps, rules)
    assert by_polars.any() and not by_polars.all()
    np.testing.assert_array_equal(by_python, by_polars)
