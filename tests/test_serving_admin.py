"""Admin keys and admin routes (reload now, routing state) against a real uvicorn server."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadroute.serving import load_keys, read_records
from leadroute.serving.keys import load_admin_keys
from models.policy import Policy, RoutingState
from pipelines.deployments import deploy
from pipelines.logfiles import log_files
from pipelines.policies import load_roster, resolve
from tests.serving_support import Server, api_key, demo_workspace, route_again, sample_leads


def admin_key(server: Server) -> str:
    return (server.settings.home / "admin_keys").read_text().strip()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = demo_workspace(tmp_path_factory.mktemp("admin") / "ws")
    # No poller: only POST /v1/admin/reload picks up a new deployment.
    running = Server(settings, extra_args=("--no-model", "--reload-interval", "0")).start()
    yield running
    running.stop()


def test_admin_keys_from_env_or_an_owner_only_file(tmp_path: Path) -> None:
    ring = load_admin_keys(tmp_path, {"LEADROUTE_ADMIN_KEYS": "adm1,adm2", "LEADROUTE_API_KEYS": "c1"})
    assert ring.source == "env" and ring.accepts("Bearer adm2") and not ring.accepts("Bearer c1")
    made = load_admin_keys(tmp_path / "ws", {})
    assert stat.S_IMODE(Path(made.source).stat().st_mode) == 0o600 and made.source.endswith("admin_keys")
    assert made.keys != load_keys(tmp_path / "ws", {}).keys  # two files, two different keys
    assert "keys=" not in repr(made)


def test_admin_routes_need_an_admin_key_and_admin_keys_work_on_client_routes(server: Server) -> None:
    client_key, admin = api_key(server.settings), admin_key(server)
    lead = {"lead_id": "adm-1", "created_at": datetime.now(UTC).isoformat(), "score": 50}
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        for method, path in (("GET", "/v1/admin/state"), ("POST", "/v1/admin/reload")):
            assert http.request(method, path).status_code == 401
            wrong = http.request(method, path, headers={"Authorization": "Bearer not-a-key"})
            assert wrong.status_code == 401
            as_client = http.request(method, path, headers={"Authorization": f"Bearer {client_key}"})
            assert as_client.status_code == 403 and as_client.json()["error"] == "this route needs an admin key"
            assert http.request(method, path, headers={"Authorization": f"Bearer {admin}"}).status_code == 200
        routed = http.post("/v1/route", json=lead, headers={"Authorization": f"Bearer {admin}"})
        assert routed.status_code == 200, routed.text
        assert "admin keys: from the key file" in server.output()


def _replayed_state(server: Server, name: str) -> RoutingState:
    source = resolve(server.settings, name)
    policy = Policy(source.spec, load_roster(server.settings), version=source.version)
    state = RoutingState(policy.roster.size)
    records = [r for r in read_records(server.settings.decision_log_dir, "decisions") if r["policy"] == name]
    route_again(records, lambda _: policy, lambda _: state)
    return state


def test_state_shows_the_pointers_and_todays_capacity_use(server: Server) -> None:
    # Today, in working hours for most reps (capacity counts by the lead's UTC day).
    when = f"{datetime.now(UTC).date().isoformat()}T15:00:00Z"
    leads = [
        dict(lead, created_at=when, score=90 if i % 2 else 20)  # hot and cold: both rotate over reps
        for i, lead in enumerate(sample_leads(server.settings, 40, offset=100))
    ]
    headers = {"Authorization": f"Bearer {admin_key(server)}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as http:
        assert http.post("/v1/route/batch", json={"leads": leads}).status_code == 200
        state: dict[str, Any] = http.get("/v1/admin/state").json()
    expected = _replayed_state(server, "seed")
    seed = next(p for p in state["policies"] if p["policy"] == "seed@1")
    day = (date.fromisoformat(state["today"]) - date(1970, 1, 1)).days
    reps = [str(r) for r in load_roster(server.settings).rep_id]
    used = {c["rep_id"]: c["used"] for c in seed["capacity_today"]}
    assert used == dict(zip(reps, expected.load(day).tolist(), strict=True)) and sum(used.values()) > 0
    assert {p["destination"] for p in seed["round_robin"]} == set(expected.passes)
    for pointers in seed["round_robin"]:
        values = expected.passes[pointers["destination"]]
        assert pointers["passes"] == {reps[i]: pytest.approx(v) for i, v in enumerate(values) if v > 0}
    files = log_files(server.settings.decision_log_dir, "decisions")
    assert state["decision_log"] == {
        "files": len(files),
        "current_file": files[-1].name,
        "bytes": files[-1].stat().st_size,
    }
    assert state["outbox"] == {"configured": False, "format": None, "pending": 0}


def test_reload_picks_up_a_new_deployment_at_once(server: Server) -> None:
    headers = {"Authorization": f"Bearer {admin_key(server)}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as http:
        before = http.get("/v1/deployment").json()
        reloads = _counter(http.get("/metrics").text, "leadroute_admin_reloads_total")
        deployed = deploy(server.settings, "round_robin", reason="admin reload test")
        # No poller runs: without the reload the old deployment stays live.
        assert http.get("/v1/deployment").json() == before
        reloaded = http.post("/v1/admin/reload")
        assert reloaded.status_code == 200, reloaded.text
        body = reloaded.json()
        assert body["previous_deployment_id"] == before["deployment_id"]
        assert body["deployment"]["deployment_id"] == deployed.deployment_id
        assert body["deployment"]["arms"][0]["policy"] == "round_robin"
        lead = {"lead_id": "after-reload", "created_at": datetime.now(UTC).isoformat(), "score": 40}
        assert http.post("/v1/route", json=lead).json()["policy"] == "round_robin"
        assert _counter(http.get("/metrics").text, "leadroute_admin_reloads_total") == reloads + 1


def _counter(text: str, name: str) -> float:
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(f"{name} ")]
    return values[0] if values else 0.0
