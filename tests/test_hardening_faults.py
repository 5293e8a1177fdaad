"""Faults: ``kill -9`` in the middle of an import, a retraining cycle and a deployment switch, and a
notification receiver that is down for a while. (``kill -9`` of the endpoint under load, with
every answered decision in the log and state restored on restart, is in test_serving_lifecycle.)"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from leadroute.serving import read_records
from pipelines.deployments import live_deployment
from pipelines.registry import alias_version, load_model
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse
from tests.conftest import REPO
from tests.hardening_support import Load, cli, cli_process, leads_csv, wait_for_line, workspace_copy
from tests.serving_support import Server, api_key, sample_leads

pytestmark = pytest.mark.slow


def _state(settings: Settings) -> dict[str, Any]:
    """What an import changes: table counts, and the imports table as (entity, read, loaded) rows."""
    warehouse = Warehouse(settings.warehouse_path)
    counts = warehouse.table_counts()
    with warehouse.connect(read_only=True) as con:
        imports = con.execute(
            "SELECT import_id, entity, read, loaded, updated, rejected FROM imports ORDER BY import_id"
        ).fetchall()
    return {"leads": counts["leads"], "rejects": counts["rejects"], "imports": imports}


def test_kill_9_mid_import_leaves_the_warehouse_as_before_or_fully_updated(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    settings = workspace_copy(tmp_path_factory, tmp_path / "ws", train=False)
    n = 120_000
    big = leads_csv(tmp_path / "big.csv", n, prefix="big-", big_field=40)
    before = initial = _state(settings)
    outcomes = []
    for delay in (0.0, 0.15, 0.5):
        process = cli_process(settings, "ingest", "leads", str(big))
        seen: list[str] = []
        assert wait_for_line(process, "writing", seen), "".join(seen)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        after = _state(settings)
        if after == before:
            outcomes.append("before")
            continue
        # Fully updated: every lead in, one new import row that says so, nothing else changed.
        outcomes.append("updated")
        assert after["leads"] == before["leads"] + n
        assert after["rejects"] == before["rejects"]
        assert after["imports"][: len(before["imports"])] == before["imports"]
        (added,) = after["imports"][len(before["imports"]) :]
        assert added[1:] == ("leads", n, n, 0, 0)
        before = after
    assert "before" in outcomes, f"no kill landed inside the import's transaction: {outcomes}"

    rerun = cli(settings, "ingest", "leads", str(big), "--json")
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert summary["read"] == n and summary["rejected"] == 0
    final = _state(settings)
    assert final["leads"] == initial["leads"] + n
    assert final["imports"][-1][1:3] == ("leads", n)


def _registry_is_consistent(settings: Settings) -> dict[str, int]:
    """Every alias of both models points at a version whose model loads; the champions by name."""
    champions = {}
    for name in ("lead-score", "lead-fit"):
        for alias in ("champion", "challenger"):
            version = alias_version(settings, name, alias)
            assert version is not None, (name, alias)
            load_model(settings, name, alias)
        champions[name] = alias_version(settings, name, "champion") or 0
    return champions


def test_kill_9_during_retraining_keeps_a_loadable_champion(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    settings = workspace_copy(tmp_path_factory, tmp_path / "ws", train=True)
    _registry_is_consistent(settings)
    # While the challenger is being logged and registered in MLflow (the registry is not touched
    # while it is fitted).
    process = cli_process(settings, "retrain")
    seen: list[str] = []
    assert wait_for_line(process, "logging lead-score to MLflow", seen), "".join(seen)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(seen)  # killed, not finished
    _registry_is_consistent(settings)
    # And the next cycle runs to the end.
    cycle = cli(settings, "retrain", "--json")
    assert cycle.returncode == 0, cycle.stderr
    result = json.loads(cycle.stdout.strip().splitlines()[-1])
    champions = _registry_is_consistent(settings)
    for name, model in result["models"].items():
        assert champions[name] == (model["version"] if model["promoted"] else model["champion_version"])


DEPLOYER = """
import sys
from pathlib import Path
from pipelines.deployments import deploy
from pipelines.settings import Settings
settings = Settings(home=Path(sys.argv[1]))
i = 0
while True:
    deployed = deploy(settings, ("round_robin", "seed")[i % 2], reason=f"switch {i}")
    print(deployed.deployment_id, flush=True)
    i += 1
