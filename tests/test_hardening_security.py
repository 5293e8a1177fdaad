"""Security scan of the running system: every route the endpoint publishes (read from its OpenAPI
at test time, so new routes are covered) needs a key except ``/healthz``; admin routes refuse
client keys; keys and secrets given through the environment never show in answers, metrics, the
server's output, any workspace file or the workbench; the endpoint and the workbench listen on
localhost by default. (test_serving_endpoint checks the same for keys from the key files.)"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO
from tests.hardening_support import ENTRY, cli_env, workspace_copy
from tests.serving_support import Server, free_port, sample_leads

CLIENT_KEY = "client-key-7b1e0c9d2f4a-never-echoed"
ADMIN_KEY = "admin-key-93c5aa10e8f2-never-echoed"
HUBSPOT_SECRET = "hubspot-secret-41d7e2-never-echoed"
WRONG_KEY = "wrong-key-0f9e8d7c6b5a-never-echoed"
SECRETS = (CLIENT_KEY, ADMIN_KEY, HUBSPOT_SECRET, WRONG_KEY)
PUBLIC = {"/healthz"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = workspace_copy(tmp_path_factory, tmp_path_factory.mktemp("security") / "ws", train=False)
    env = {
        "LEADROUTE_API_KEYS": CLIENT_KEY,
        "LEADROUTE_ADMIN_KEYS": ADMIN_KEY,
        "LEADROUTE_HUBSPOT_SECRET": HUBSPOT_SECRET,
    }
    running = Server(settings, extra_args=("--no-model",), env=env).start()
    yield running
    running.stop()


def operations(server: Server) -> list[tuple[str, str, dict[str, Any]]]:
    """``(method, path, operation)`` for every operation in the live OpenAPI document."""
    document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    found = [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert {path for _, path, _ in found} >= {"/v1/route", "/v1/deployment", "/metrics", "/healthz"}
    return found


def call(
    client: httpx.Client, method: str, path: str, operation: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """One request shaped like the operation wants (path parameters filled, a body of its type)."""
    url = re.sub(r"\{[^}]+\}", "x", path)
    content_types = operation.get("requestBody", {}).get("content", {})
    if any("xml" in c for c in content_types):
        return client.request(
            method, url, content=b"<x/>", headers=headers | {"Content-Type": "text/xml; charset=utf-8"}
        )
    if content_types or method in {"POST", "PUT", "PATCH"}:
        return client.request(method, url, json={}, headers=headers)
    return client.request(method, url, headers=headers)


def test_every_published_route_but_healthz_needs_a_key_and_admin_routes_an_admin_key(server: Server) -> None:
    found = operations(server)
    refused: dict[str, list[int]] = {}
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        for method, path, operation in found:
            anonymous = call(client, method, path, operation, {})
            wrong = call(client, method, path, operation, {"Authorization": f"Bearer {WRONG_KEY}"})
            basic = call(client, method, path, operation, {"Authorization": f"Basic {CLIENT_KEY}"})
            if path in PUBLIC:
                assert anonymous.status_code == 200, (method, path)
                continue
            refused[f"{method} {path}"] = [anonymous.status_code, wrong.status_code, basic.status_code]
            as_client = call(client, method, path, operation, {"Authorization": f"Bearer {CLIENT_KEY}"})
            if path.startswith("/v1/admin/"):
                assert as_client.status_code == 403, (method, path, as_client.text)
            elif path != "/v1/webhooks/hubspot":  # HubSpot signs instead: a client key is no signature
                assert as_client.status_code != 401, (method, path, as_client.text)  # the key is accepted
    assert refused and all(codes == [401, 401, 401] for codes in refused.values()), refused


def test_an_anonymous_malformed_body_is_refused_for_the_key_first(server: Server) -> None:
    json_posts = [
        path
        for method, path, operation in operations(server)
        if method == "POST" and "application/json" in operation.get("requestBody", {}).get("content", {})
        and path not in PUBLIC and path != "/v1/webhooks/hubspot"
    ]  # fmt: skip
    assert "/v1/route" in json_posts
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        statuses = {
            path: client.post(path, content=b'{"lead_id": ', headers={"Content-Type": "application/json"}).status_code
            for path in json_posts
        }
    assert set(statuses.values()) == {401}, statuses


def _scan(texts: list[str], where: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a key or secret appears in {where}"


def test_keys_from_the_environment_never_appear_in_answers_metrics_output_or_files(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers: list[str] = []
    lead = sample_leads(server.settings, 1)[0]
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        for method, path, operation in operations(server):
            for headers in (
                {"Authorization": f"Bearer {WRONG_KEY}"},
                {"Authorization": f"Bearer {CLIENT_KEY}"},
                {"Authorization": f"Bearer {ADMIN_KEY}"},
                {"X-HubSpot-Signature-v3": HUBSPOT_SECRET, "X-HubSpot-Request-Timestamp": "1"},
                {"X-Api-Key": CLIENT_KEY, "Cookie": f"key={ADMIN_KEY}"},
            ):
                response = call(client, method, path, operation, headers)
                answers.append(response.text)
                answers.append(str(response.headers))
                query = client.request(method, re.sub(r"\{[^}]+\}", "x", path), params={"key": WRONG_KEY})
                answers.append(query.text)
        routed = client.post("/v1/route", json=lead, headers={"Authorization": f"Bearer {CLIENT_KEY}"})
        assert routed.status_code == 200, routed.text
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        answers += [client.get("/metrics", headers=admin).text, client.get("/v1/admin/state", headers=admin).text]
        answers += [client.get("/openapi.json").text, client.get("/docs").text]
    _scan(answers, "an HTTP answer")
    _scan([server.output()], "the server's output")
    files = [p for p in server.settings.home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".jsonl" for p in files)
    _scan([p.read_bytes().decode("latin-1") for p in files], "a workspace file")

    # The workbench's Monitor page scrapes the endpoint with a key from the environment.
    monkeypatch.setenv("LEADROUTE_HOME", str(server.settings.home))
    monkeypatch.setenv("LEADROUTE_ENDPOINT_URL", server.url)
    for key in (CLIENT_KEY, WRONG_KEY):
        monkeypatch.setenv("LEADROUTE_API_KEY", key)
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
        at.switch_page("workbench/monitor.py").run()
        assert not at.exception
        shown = [str(getattr(e, "value", "")) for e in at.main] + [str(e) for e in at.main]
        _scan(shown, "the Monitor page")


def _listening(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(_address(address))
    return found


def _address(hex_address: str) -> str:
    if len(hex_address) == 8:
        return ".".join(str(b) for b in reversed(bytes.fromhex(hex_address)))
    return {"0" * 32: "::", "0" * 24 + "01000000": "::1"}.get(hex_address, hex_address)


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc/net/tcp")
def test_the_endpoint_and_the_workbench_listen_on_localhost_by_default(server: Server, tmp_path: Path) -> None:
    assert _listening(server.port) == {"127.0.0.1"}  # `leadroute serve` without --host
    port = free_port()
    workbench = subprocess.Popen(
        [sys.executable, "-c", ENTRY, "app", "--port", str(port)],
        env=cli_env(server.settings),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while not _listening(port):
            assert workbench.poll() is None, workbench.communicate()[0]
            assert time.monotonic() < deadline, "the workbench did not start"
            time.sleep(0.2)
        time.sleep(0.5)  # a second socket (IPv6) would show by now
        assert _listening(port) == {"127.0.0.1"}
    finally:
        workbench.send_signal(signal.SIGTERM)
        try:
            workbench.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            workbench.kill()
            workbench.communicate()
    # `make demo` starts both without --host, and the README says how to add authentication.
    demo = (REPO / "Makefile").read_text(encoding="utf-8").split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "leadroute serve" in demo and "leadroute app" in demo and "--host" not in demo
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "binds to 127.0.0.1" in readme and re.search(r"reverse proxy that\s+authenticates", readme)
