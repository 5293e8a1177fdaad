"""Owner notifications from a durable outbox: the decision log itself.

A decision whose rule says ``notify`` is already durable in the decision log before the lead is
answered, so the log is the outbox: what is pending is every such decision without a ``sent``
record in ``<home>/notifications``. A sender thread posts each one (generic JSON, a Slack
incoming-webhook message with blocks, or a Microsoft Teams message with an Adaptive Card) through
httpx with a timeout, retries failures with exponential backoff, and counts sends and failures
in ``/metrics``. Routing only enqueues, so a slow or failing receiver never delays a decision;
delivery is at least once (a pending notification older than ``max_age_s`` is not sent after a
restart).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx

from leadroute.serving.log import JsonLog, read_records
from leadroute.serving.metrics import Metrics
from leadroute.serving.router import DECISIONS

NotifyFormat = Literal["json", "slack", "teams"]
NOTIFY_FORMATS: tuple[NotifyFormat, ...] = ("json", "slack", "teams")
SENT = "sent"


def message(record: dict[str, Any], fmt: NotifyFormat) -> dict[str, Any]:
    """The notification body for one decision (all lead info included)."""
    owner = record.get("rep_id") or f"the {record.get('team')} team"
    lead = record.get("lead") or {}
    # SLA reminders and stuck-lead alerts carry their own text; a decision gets the new-lead line.
    text = str(record.get("text") or "") or (
        f"New lead {record.get('lead_id')} for {owner} (score {record.get('score')}, rule {record.get('rule')})"
    )
    if fmt == "slack":
        details = "\n".join(f"*{k}*: {v}" for k, v in lead.items() if v is not None)
        return {
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "section", "text": {"type": "mrkdwn", "text": details or "(no details)"}},
            ],
        }
    keys = ("decision_id", "lead_id", "team", "rep_id", "action", "score", "policy", "policy_version")
    if fmt == "teams":
        return _teams_card(text, {k: record.get(k) for k in keys}, lead)
    return {"text": text, "decision": {k: record.get(k) for k in keys}, "lead": lead}


def _teams_card(title: str, decision: dict[str, Any], lead: dict[str, Any]) -> dict[str, Any]:
    """A Teams incoming-webhook message: one Adaptive Card 1.4 with the decision and lead facts."""

    def facts(values: dict[str, Any]) -> list[dict[str, str]]:
        return [{"title": str(k), "value": str(v)} for k, v in values.items() if v is not None]

    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True},
            {"type": "FactSet", "facts": facts(decision)},
            {"type": "TextBlock", "text": "Lead", "weight": "Bolder", "wrap": True, "spacing": "Medium"},
            {"type": "FactSet", "facts": facts(lead) or [{"title": "details", "value": "(none)"}]},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


class Outbox:
    """Pending notifications and the thread that sends them (start before use, stop at the end)."""

    def __init__(
        self,
        home: Path,
        decision_dir: Path,
        url: str,
        metrics: Metrics,
        *,
        fmt: NotifyFormat = "json",
        timeout_s: float = 5.0,
        max_backoff_s: float = 60.0,
        max_age_s: float = 86_400.0,
    ) -> None:
        self.url, self.fmt, self.metrics, self.max_backoff_s = url, fmt, metrics, max_backoff_s
        self._sent_log = JsonLog(home / "notifications", SENT)
        sent = {str(r["decision_id"]) for r in read_records(home / "notifications", SENT)}
        self._heap: list[tuple[float, int, int, dict[str, Any]]] = []
        self._order = itertools.count()
        self._cv = threading.Condition()
        self._stop = False
        self._client = httpx.Client(timeout=timeout_s)
        self._thread = threading.Thread(target=self._run, name="notification-sender", daemon=True)
        # Older unsent decisions are stale news (e.g. from before notifications were configured).
        since = (datetime.now(UTC) - timedelta(seconds=max_age_s)).isoformat()
        self.enqueue(
            [
                r
                for r in read_records(decision_dir, DECISIONS)
                if str(r.get("decision_id")) not in sent and str(r.get("decided_at", "")) >= since
            ]
        )

    def enqueue(self, records: Sequence[dict[str, Any]]) -> None:
        """Queue every decision that asks for a notification (never blocks on the network)."""
        wanted = [r for r in records if r.get("notify")]
        if not wanted:
            return
        with self._cv:
            for record in wanted:
                heapq.heappush(self._heap, (0.0, next(self._order), 0, record))
            self._cv.notify()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout=10)
        self._client.close()
        self._sent_log.close()

    def pending(self) -> int:
        with self._cv:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stop and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cv.wait(None if not self._heap else max(0.0, self._heap[0][0] - time.monotonic()))
                if self._stop:
                    return
                _, _, attempt, record = heapq.heappop(self._heap)
            if self._send(record):
                self._sent_log.write([{"decision_id": record["decision_id"], "sent_at": datetime.now(UTC).isoformat()}])
                self.metrics.inc("leadroute_notifications_sent_total", "Owner notifications delivered.")
                continue
            self.metrics.inc("leadroute_notification_failures_total", "Failed notification attempts (retried).")
            delay = min(self.max_backoff_s, 0.2 * 2**attempt)
            with self._cv:
                heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), attempt + 1, record))

    def _send(self, record: dict[str, Any]) -> bool:
        try:
            response = self._client.post(self.url, json=message(record, self.fmt))
        except httpx.HTTPError:
            return False
        if self.fmt == "teams" and "HTTP error 429" in response.text[:500]:
            return False  # Teams reports throttling in a 200 body, not as a 429 status: retry
        return response.is_success