"""


def test_kill_9_during_a_deployment_switch_never_leaves_the_endpoint_without_a_version(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    settings = workspace_copy(tmp_path_factory, tmp_path / "ws", train=False)
    server = Server(settings, extra_args=("--no-model", "--reload-interval", "0.1")).start()
    load = Load(server, sample_leads(settings, 100), n_threads=2, tag="deploy")
    views: list[tuple[int, Any]] = []
    stop = threading.Event()

    def watch() -> None:
        headers = {"Authorization": f"Bearer {api_key(settings)}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as client:
            while not stop.is_set():
                response = client.get("/v1/deployment")
                views.append((response.status_code, response.json()))
                stop.wait(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    try:
        load.start()
        watcher.start()
        # Two deployer processes, each killed -9 at a different point of its switching loop.
        for switches in (3, 6):
            deployer = subprocess.Popen(
                [sys.executable, "-c", DEPLOYER, str(settings.home)], cwd=REPO, stdout=subprocess.PIPE, text=True
            )
            assert deployer.stdout is not None
            for _ in range(switches):
                assert deployer.stdout.readline().strip().isdigit()
            time.sleep(0.05 * switches)
            deployer.send_signal(signal.SIGKILL)
            deployer.communicate(timeout=60)
        # The workspace still has exactly one live deployment, and the endpoint picks it up.
        live = live_deployment(settings)
        assert live is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not views or views[-1][1].get("deployment_id") != live[0]):
            time.sleep(0.1)
        assert views[-1][1]["deployment_id"] == live[0]
        seen, deadline = len(load.answers), time.monotonic() + 30
        while len(load.answers) < seen + 10 and time.monotonic() < deadline:  # routing goes on after it
            time.sleep(0.05)
        assert len(load.answers) >= seen + 10
    finally:
        stop.set()
        watcher.join(timeout=30)
        load.stop()
        server.stop()

    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM deployments WHERE status = 'live'").fetchall()[0][0] == 1
    assert views and all(status == 200 for status, _ in views), {s for s, _ in views}
    for _, body in views:
        assert [(a["policy"], a["share"]) for a in body["arms"]] in ([("seed", 1.0)], [("round_robin", 1.0)]), body
    assert len({body["deployment_id"] for _, body in views}) > 2  # the endpoint really saw switches
    assert load.failures() == []
    assert {d["policy"] for d in load.ok()} == {"seed", "round_robin"}


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        type(self).received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver_port() -> Iterator[socket.socket]:
    """A port held bound but not listening (connections are refused, and no other process can
    take it while the receiver is down); close it just before the receiver binds it."""
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        yield reserved
    _Receiver.received.clear()


def _metric(text: str, name: str) -> float:
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(f"{name} ")]
    return values[0] if values else 0.0


def test_a_receiver_down_for_a_while_gets_every_notification_exactly_once(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, receiver_port: socket.socket
) -> None:
    settings = workspace_copy(tmp_path_factory, tmp_path / "ws", train=False)
    port = int(receiver_port.getsockname()[1])
    env = {"LEADROUTE_NOTIFY_URL": f"http://127.0.0.1:{port}/hook"}
    hot = [dict(lead, score=95.0) for lead in sample_leads(settings, 12)]
    wanted: set[str] = set()

    def route(server: Server, leads: list[dict[str, Any]]) -> None:
        headers = {"Authorization": f"Bearer {api_key(settings)}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as client:
            answer = client.post("/v1/route/batch", json={"leads": leads})
            assert answer.status_code == 200, answer.text
            wanted.update(d["decision_id"] for d in answer.json()["decisions"] if d["reasons"].get("notify"))

    # The receiver is down: the first endpoint routes, fails to deliver, and is killed.
    first = Server(settings, extra_args=("--no-model",), env=env).start()
    headers = {"Authorization": f"Bearer {api_key(settings)}"}
    try:
        route(first, hot[:6])
        with httpx.Client(base_url=first.url, headers=headers, timeout=30.0) as client:
            deadline = time.monotonic() + 30
            while _metric(client.get("/metrics").text, "leadroute_notification_failures_total") < 3:
                assert time.monotonic() < deadline, "the sender never tried the receiver"
                time.sleep(0.1)
    finally:
        first.stop(signal.SIGKILL)
    # A second endpoint takes the pending ones over from the log, and routes more while it is down.
    second = Server(settings, extra_args=("--no-model",), env=env).start()
    try:
        route(second, hot[6:])
        assert len(wanted) >= 6, "the seed policy should notify the owners of hot leads"
        time.sleep(1.0)
        assert _Receiver.received == []
        receiver_port.close()
        receiver = ThreadingHTTPServer(("127.0.0.1", port), _Receiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        try:
            with httpx.Client(base_url=second.url, headers=headers, timeout=30.0) as client:
                deadline = time.monotonic() + 60
                while _metric(client.get("/metrics").text, "leadroute_notifications_sent_total") < len(wanted):
                    assert time.monotonic() < deadline, f"{len(_Receiver.received)} of {len(wanted)} delivered"
                    time.sleep(0.1)
                time.sleep(1.0)  # nothing more may arrive
        finally:
            receiver.shutdown()
            receiver.server_close()
    finally:
        second.stop()
    delivered = [message["decision"]["decision_id"] for message in _Receiver.received]
    assert sorted(delivered) == sorted(wanted)  # every one, each exactly once
    sent = {r["decision_id"] for r in read_records(settings.home / "notifications", "sent")}
    assert sent == wanted
