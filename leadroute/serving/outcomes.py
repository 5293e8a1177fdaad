"""Outcome events taken back over HTTP: validated like ingest, logged durably, idempotent by
``event_id`` (the set of seen ids is rebuilt from the log at start-up)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from leadroute.serving.log import JsonLog, read_records
from leadroute.serving.records import Rejected, jsonable, validate_records

OUTCOMES = "outcomes"


@dataclass(frozen=True)
class Accepted:
    """What a batch of events did: stored now, already seen (by ``event_id``), rejected."""

    accepted: int
    duplicates: int
    rejected: list[Rejected]


class OutcomeStore:
    """The outcomes log plus its dedupe set."""

    def __init__(self, log: JsonLog) -> None:
        self.log = log
        self._seen = {str(r["event_id"]) for r in read_records(log.directory, OUTCOMES) if r.get("event_id")}
        self._lock = threading.Lock()

    def add(self, events: Sequence[Mapping[str, Any]]) -> Accepted:
        """Validate; store every valid event not seen before (all or nothing if any is invalid)."""
        rows, rejects = validate_records("outcomes", events)
        if rejects:
            return Accepted(0, 0, rejects)
        now = datetime.now(UTC).isoformat()
        fresh, duplicates = [], 0
        with self._lock:
            for row in rows:
                event_id = row.get("event_id")
                if event_id is not None and event_id in self._seen:
                    duplicates += 1
                    continue
                if event_id is not None:
                    self._seen.add(str(event_id))
                fresh.append(jsonable(row) | {"received_at": now})
            # Appended under the lock so a concurrent retry of the same event_id cannot slip in
            # between the check and the write.
            ticket = self.log.append(fresh) if fresh else 0
        self.log.sync(ticket)
        return Accepted(len(fresh), duplicates, [])
