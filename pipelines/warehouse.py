"""The DuckDB warehouse: one file per workspace, opened briefly, migrated forward on open.

DuckDB lets one process write a database file at a time, and a writer blocks every other
process from opening it. So connections here are short-lived (a context manager that opens,
does one piece of work and closes), and opening retries with backoff while another leadroute
process holds the file: a user sees "busy, waited N s" only after the timeout, never a raw
lock error.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipelines.migrations import LATEST_VERSION, MIGRATIONS

_LOCK_MESSAGE = re.compile(r"Could not set lock|Conflicting lock|database is locked", re.IGNORECASE)

TABLES = (
    "leads",
    "outcomes",
    "reps",
    "teams",
    "accounts",
    "decisions",
    "rep_absences",
    "policies",
    "deployments",
    "experiments",
    "imports",
    "rejects",
)


class WarehouseBusyError(RuntimeError):
    """Another process kept the warehouse for longer than the wait allowed."""


class SchemaTooNewError(RuntimeError):
    """The workspace was written by a newer leadroute than this one."""


@dataclass(frozen=True)
class Warehouse:
    """A handle on the workspace's DuckDB file (cheap to create; holds no connection)."""

    path: Path
    busy_timeout_s: float = 60.0

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open, migrate if needed (writers only), yield, close.

        Args:
            read_only: open without the write lock, so several readers in several processes
                can share the file. A read-only open of a missing or outdated file fails.
        """
        con = self._open(read_only=read_only)
        try:
            con.execute("SET TimeZone = 'UTC'")
            if read_only:
                _check_version(con, writable=False)
            else:
                migrate(con)
            yield con
        finally:
            con.close()

    def _open(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise FileNotFoundError(f"no warehouse at {self.path}: import data or run `leadroute demo` first")
        deadline = time.monotonic() + self.busy_timeout_s
        delay = 0.02
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:
                if not _LOCK_MESSAGE.search(str(exc)):
                    raise
                if time.monotonic() >= deadline:
                    raise WarehouseBusyError(
                        f"the warehouse {self.path.name} is busy: another leadroute process kept it for"
                        f" {self.busy_timeout_s:.0f} s; try again when it has finished"
                    ) from None
                time.sleep(delay * (0.5 + random.random()))  # noqa: S311 (jitter, not crypto)
                delay = min(delay * 2, 0.5)

    def table_counts(self) -> dict[str, int]:
        """Rows per warehouse table."""
        with self.connect() as con:
            return {t: int(scalar(con, f'SELECT count(*) FROM "{t}"')) for t in TABLES}


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = scalar(
        con,
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'",
    )
    if not exists:
        return 0
    return int(scalar(con, "SELECT coalesce(max(version), 0) FROM schema_migrations"))


def migrate(con: duckdb.DuckDBPyConnection, *, target: int = LATEST_VERSION) -> int:
    """Apply the missing migrations up to ``target``; returns the version now in force."""
    current = _check_version(con, writable=True)
    if current >= target:
        return current
    con.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, description VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL
        )"""
    )
    for migration in MIGRATIONS:
        if migration.version <= current or migration.version > target:
            continue
        con.begin()
        try:
            for statement in migration.statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, now())",
                [migration.version, migration.description],
            )
            con.commit()
        except Exception:
            con.rollback()
            raise
        current = migration.version
    return current


def _check_version(con: duckdb.DuckDBPyConnection, *, writable: bool) -> int:
    current = schema_version(con)
    if current > LATEST_VERSION:
        raise SchemaTooNewError(
            f"the workspace has schema v{current}, newer than this leadroute understands"
            f" (v{LATEST_VERSION}); upgrade leadroute"
        )
    if not writable and current < LATEST_VERSION:
        raise SchemaTooNewError(
            f"the workspace has schema v{current}; open it once read-write to migrate to v{LATEST_VERSION}"
        )
    return current


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> Any:
    """The first value of a query's result (the result is drained: DuckDB 2 blocks the
    connection while a result is unfinished)."""
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0][0] if rows else None


def query_frame(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> pl.DataFrame:
    """A query's result as a polars frame (parameters bound, never formatted in)."""
    frame: pl.DataFrame = con.sql(sql, params=list(params)).pl()
    return frame
