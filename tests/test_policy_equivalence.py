"""One semantics, two speeds: the polars path and the per-lead path agree on random input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.policy import Policy, Roster, RoutingState, compile_condition, evaluate, parse_policy
from models.policy.spec import AllOf, AnyOf, Condition, Leaf, Not

TEXT = st.sampled_from(["US", "us", "DE", "Retail", "retail tech", "", " ", "NA", "EMEA"])
NUMERIC_TEXT = st.sampled_from(["12", "1.5", "-3", "1e2", "abc", "", " ", ".5", "5.", "+7", "0x10", " 4", "nan"])
SCHEMA = {
    "score": pl.Float64,
    "employees": pl.Int64,
    "country": pl.String,
    "visits": pl.String,
    "flag": pl.Boolean,
    "langs": pl.List(pl.String),
    "region": pl.String,
}
FIELDS = [*SCHEMA, "ghost"]  # "ghost" is absent from every lead


def lead_values() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "score": st.one_of(st.none(), st.floats(-10, 110), st.sampled_from([50.0, 80.0, float("nan")])),
            "employees": st.one_of(st.none(), st.integers(-5, 3000), st.sampled_from([200, 1000])),
            "country": st.one_of(st.none(), TEXT),
            "visits": st.one_of(st.none(), NUMERIC_TEXT),
            "flag": st.one_of(st.none(), st.booleans()),
            "langs": st.one_of(st.none(), st.lists(st.sampled_from(["en", "de", "fr"]), max_size=3)),
            "region": st.one_of(st.none(), st.sampled_from(["NA", "EMEA", "APAC"])),
        }
    )


SCALARS = st.one_of(
    st.integers(-5, 3000),
    st.floats(-10, 110, allow_nan=False),
    st.sampled_from([0, 1, 12, 50, 80, 200, 1000, 1.5, 100.0]),
    TEXT,
    NUMERIC_TEXT,
    st.booleans(),
    st.sampled_from(["true", "no", "en", "de"]),
)
NUMBERS = st.one_of(st.integers(-5, 3000), st.floats(-10, 110, allow_nan=False), st.sampled_from([50, 80, 1000]))


@st.composite
def leaves(draw: st.DrawFn) -> Leaf:
    field = draw(st.sampled_from(FIELDS))
    op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "between", "in", "not in", "contains", "is missing"]))
    if op == "is missing":
        return Leaf(field, op)
    if op in ("<", "<=", ">", ">="):
        return Leaf(field, op, draw(NUMBERS))
    if op == "between":
        low, high = sorted([draw(NUMBERS), draw(NUMBERS)])
        return Leaf(field, op, (low, high))
    if op in ("in", "not in"):
        return Leaf(field, op, tuple(draw(st.lists(SCALARS, min_size=1, max_size=4))))
    if op == "contains":
        return Leaf(field, op, draw(st.one_of(TEXT, st.sampled_from(["en", "de", "u", "1"]))))
    return Leaf(field, op, draw(SCALARS))  # type: ignore[arg-type]


CONDITIONS: st.SearchStrategy[Condition] = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: AllOf(tuple(xs))),
        st.lists(inner, max_size=3).map(lambda xs: AnyOf(tuple(xs))),
        inner.map(Not),
    ),
    max_leaves=6,
)


def frame_of(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(condition=CONDITIONS, rows=st.lists(lead_values(), min_size=1, max_size=12))
def test_a_condition_means_the_same_in_polars_and_per_lead(condition: Condition, rows: list[dict[str, Any]]) -> None:
    frame = frame_of(rows)
    batch = frame.select(compile_condition(condition, dict(frame.schema)).alias("x")).to_series()
    if batch.len() == 1 and frame.height > 1:  # a constant condition broadcasts
        batch = pl.Series([batch[0]] * frame.height)
    assert batch.null_count() == 0
    assert batch.to_list() == [evaluate(condition, lead) for lead in frame.to_dicts()]


ROSTER = Roster.from_frames(
    pl.DataFrame(
        {
            "rep_id": ["A", "B", "C", "D", "E"],
            "team": ["t", "t", "t", "u", "u"],
            "capacity_per_day": [2, 3, 1, 2, 2],
            "weight": [1.0, 2.0, 1.0, 1.0, 1.5],
            "regions": [["NA"], ["EMEA"], ["NA", "APAC"], ["NA"], ["EMEA"]],
            "timezone": ["UTC", "Europe/Berlin", "America/New_York", "UTC", "Asia/Tokyo"],
            "working_hours": ["08:00-18:00"] * 5,
        }
    ),
    absences=pl.DataFrame(
        {
            "rep_id": ["A", "D"],
            "starts_on": [datetime(2026, 3, 3).date()] * 2,
            "ends_on": [datetime(2026, 3, 4).date()] * 2,
        }
    ),
)


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    teams = draw(st.permutations(["t", "u", "nurture"]))[: draw(st.integers(1, 3))]
    rules = []
    for i, team in enumerate(teams):
        when = draw(CONDITIONS)
        then: dict[str, Any] = {"team": team, "fallback": {"team": "queue"}}
        if team in ("t", "u"):
            then["method"] = draw(st.sampled_from(["round_robin", "weighted", "least_loaded", "territory"]))
            then["respect_capacity"] = draw(st.booleans())
        rules.append({"name": f"r{i}", "then": then, "when": _raw(when)})
    return {
        "name": "random",
        "rules": rules,
        "fallback": {"team": "queue"},
        "availability": {"absences": True, "working_hours": draw(st.booleans())},
    }


def _raw(condition: Condition) -> dict[str, Any]:
    """Back to the YAML shape, so the property also covers parsing."""
    if isinstance(condition, AllOf | AnyOf):
        return {"all" if isinstance(condition, AllOf) else "any": [_raw(c) for c in condition.items]}
    if isinstance(condition, Not):
        return {"not": _raw(condition.item)}
    value = list(condition.value) if isinstance(condition.value, tuple) else condition.value
    return {"field": condition.field, "op": condition.op, **({"value": value} if condition.op != "is missing" else {})}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=policies(),
    rows=st.lists(lead_values(), min_size=1, max_size=25),
    gaps=st.lists(st.integers(0, 600), min_size=25, max_size=25),
)
def test_replay_and_one_at_a_time_routing_decide_the_same(
    raw: dict[str, Any], rows: list[dict[str, Any]], gaps: list[int]
) -> None:
    start = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    times = list(np.cumsum(gaps[: len(rows)]))
    frame = frame_of(rows).with_columns(
        pl.Series("lead_id", [f"L{i}" for i in range(len(rows))]),
        pl.Series("created_at", [start + timedelta(minutes=int(m) * 7) for m in times], pl.Datetime("us", "UTC")),
    )
    policy = Policy(parse_policy(raw), ROSTER)
    batch = policy.replay(frame, rng=np.random.default_rng(0)).decisions
    state = RoutingState(ROSTER.size)
    one = [policy.route_one(lead, state, np.random.default_rng(0)) for lead in frame.to_dicts()]
    assert [(d.lead_id, d.team, d.rep_id, d.action, d.rule) for d in one] == list(
        batch.select("lead_id", "team", "rep_id", "action", "rule").iter_rows()
    )
    assert [d.propensity for d in one] == batch["propensity"].to_list()
    assert [d.reasons for d in one] == batch["reasons"].to_list()


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),  # reasons hold no floats (written differently)
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_json_values)
def test_the_reasons_encoder_writes_what_json_dumps_writes(value: object) -> None:
    # Reasons are written by compact_json on both paths; it must still be json.dumps's text.
    import json

    from models.policy.decisions import compact_json

    assert compact_json(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
