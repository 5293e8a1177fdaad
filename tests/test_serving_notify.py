"""Owner notifications: a failing local receiver is retried, and the failures show in /metrics."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.serving_support import Server, api_key, demo_workspace, metrics_once


class _Receiver(BaseHTTPRequestHandler):
    """Fails the first two posts (500), then accepts and keeps the bodies."""

    received: ClassVar[list[dict[str, Any]]] = []
    attempts: ClassVar[int] = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).attempts += 1
        ok = type(self).attempts > 2
        if ok:
            type(self).received.append(json.loads(body))
        self.send_response(200 if ok else 500)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_a_failing_receiver_is_retried_and_counted(tmp_path: Path, receiver: str) -> None:
    settings = demo_workspace(tmp_path / "ws")
    server = Server(settings, extra_args=("--no-model",), env={"LEADROUTE_NOTIFY_URL": receiver}).start()
    try:
        headers = {"Authorization": f"Bearer {api_key(settings)}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10.0) as client:
            hot = {"lead_id": "hot-1", "created_at": "2026-11-27T10:00:00Z", "score": 95, "industry": "Software"}
            decision = client.post("/v1/route", json=hot).json()
            assert decision["reasons"]["notify"] is True
            # The receiver keeps the body before it answers: wait for the sender to count it too.
            metrics = metrics_once(client, "leadroute_notifications_sent_total 1")
    finally:
        server.stop()
    assert _Receiver.attempts == 3
    sent = _Receiver.received[0]
    assert sent["decision"]["decision_id"] == decision["decision_id"] and sent["lead"]["industry"] == "Software"
    assert "leadroute_notification_failures_total 2" in metrics
    assert "leadroute_notifications_sent_total 1" in metrics


class _TeamsReceiver(BaseHTTPRequestHandler):
    """Like a Teams incoming webhook: throttling comes back as a 200 whose body names HTTP 429
    (the first post here), success as a 200 with body ``1``."""

    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        answer = b"1" if len(type(self).bodies) > 1 else b"Microsoft Teams endpoint returned HTTP error 429"
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


def test_teams_gets_an_adaptive_card_and_throttling_is_retried(tmp_path: Path) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _TeamsReceiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    settings = demo_workspace(tmp_path / "ws")
    env = {"LEADROUTE_NOTIFY_URL": f"http://127.0.0.1:{receiver.server_address[1]}/teams"}
    server = Server(settings, extra_args=("--no-model", "--notify-format", "teams"), env=env).start()
    try:
        headers = {"Authorization": f"Bearer {api_key(settings)}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10.0) as client:
            hot = {"lead_id": "hot-t", "created_at": "2026-11-27T10:00:00Z", "score": 91, "company": "Acme <Ltd>"}
            decision = client.post("/v1/route", json=hot).json()
            metrics = metrics_once(client, "leadroute_notifications_sent_total 1")
    finally:
        server.stop()
        receiver.shutdown()
        receiver.server_close()
    assert "leadroute_notification_failures_total 1" in metrics and "leadroute_notifications_sent_total 1" in metrics
    assert len(_TeamsReceiver.bodies) == 2 and _TeamsReceiver.bodies[0] == _TeamsReceiver.bodies[1]
    sent = _TeamsReceiver.bodies[1]
    assert sent["type"] == "message" and len(sent["attachments"]) == 1
    attachment = sent["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["type"] == "TextBlock" and "hot-t" in card["body"][0]["text"]
    decision_facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    lead_facts = {f["title"]: f["value"] for f in card["body"][3]["facts"]}
    assert decision_facts["decision_id"] == decision["decision_id"] and decision_facts["team"] == decision["team"]
    assert lead_facts["company"] == "Acme <Ltd>" and lead_facts["score"] == "91.0"
