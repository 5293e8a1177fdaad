"""The batch path: one validation and one replay per request, answered in input order, logged so
the restart rebuild reproduces every decision and the state; the cheap parsers never accept what
the request schema would refuse or read differently; durability for the event loop."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadroute.serving.batch import batch_answer, decision_ids, decision_json, parse_batch, parse_lead, typed_leads
from leadroute.serving.deployment import Arm, Deployment
from leadroute.serving.log import Durability, JsonLog, read_records
from leadroute.serving.records import validate_indexed
from leadroute.serving.router import RoutingService
from leadroute.serving.schemas import BatchIn, DecisionOut, LeadIn
from models.policy import Policy, Roster, RoutingState
from models.simulation import SimulatedCompany, SimulationConfig, simulate_company
from pipelines.policies import SHIPPED_DIR, read_file
from pipelines.settings import Settings
from tests.serving_support import route_again


@pytest.fixture(scope="module")
def company() -> SimulatedCompany:
    return simulate_company(SimulationConfig(n_leads=600, seed=23))


def crm_leads(company: SimulatedCompany, n: int, offset: int = 0) -> list[dict[str, Any]]:
    """Leads as a CRM posts them: JSON numbers, ISO text, extras, a score for the seed's rules."""
    rng = np.random.default_rng(offset + 1)
    out = []
    for i, lead in enumerate(company.leads.slice(offset, n).to_dicts()):
        row = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in lead.items() if v is not None}
        row["score"] = round(float(rng.uniform(0, 100)), 1)
        row["lead_id"] = f"b{offset + i}"
        out.append(row)
    return out


def _roster(company: SimulatedCompany) -> Roster:
    return Roster.from_frames(company.reps, company.teams, company.absences, company.accounts)


def _policy(roster: Roster, name: str) -> Policy:
    return Policy(read_file(SHIPPED_DIR / f"{name}.yaml").spec, roster)


