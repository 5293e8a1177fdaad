"""Load the endpoint's JSON-lines logs (decisions, outcomes) into the warehouse.

The endpoint never holds the warehouse open: it appends to its own fsynced logs. This stage
brings them home so KPIs, evaluation, experiments and rollouts see live traffic next to history.
It goes through :func:`pipelines.ingest.ingest_frame` — the same validation and key-based
idempotence as a file import: the lead each decision routed (``leads``), the decision itself
(``decisions``, by ``decision_id``) and outcome events (``outcomes``, by ``event_id``); an
outcome for a lead the warehouse does not know lands in ``rejects`` with its reason.

Log files are append-only, so each file's loaded byte offset is kept in
``endpoint_log_offsets`` and only whole lines after it are read next time. The offsets move
after the rows are in: a crash in between re-reads lines that the keys then deduplicate.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from models.canonical import raw_text
from pipelines.ingest import EntityCounts, ingest_frame
from pipelines.logfiles import log_files, read_new_lines
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse

DECISIONS, OUTCOMES = "decisions", "outcomes"
# Decision fields kept as their own columns; the rest of a logged decision goes to ``extra``.
_NOT_LOADED = frozenset({"lead"})


@dataclass(frozen=True)
class LogLoad:
    """What one load did, per warehouse table (counts add up as in an import)."""

    leads: EntityCounts | None
    decisions: EntityCounts | None
    outcomes: EntityCounts | None
    lines: int

    def to_json(self) -> dict[str, Any]:
        def counts(c: EntityCounts | None) -> dict[str, int]:
            if c is None:
                return {"read": 0, "loaded": 0, "updated": 0, "rejected": 0}
            return {"read": c.read, "loaded": c.loaded, "updated": c.updated, "rejected": c.rejected}

        return {
            "lines": self.lines,
            "leads": counts(self.leads),
            "decisions": counts(self.decisions),
            "outcomes": counts(self.outcomes),
        }


def outcome_log_dir(settings: Settings) -> Path:
    """Where the endpoint appends outcome events."""
    return settings.home / OUTCOMES


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    data = {c: [raw_text(r.get(c)) for r in rows] for c in columns}
    return pl.DataFrame(data, schema=dict.fromkeys(columns, pl.String))


def _read(settings: Settings, offsets: dict[str, int]) -> Iterator[tuple[str, str, list[dict[str, Any]], int]]:
    for prefix, directory in ((DECISIONS, settings.decision_log_dir), (OUTCOMES, outcome_log_dir(settings))):
        for path in log_files(directory, prefix):
            key = f"{prefix}/{path.name}"
            records, end = read_new_lines(path, offsets.get(key, 0))
            if end != offsets.get(key, 0):
                yield prefix, key, records, end


def load_endpoint_logs(settings: Settings) -> LogLoad:
    """Bring every new line of the endpoint's logs into the warehouse (idempotent)."""
    warehouse = Warehouse(settings.warehouse_path)
    with warehouse.connect() as con:
        offsets = {str(f): int(b) for f, b in con.execute("SELECT file, bytes FROM endpoint_log_offsets").fetchall()}
    decisions: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any]] = []
    moved: dict[str, int] = {}
    for prefix, key, records, end in _read(settings, offsets):
        (decisions if prefix == DECISIONS else outcomes).extend(records)
        moved[key] = end
    leads = [r["lead"] for r in decisions if isinstance(r.get("lead"), dict) and r["lead"].get("lead_id")]
    loaded_leads = ingest_frame(warehouse, "leads", _frame(leads), label="endpoint decision log") if leads else None
    loaded_decisions = (
        ingest_frame(
            warehouse,
            "decisions",
            _frame([{k: v for k, v in r.items() if k not in _NOT_LOADED} for r in decisions]),
            label="endpoint decision log",
        )
        if decisions
        else None
    )
    loaded_outcomes = (
        ingest_frame(warehouse, "outcomes", _frame(outcomes), label="endpoint outcome log") if outcomes else None
    )
    if moved:
        now = datetime.now(UTC)
        with warehouse.connect() as con:
            con.executemany(
                "INSERT OR REPLACE INTO endpoint_log_offsets (file, bytes, loaded_at) VALUES (?, ?, ?)",
                [[k, v, now] for k, v in moved.items()],
            )
    return LogLoad(loaded_leads, loaded_decisions, loaded_outcomes, len(decisions) + len(outcomes))
