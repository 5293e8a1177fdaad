"""The routing endpoint against a real uvicorn server on 127.0.0.1 (a demo workspace, no model)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from leadroute.serving import read_records
from leadroute.serving.records import validate_records
from models.policy import Policy, RoutingState
from pipelines.policies import load_roster, resolve
from pipelines.settings import Settings
from tests.serving_support import Again, Server, api_key, demo_workspace, route_again, sample_leads


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = demo_workspace(tmp_path_factory.mktemp("serving") / "ws")
    running = Server(settings, extra_args=("--no-model",), env={"LEADROUTE_HUBSPOT_SECRET": HUBSPOT_SECRET}).start()
    yield running
    running.stop()


HUBSPOT_SECRET = "hubspot-secret-never-echoed-5f1c"


def _client(server: Server, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key or api_key(server.settings)}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30.0)


def replay_log(settings: Settings, policy_name: str = "seed") -> list[Again]:
    """Every logged decision next to what the in-process policy decides for the same lead, state
    and random seed, in log order."""
    source = resolve(settings, policy_name)
    policy = Policy(source.spec, load_roster(settings), version=source.version)
    state = RoutingState(policy.roster.size)
    records = list(read_records(settings.decision_log_dir, "decisions"))
    return route_again(records, lambda _: policy, lambda _: state)


def test_concurrent_decisions_match_the_in_process_policy_and_are_all_logged(server: Server) -> None:
    leads = sample_leads(server.settings, 80)
    with _client(server) as client:

        def one(lead: dict[str, Any]) -> dict[str, Any]:
            response = client.post("/v1/route", json=lead)
            assert response.status_code == 200, response.text
            return dict(response.json())

        with ThreadPoolExecutor(8) as pool:
            singles = list(pool.map(one, leads[:60]))
        batch = client.post("/v1/route/batch", json={"leads": leads[60:]})
        assert batch.status_code == 200, batch.text
    answered = singles + batch.json()["decisions"]
    assert len(answered) == 80
    first = answered[0]
    assert set(first) == {
        "decision_id", "lead_id", "team", "rep_id", "action", "score", "policy", "policy_version",
        "experiment", "arm", "propensity", "reasons",
    }  # fmt: skip
    assert first["policy"] == "seed" and isinstance(first["reasons"]["rule"], str)

    logged = {r["decision_id"]: r for r in read_records(server.settings.decision_log_dir, "decisions")}
    assert {d["decision_id"] for d in answered} <= set(logged)
    # The same lead, state (the log's order is the order state changed in) and seed give the
    # same decision in process: the lock kept concurrent requests from interleaving.
    pairs = replay_log(server.settings)
    assert len(pairs) == len(logged)
    for again in pairs:
        record = again.record
        assert (again.team, again.rep_id, again.action) == (record["team"], record["rep_id"], record["action"])
        assert again.propensity == pytest.approx(record["propensity"])
        assert json.loads(again.reasons) == json.loads(record["reasons"])
    # The batch was decided as one replay (one seed for its 20 leads), answered in the order sent.
    batched = [r for r in logged.values() if r.get("replay_seed") is not None]
    assert len(batched) == 20 and len({r["replay_seed"] for r in batched}) == 1
    assert [d["lead_id"] for d in batch.json()["decisions"]] == [lead["lead_id"] for lead in leads[60:]]
    # The same typed lead the endpoint routed, validated like ingest.
    rows, rejects = validate_records("leads", [leads[0]])
    assert not rejects and logged[answered[0]["decision_id"]]["lead"]["industry"] == rows[0].get("industry")

    files = f"{server.settings.decision_log_dir}/*.jsonl"
    count = duckdb.connect().execute(f"SELECT count(*) FROM read_json_auto('{files}')").fetchall()[0][0]
    assert count == len(logged)


BAD_REQUESTS: list[tuple[str, dict[str, Any], int, str]] = [
    ("/v1/route", {"content": b'{"lead_id": "x", ', "headers": {"content-type": "application/json"}}, 400, ""),
    ("/v1/route", {"json": {"lead_id": ["x"], "created_at": "2026-01-01"}}, 422, "lead_id"),
    ("/v1/route", {"json": {"lead_id": "x"}}, 422, "created_at"),
    ("/v1/route", {"json": {"lead_id": "x", "created_at": "yesterday"}}, 422, "created_at"),
    ("/v1/route", {"json": {"lead_id": "x", "created_at": "2026-01-01", "employees": -3}}, 422, "employees"),
    ("/v1/route", {"json": [1, 2]}, 422, "body"),
    ("/v1/route", {"json": {"lead_id": "x", "created_at": "2026-01-01", "__row_number__": 1}}, 422, "__row_number__"),
    ("/v1/route", {"json": {"lead_id": "x", "created_at": "2026-01-01", "score": "NaN?"}}, 422, "score"),
    ("/v1/route", {"content": b"lead_id=x", "headers": {"content-type": "text/plain"}}, 415, ""),
    ("/v1/route", {"content": b"{" + b" " * 2_000_000 + b"}", "headers": {"content-type": "application/json"}}, 413,
     ""),
    ("/v1/route/batch", {"json": {"leads": []}}, 422, "leads"),
    ("/v1/route/batch", {"json": {"leads": [{"lead_id": "a", "created_at": "2026-01-01"}, {"lead_id": "b"}]}}, 422,
     "leads.1.created_at"),
    ("/v1/outcomes", {"json": {"events": [{"lead_id": "a", "event": "won", "occurred_at": "2026-01-01"}]}}, 422,
     "events.0.event"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "request_args", "status", "field"), BAD_REQUESTS)
def test_bad_input_gets_a_4xx_naming_the_field_and_the_server_keeps_serving(
    server: Server, path: str, request_args: dict[str, Any], status: int, field: str
) -> None:
    with _client(server) as client:
        response = client.post(path, **request_args)
        assert response.status_code == status, response.text
        body = response.json()
        assert body["error"]
        if field:
            assert field in [f["field"] for f in body["fields"]], body
        assert client.get("/healthz").status_code == 200
        ok = client.post("/v1/route", json={"lead_id": "after-bad", "created_at": "2026-11-27T10:00:00Z", "score": 60})
        assert ok.status_code == 200


def test_keys_are_required_owner_only_and_never_leak(server: Server) -> None:
    key = api_key(server.settings)
    key_file = server.settings.home / "api_keys"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    wrong = "wrong-" + key[::-1]
    lead = {"lead_id": "k1", "created_at": "2026-11-27T10:00:00Z"}
    seen = []
    with httpx.Client(base_url=server.url, timeout=10.0) as anonymous:
        for headers in ({}, {"Authorization": f"Bearer {wrong}"}, {"Authorization": f"Basic {key}"}):
            for method, path in (("POST", "/v1/route"), ("GET", "/v1/deployment"), ("GET", "/metrics")):
                response = anonymous.request(method, path, json=lead, headers=headers)
                assert response.status_code == 401, (path, headers)
                seen.append(response.text)
        assert anonymous.get("/healthz").status_code == 200
        # The admin key, the webhook secret and keys sent to the webhooks are never echoed either.
        admin = (server.settings.home / "admin_keys").read_text().strip()
        assert stat.S_IMODE((server.settings.home / "admin_keys").stat().st_mode) == 0o600
        for token in (key, wrong, admin):
            seen.append(anonymous.post("/v1/admin/reload", headers={"Authorization": f"Bearer {token}"}).text)
            seen.append(anonymous.get("/v1/admin/state", headers={"Authorization": f"Bearer {token}"}).text)
        hubspot_headers = {"X-HubSpot-Signature-v3": HUBSPOT_SECRET, "X-HubSpot-Request-Timestamp": "1"}
        seen.append(anonymous.post("/v1/webhooks/hubspot", json=[{"eventId": 1}], headers=hubspot_headers).text)
        soap = {"Content-Type": "text/xml"}
        seen.append(
            anonymous.post("/v1/webhooks/salesforce", params={"key": wrong}, content=b"<x/>", headers=soap).text
        )
        seen.append(anonymous.post("/v1/webhooks/salesforce", params={"key": key}, content=b"<x/>", headers=soap).text)
    with _client(server) as client:
        seen.append(client.get("/metrics").text)
        seen.append(client.post("/v1/route", json=lead).text)
    with _client(server, admin) as client:
        seen.append(client.get("/v1/admin/state").text)
        seen.append(client.post("/v1/admin/reload").text)
        seen.append(client.get("/metrics").text)
    seen.append(server.output())
    seen += [p.read_text() for p in server.settings.home.glob("*/*.jsonl")]  # decisions, outcomes, webhooks
    for text in seen:
        for secret in (key, wrong, admin, HUBSPOT_SECRET):
            assert secret not in text
    assert str(key_file) in server.output()


def test_outcomes_are_idempotent_by_event_id(server: Server) -> None:
    events = [
        {"lead_id": "api-1", "event": "meeting", "occurred_at": "2026-11-27T12:00:00Z", "event_id": "ev-1"},
        {"lead_id": "api-1", "event": "converted", "occurred_at": "2026-11-28", "value": "1200", "event_id": "ev-2"},
    ]
    with _client(server) as client:
        assert client.post("/v1/outcomes", json={"events": events}).json() == {"accepted": 2, "duplicates": 0}
        assert client.post("/v1/outcomes", json={"events": events}).json() == {"accepted": 0, "duplicates": 2}
    stored = list(read_records(server.settings.home / "outcomes", "outcomes"))
    assert [r["event_id"] for r in stored] == ["ev-1", "ev-2"] and stored[1]["value"] == 1200.0


def test_deployment_metrics_and_docs(server: Server) -> None:
    with _client(server) as client:
        live = client.get("/v1/deployment").json()
        assert live["arms"] == [{"arm": None, "policy": "seed", "policy_version": 1, "share": 1.0}]
        assert live["model"]["name"] is None
        text = client.get("/metrics").text
        assert 'leadroute_requests_total{route="/v1/route",status="200"}' in text
        assert "leadroute_request_duration_seconds_bucket" in text and 'policy="seed@1"' in text
        assert 'status="5' not in text  # no bad input above produced a server error
        assert client.get("/openapi.json").json()["paths"].keys() >= {"/v1/route", "/v1/route/batch", "/v1/outcomes"}
        assert client.get("/docs").status_code == 200


def test_outcome_log_survives_restart_dedupe(tmp_path: Path) -> None:
    """The dedupe set is rebuilt from the outcomes log (in-process, no server needed)."""
    from leadroute.serving.log import JsonLog
    from leadroute.serving.outcomes import OutcomeStore

    event = {"lead_id": "a", "event": "lost", "occurred_at": "2026-01-01", "event_id": "x"}
    first = OutcomeStore(JsonLog(tmp_path, "outcomes"))
    assert first.add([event]).accepted == 1
    first.log.close()
    second = OutcomeStore(JsonLog(tmp_path, "outcomes"))
    again = second.add([event])
    second.log.close()
    assert (again.accepted, again.duplicates) == (0, 1)


def test_coalesced_requests_get_their_own_decisions_or_rejects(server: Server, tmp_path: Path) -> None:
    """Concurrent requests validated and routed in one pass still answer each request alone."""
    from concurrent.futures import wait

    from leadroute.serving import JsonLog, RoutingService, build_deployment
    from leadroute.serving.coalesce import Coalescer

    roster = load_roster(server.settings)
    log = JsonLog(tmp_path, "decisions")
    coalescer = Coalescer(
        RoutingService(server.settings, roster, build_deployment(server.settings, roster, None, None), log)
    )
    coalescer.start()
    leads = sample_leads(server.settings, 40)
    requests = [leads[i : i + 4] for i in range(0, 40, 4)]
    requests[3] = [*requests[3][:2], {"lead_id": "bad", "created_at": "later"}]
    with ThreadPoolExecutor(10) as pool:
        futures = [pool.submit(coalescer.decide, r) for r in requests]
        wait(futures)
    coalescer.stop()
    log.close()
    for request, future in zip(requests, futures, strict=True):
        records, rejects = future.result()
        if any(lead["lead_id"] == "bad" for lead in request):
            assert records == [] and [(r.index, r.reason.split(":")[0]) for r in rejects] == [(2, "created_at")]
        else:
            assert not rejects and [r["lead_id"] for r in records] == [lead["lead_id"] for lead in request]
    assert len(list(read_records(tmp_path, "decisions"))) == 36