def _rows(leads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows, rejects = validate_indexed("leads", leads)
    assert not rejects
    return [row for _, row in rows]


def _service(roster: Roster, deployment: Deployment, home: Path) -> RoutingService:
    log = JsonLog(home / "decisions", "decisions", fsync=False)
    return RoutingService(Settings(home=home), roster, deployment, log)


def test_a_batch_is_one_replay_in_time_order_answered_in_input_order(company: SimulatedCompany, tmp_path: Path) -> None:
    roster = _roster(company)
    seed_policy = _policy(roster, "seed")
    service = _service(roster, Deployment(None, (Arm(seed_policy, 1.0),)), tmp_path)
    leads = crm_leads(company, 300)
    rng = np.random.default_rng(5)
    rng.shuffle(leads)  # not in time order
    typed, rejects = typed_leads(leads)
    assert not rejects
    records = service.route_frame(typed)
    service.log.close()
    assert records["lead_id"].to_list() == [lead["lead_id"] for lead in leads]
    logged = list(read_records(tmp_path / "decisions", "decisions"))
    seeds = {r["replay_seed"] for r in logged}
    assert len(logged) == 300 and len(seeds) == 1
    # The log keeps routing order: created_at ascending (ties in the order sent).
    stamps = [r["lead"]["created_at"] for r in logged]
    assert stamps == sorted(stamps)
    # The in-process replay with the logged seed decides the same, lead by lead.
    expected = seed_policy.replay(typed, rng=np.random.default_rng(seeds.pop()), state=RoutingState(roster.size))
    mine = records.sort("lead_id")
    theirs = expected.decisions.sort("lead_id")
    for column in ("team", "rep_id", "action", "propensity", "reasons", "score"):
        assert mine[column].to_list() == theirs[column].to_list(), column
    assert {r["action"] for r in logged} >= {"assign", "nurture"}
    # What is answered is what is logged, per decision.
    answer = json.loads(batch_answer(records))["decisions"]
    by_id = {r["decision_id"]: r for r in logged}
    for decided in answer:
        record = by_id[decided["decision_id"]]
        assert decided == {k: record[k] for k in decided if k != "reasons"} | {"reasons": json.loads(record["reasons"])}


def test_restart_rebuild_reproduces_batches_and_singles_across_arms(company: SimulatedCompany, tmp_path: Path) -> None:
    roster = _roster(company)
    arms = (Arm(_policy(roster, "seed"), 0.5, "a"), Arm(_policy(roster, "round_robin"), 0.5, "b"))
    deployment = Deployment(None, arms, experiment="exp", salt="s1")
    service = _service(roster, deployment, tmp_path)
    service.route(_rows(crm_leads(company, 40)))
    for start in (40, 240):
        typed, _ = typed_leads(crm_leads(company, 200, offset=start))
        service.route_frame(typed)
    service.route(_rows(crm_leads(company, 30, offset=500)))
    service.log.close()
    logged = list(read_records(tmp_path / "decisions", "decisions"))
    assert len(logged) == 470 and {r["arm"] for r in logged} == {"a", "b"}
    # A batch's record is a single decision's record plus its replay seed, field for field.
    single = [k for k in logged[0] if k != "lead"]
    assert "replay_seed" not in logged[0] and list(logged[100]) == [*single, "replay_seed", "lead"]
    # One seed per arm per batch: four replay groups.
    assert len({r["replay_seed"] for r in logged if "replay_seed" in r}) == 4

    again = _service(roster, deployment, tmp_path)
    rebuilt = again.rebuild()
    assert (rebuilt.replayed, rebuilt.matched, rebuilt.skipped) == (470, 470, 0)
    for key, state in service.states.items():
        restored = again.states[key]
        assert state.passes.keys() == restored.passes.keys()
        for dest, passes in state.passes.items():
            assert np.array_equal(passes, restored.passes[dest]), (key, dest)
    assert service.loads.keys() == again.loads.keys()
    for day, load in service.loads.items():
        assert np.array_equal(load, again.loads[day])
    # The in-process policies agree with every logged decision (the tests' own replay).
    policies = {"seed": arms[0].policy, "round_robin": arms[1].policy}
    shared: dict[int, np.ndarray] = {}
    states = {name: RoutingState(roster.size, loads=shared) for name in policies}
    for decided in route_again(logged, lambda r: policies[r["policy"]], states.__getitem__):
        assert (decided.team, decided.rep_id) == (decided.record["team"], decided.record["rep_id"])


def test_a_batch_with_a_refused_lead_is_not_routed(company: SimulatedCompany) -> None:
    leads = crm_leads(company, 5)
    leads[2] = {**leads[2], "employees": -3}
    leads[4] = {**leads[4], "created_at": "soon"}
    _, rejects = typed_leads(leads)
    assert [(r.index, r.reason.split(":")[0]) for r in rejects] == [(2, "employees"), (4, "created_at")]


def test_typed_leads_equal_per_record_validation(company: SimulatedCompany) -> None:
    leads = crm_leads(company, 50)
    leads[1] = {**leads[1], "Budget (€)": 12, "tags": ["a", "b"], "nested": {"x": 1}, "flag": True, "*": "star"}
    leads[2] = {**leads[2], "country": " de ", "employees": "1e3"}
    typed, rejects = typed_leads(leads)
    rows, per_record = validate_indexed("leads", leads)
    assert not rejects and not per_record
    assert typed.to_dicts() == [row for _, row in rows]


def test_decision_ids_are_random_uuid4_text() -> None:
    ids = decision_ids(2000).to_list()
    assert len(set(ids)) == 2000
    for text in ids[:50]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
field_names = st.sampled_from(
    ["lead_id", "created_at", "email", "industry", "employees", "annual_revenue", "score", "country", "x", "extra"]
)
lead_dicts = st.dictionaries(field_names, json_values, max_size=6).map(
    lambda d: {"lead_id": "L1", "created_at": "2026-01-05T10:00:00Z", **d}
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(leads=st.lists(lead_dicts, min_size=0, max_size=3), wrap=st.booleans())
def test_the_cheap_parsers_only_accept_what_the_schema_accepts_and_read_it_alike(
    leads: list[dict[str, Any]], wrap: bool
) -> None:
    body = json.dumps({"leads": leads} if wrap else leads).encode()
    parsed = parse_batch(body)
    if parsed is not None:
        schema = [lead.model_dump() for lead in BatchIn.model_validate_json(body).leads]
        mine, theirs = typed_leads(parsed), typed_leads(schema)
        assert mine[1] == theirs[1]
        assert mine[0].select(sorted(mine[0].columns)).equals(theirs[0].select(sorted(theirs[0].columns)))
    for lead in leads:
        one = parse_lead(json.dumps(lead).encode())
        if one is not None:
            assert validate_indexed("leads", [one]) == validate_indexed(
                "leads", [LeadIn.model_validate_json(json.dumps(lead)).model_dump()]
            )


def test_one_decision_answer_is_the_schema_shape() -> None:
    record = {
        "decision_id": "d", "lead_id": "l", "team": "t", "rep_id": None, "action": "inbox", "score": 1.5,
        "policy": "p", "policy_version": 2, "experiment": None, "arm": None, "propensity": 0.25,
        "reasons": '{"rule":"r","why":"é"}', "lead": {"ignored": True},
    }  # fmt: skip
    answer = json.loads(decision_json(record))
    assert answer["reasons"] == {"rule": "r", "why": "é"} and "lead" not in answer
    assert DecisionOut.model_validate(answer).model_dump(mode="json") == answer


def test_durability_wakes_every_waiter_after_one_shared_fsync(tmp_path: Path) -> None:
    log = JsonLog(tmp_path, "decisions", fsync=True)
    durable = Durability(log)
    durable.start()

    async def many() -> None:
        tickets = [log.append([{"n": i}]) for i in range(40)]
        await asyncio.gather(*(durable.wait(t) for t in tickets))
        assert all(log.synced(t) for t in tickets)

    asyncio.run(many())
    durable.stop()
    log.close()
    assert [r["n"] for r in read_records(tmp_path, "decisions")] == list(range(40))


def test_a_column_of_encoded_records_is_logged_as_it_is(tmp_path: Path) -> None:
    records = [{"n": 1, "text": 'a, "quoted"\nline'}, {"n": 2, "text": "é ✓ \\ ,;"}, {"n": 3, "text": ""}]
    log = JsonLog(tmp_path, "decisions", fsync=False, max_bytes=10_000)
    log.append([{"n": 0}])
    log.append_encoded(pl.Series([json.dumps(r, ensure_ascii=False) for r in records]))
    with pytest.raises(ValueError, match="missing"):
        log.append_encoded(pl.Series(['{"n": 9}', None]))
    log.close()
    assert list(read_records(tmp_path, "decisions")) == [{"n": 0}, *records]
    (file,) = tmp_path.glob("decisions-*.jsonl")
    assert file.stat().st_size == log._size  # the rotation's count of bytes is exact


def test_the_cheap_parsers_know_every_field_of_the_request_schema() -> None:
    from leadroute.serving import batch

    assert set(batch._TYPES) | {"lead_id", "created_at"} == set(LeadIn.model_fields)
