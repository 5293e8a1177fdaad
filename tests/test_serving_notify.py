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

from tests.serving_support import Server, api_key, demo_workspace


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
            for _ in range(100):
                metrics = client.get("/metrics").text
                if "leadroute_notifications_sent_total 1" in metrics:
                    break
                threading.Event().wait(0.1)
    finally:
        server.stop()
    assert _Receiver.attempts == 3
    sent = _Receiver.received[0]
    assert sent["decision"]["decision_id"] == decision["decision_id"] and sent["lead"]["industry"] == "Software"
    assert "leadroute_notification_failures_total 2" in metrics
    assert "leadroute_notifications_sent_total 1" in metrics
