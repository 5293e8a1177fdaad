"""The endpoint's one-lead fast path: per-record validation equals the frame path, the async
coalescer entry answers each request alone, and logged decisions still replay from their seeds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from leadroute.serving import records as records_module
from leadroute.serving.coalesce import Coalescer
from leadroute.serving.deployment import Arm, Deployment
from leadroute.serving.log import JsonLog, read_records
from leadroute.serving.records import validate_indexed
from leadroute.serving.router import RoutingService, decision_seed
from models.policy import Policy, Roster, RoutingState
from models.simulation import SimulatedCompany, SimulationConfig, simulate_company
from pipelines.policies import SHIPPED_DIR, read_file
from pipelines.settings import Settings


@pytest.fixture(scope="module")
def company() -> SimulatedCompany:
    return simulate_company(SimulationConfig(n_leads=400, seed=17))


def endpoint_leads(company: SimulatedCompany, n: int) -> list[dict[str, Any]]:
    """Leads as ``LeadIn.model_dump()`` hands them over: text, numbers as text, extras kept."""
    out = []
    for lead in company.leads.head(n).to_dicts():
        row: dict[str, Any] = {}
        for key, value in lead.items():
            if isinstance(value, datetime):
                row[key] = value.isoformat()
            elif isinstance(value, int | float) and not isinstance(value, bool):
                row[key] = str(value)
            else:
                row[key] = value
        out.append(row)
    return out


def test_per_record_validation_equals_the_frame_path(
    company: SimulatedCompany, monkeypatch: pytest.MonkeyPatch
) -> None:
    leads = endpoint_leads(company, 120)
    leads[3] = {**leads[3], "employees": "-4", "created_at": "yesterday"}
    leads[7] = {**leads[7], "lead_id": "   "}
    leads[9] = {"lead_id": "only-two", "created_at": "2026-01-05 10:00:00+02:00", "Budget (€)": 12}
    leads[11] = {**leads[11], "tags": ["a", "b"], "nested": {"x": 1}, "flag": True, "country": " de "}
    monkeypatch.setattr(records_module, "FRAME_MIN_RECORDS", 10**9)
    each = validate_indexed("leads", leads)
    monkeypatch.setattr(records_module, "FRAME_MIN_RECORDS", 0)
    frame = validate_indexed("leads", leads)
    assert each == frame
    rows, rejects = each
    assert [r.index for r in rejects] == [3, 7]
    assert rejects[0].reason.startswith("created_at: 'yesterday' is not an ISO 8601 timestamp")
    typed = dict(rows)
    assert typed[9]["created_at"] == datetime(2026, 1, 5, 8, tzinfo=UTC) and typed[9]["Budget (€)"] == "12"
    assert typed[11]["nested"] == '{"x":1}' and typed[11]["flag"] == "true" and typed[11]["country"] == "de"


def _service(company: SimulatedCompany, tmp_path: Path) -> tuple[RoutingService, JsonLog]:
    roster = Roster.from_frames(company.reps, company.teams, company.absences, company.accounts)
    policy = Policy(read_file(SHIPPED_DIR / "seed.yaml").spec, roster)
    log = JsonLog(tmp_path / "log", "decisions", fsync=False)
    return RoutingService(Settings(home=tmp_path), roster, Deployment(None, (Arm(policy, 1.0),)), log), log


def test_async_requests_are_coalesced_and_answered_alone(company: SimulatedCompany, tmp_path: Path) -> None:
    service, log = _service(company, tmp_path)
    coalescer = Coalescer(service)
    coalescer.start()
    leads = endpoint_leads(company, 60)
    requests = [leads[i : i + 3] for i in range(0, 60, 3)]
    requests[5] = [requests[5][0], {"lead_id": "bad", "created_at": "later"}]
    requests[6] = [{"lead_id": "x", "created_at": "2026-01-01", "extra": "{}"}]

    async def all_at_once() -> list[Any]:
        return await asyncio.gather(*(coalescer.decide_async(r) for r in requests))

    answers = asyncio.run(all_at_once())
    coalescer.stop()
    log.close()
    for request, (decided, rejects) in zip(requests, answers, strict=True):
        if request is requests[5]:
            assert decided == [] and [(r.index, r.reason.split(":")[0]) for r in rejects] == [(1, "created_at")]
        elif request is requests[6]:
            assert decided == [] and rejects[0].reason == "extra: 'extra' is a reserved name"
        else:
            assert not rejects and [r["lead_id"] for r in decided] == [lead["lead_id"] for lead in request]
    # Each logged decision replays from its own seed to the same destination, in log order.
    logged = list(read_records(tmp_path / "log", "decisions"))
    assert len(logged) == 54
    policy = service.deployment.arms[0].policy
    state = RoutingState(service.roster.size)
    for record in logged:
        again = policy.route_one(record["lead"], state, np.random.default_rng(decision_seed(record["decision_id"])))
        assert (again.team, again.rep_id) == (record["team"], record["rep_id"])
