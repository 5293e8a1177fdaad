"""The endpoint's life: a deployment switch under load, ``kill -9`` under load and a restart
that restores routing state from the decision log (real uvicorn servers on 127.0.0.1)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import httpx

from leadroute.serving import read_records
from models.policy import Policy, RoutingState
from pipelines.deployments import deploy
from pipelines.policies import load_roster, resolve
from tests.serving_support import Server, api_key, demo_workspace, route_again, sample_leads


def _load(server: Server, leads: list[dict[str, Any]], stop: threading.Event, out: list[Any], n_threads: int) -> None:
    """Post leads from several threads until ``stop``; keep every answer (or transport error)."""
    headers = {"Authorization": f"Bearer {api_key(server.settings)}"}

    def worker(offset: int) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10.0) as client:
            i = offset
            while not stop.is_set():
                lead = dict(leads[i % len(leads)], lead_id=f"load-{offset}-{i}")
                try:
                    response = client.post("/v1/route", json=lead)
                    out.append((response.status_code, response.json() if response.status_code == 200 else None))
                except httpx.TransportError as exc:
                    out.append((None, repr(exc)))
                    return
                i += n_threads

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join()


def test_deployment_switch_under_load_and_kill_9_restart_restores_state(tmp_path: Path) -> None:
    settings = demo_workspace(tmp_path / "ws")
    leads = sample_leads(settings, 200)
    server = Server(settings, extra_args=("--no-model",)).start()
    try:
        stop = threading.Event()
        answers: list[Any] = []
        loader = threading.Thread(target=_load, args=(server, leads, stop, answers, 6))
        loader.start()
        while len(answers) < 60:
            stop.wait(0.05)
        deployed = deploy(settings, "round_robin", reason="test switch")
        headers = {"Authorization": f"Bearer {api_key(settings)}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10.0) as client:
            for _ in range(100):
                if client.get("/v1/deployment").json()["deployment_id"] == deployed.deployment_id:
                    break
                stop.wait(0.1)
        seen = len(answers)
        while len(answers) < seen + 60:
            stop.wait(0.05)
        # kill -9 mid-load: whatever got a 200 must already be in the log.
        server.stop(signal.SIGKILL)
        stop.set()
        loader.join()
    finally:
        server.stop(signal.SIGKILL)

    ok = [body for status, body in answers if status == 200]
    assert all(status in (200, None) for status, _ in answers), {s for s, _ in answers}
    versions = {(d["policy"], d["policy_version"]) for d in ok}
    assert versions == {("seed", 1), ("round_robin", deployed.version)}
    logged = {r["decision_id"]: r for r in read_records(settings.decision_log_dir, "decisions")}
    assert {d["decision_id"] for d in ok} <= set(logged)
    for d in ok:
        assert (logged[d["decision_id"]]["policy"], logged[d["decision_id"]]["rep_id"]) == (d["policy"], d["rep_id"])

    # Restart: state is rebuilt from the log, so the next decision is what the in-process
    # policy decides after the same history.
    restarted = Server(settings, extra_args=("--no-model",)).start()
    try:
        with httpx.Client(base_url=restarted.url, headers=headers, timeout=10.0) as client:
            nxt = client.post("/v1/route", json=dict(leads[0], lead_id="after-restart")).json()
    finally:
        restarted.stop()
    assert f"rebuilt from {len(logged):,} logged decisions ({len(logged):,} reproduced, 0 skipped)" in (
        restarted.output()
    )
    roster = load_roster(settings)
    policies = {
        name: Policy(resolve(settings, name).spec, roster, version=resolve(settings, name).version)
        for name in ("seed", "round_robin")
    }
    states = {name: RoutingState(roster.size) for name in policies}
    records = list(read_records(settings.decision_log_dir, "decisions"))
    assert records[-1]["decision_id"] == nxt["decision_id"]
    for again in route_again(records, lambda r: policies[r["policy"]], states.__getitem__):
        assert (again.team, again.rep_id) == (again.record["team"], again.record["rep_id"])
    assert nxt["policy"] == "round_robin" and nxt["rep_id"] == records[-1]["rep_id"]
