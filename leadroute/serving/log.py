"""Append-only JSON-lines logs that are durable before an answer is sent.

Each record is one line of JSON in ``<dir>/<prefix>-<YYYYMMDD>-<n>.jsonl``. DuckDB reads the
folder directly (``read_json_auto('<dir>/*.jsonl')``), so the endpoint never needs to hold the
warehouse open. Files rotate by size and by UTC day; a process always starts a new file, so a
torn last line left by a crash (never fsynced, so never answered) is cut from the old file at
start-up and cannot make a later append unreadable.

Durability is group commit: writers append under a lock and get a ticket; :meth:`JsonLog.sync`
writes out and fsyncs once for every ticket appended so far, so concurrent requests share one
write and one fsync. (A record is visible to readers of the file once it is synced.)
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import polars as pl
import pydantic_core

from pipelines.logfiles import LOG_NAME as _NAME
from pipelines.logfiles import log_files as log_files

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_BUFFER_BYTES = 1024 * 1024  # appends between two syncs (a batch of 1,000 decisions is ~0.7 MB)
# An append needs its data and the file's new size on disk, which fdatasync covers without also
# writing the timestamps (measured ~6% more decisions per second here); fsync where it is missing.
_datasync = getattr(os, "fdatasync", os.fsync)


def read_records(directory: Path, prefix: str) -> Iterator[dict[str, Any]]:
    """Every complete record, in write order (a torn last line is skipped)."""
    for path in log_files(directory, prefix):
        with path.open("rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # torn tail: never fsynced, so never acknowledged
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    yield record


def _cut_torn_tail(path: Path) -> None:
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end != len(data):
        with path.open("r+b") as handle:
            handle.truncate(end)
            os.fsync(handle.fileno())


class JsonLog:
    """One append-only log (decisions or outcomes) owned by this process.

    Args:
        directory: where the files live (created if missing).
        prefix: the file name prefix (``decisions``, ``outcomes``).
        max_bytes: rotate when a file grows past this size.
        fsync: set False only in benchmarks that measure the cost of durability.
        on_sync: told how long each fsync took (seconds), e.g. for a histogram in /metrics.
    """

    def __init__(
        self,
        directory: Path,
        prefix: str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        fsync: bool = True,
        on_sync: Callable[[float], None] | None = None,
    ) -> None:
        self.directory, self.prefix, self.max_bytes, self.fsync = directory, prefix, max_bytes, fsync
        self.on_sync = on_sync
        directory.mkdir(parents=True, exist_ok=True)
        existing = log_files(directory, prefix)
        if existing:
            _cut_torn_tail(existing[-1])
        self._n = max((int(m["n"]) for p in existing if (m := _NAME.match(p.name))), default=0)
        self._write_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._handle: IO[bytes] | None = None
        self._day = ""
        self._day_ends = 0.0  # the epoch second the current file's UTC day ends
        self._size = 0  # bytes in the current file
        self._written = 0  # tickets handed out
        self._synced = 0  # tickets known to be on disk

    def append(self, records: Sequence[dict[str, Any]]) -> int:
        """Write ``records`` (not yet durable); returns the ticket to pass to :meth:`sync`."""
        # pydantic-core's encoder: the same JSON as json.dumps, several times faster (it is on
        # every request's path); anything it cannot encode is written as its str().
        return self.append_lines(b"".join(pydantic_core.to_json(r, fallback=str) + b"\n" for r in records))

    def append_lines(self, data: bytes) -> int:
        """:meth:`append` for records already encoded: JSON objects, each ending with a newline."""
        with self._write_lock:
            handle = self._current(len(data))
            handle.write(data)
            self._appended(handle)
            return self._written

    def _appended(self, handle: IO[bytes]) -> None:
        # With fsync, what is appended waits in the file's buffer until the next sync writes it
        # out (one write for every append since): an append is then no system call on the
        # caller's path. Without fsync nobody may sync, so it goes into the OS at once.
        if not self.fsync:
            handle.flush()
        self._written += 1

    def append_encoded(self, lines: pl.Series) -> int:
        """:meth:`append_lines` for a column of encoded records (one JSON object each, without
        newlines), written straight from the column: no joined copy of the batch in Python."""
        if lines.null_count():
            raise ValueError("a record to log is missing")
        size = int(lines.str.len_bytes().sum()) + lines.len()
        with self._write_lock:
            handle = self._current(size)
            # One text column, never quoted: each value as it is, then a newline.
            lines.to_frame().write_csv(handle, include_header=False, quote_style="never")
            self._appended(handle)
            return self._written

    def sync(self, ticket: int) -> None:
        """Return once everything up to ``ticket`` is on disk (one fsync serves many waiters)."""
        if not self.fsync:
            return
        with self._sync_lock:
            if self._synced >= ticket:
                return  # another thread's fsync already covered this write
            with self._write_lock:
                target, handle = self._written, self._handle
                if handle is not None:
                    handle.flush()  # every append so far, in one write
            if handle is not None:
                started = time.perf_counter()
                _datasync(handle.fileno())
                if self.on_sync is not None:
                    self.on_sync(time.perf_counter() - started)
            self._synced = target

    def synced(self, ticket: int) -> bool:
        """Whether everything up to ``ticket`` is known to be on disk (always, without fsync)."""
        return not self.fsync or self._synced >= ticket

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        """Append and wait until durable."""
        self.sync(self.append(records))

    def close(self) -> None:
        with self._write_lock:
            self._close_current()

    def _current(self, incoming: int) -> IO[bytes]:
        handle = self._handle
        if handle is not None and time.time() < self._day_ends and self._size + incoming <= self.max_bytes:
            self._size += incoming
            return handle
        now = datetime.now(UTC)
        day = now.strftime("%Y%m%d")
        if handle is not None and (day != self._day or self._size + incoming > self.max_bytes):
            self._close_current()
            handle = None
        if handle is None:
            self._n += 1
            path = self.directory / f"{self.prefix}-{day}-{self._n:06d}.jsonl"
            handle = path.open("ab", buffering=_BUFFER_BYTES)
            self._handle, self._day, self._size = handle, day, handle.tell()
            _sync_directory(self.directory)  # the new file's name survives a crash too
        midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        self._day_ends = midnight.timestamp()
        self._size += incoming
        return handle

    def _close_current(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            if self.fsync:
                _datasync(self._handle.fileno())
            self._handle.close()
            self._handle = None


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Durability:
    """Group commit for an event loop: a request awaits its ticket, one thread fsyncs for every
    request waiting and wakes the loop once per fsync (not once per request, as handing each
    request to a thread and back would).

    Args:
        log: the log whose appends are awaited.
    """

    def __init__(self, log: JsonLog) -> None:
        self.log = log
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"{log.prefix}-fsync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=10)

    async def wait(self, ticket: int) -> None:
        """Return once everything up to ``ticket`` is on disk (raises the fsync's error)."""
        if self.log.synced(ticket):
            return
        future = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiting.append((ticket, future))
        self._wake.set()
        await future

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()  # a request that queues from here on sets it again
            with self._lock:
                waiting, self._waiting = self._waiting, []
            if not waiting:
                if self._stopping:
                    return
                continue
            error: OSError | None = None
            try:
                self.log.sync(max(ticket for ticket, _ in waiting))
            except OSError as exc:
                error = exc
            waiting[0][1].get_loop().call_soon_threadsafe(_settle, waiting, error)


def _settle(waiting: list[tuple[int, asyncio.Future[None]]], error: OSError | None) -> None:
    for _, future in waiting:
        if future.done():  # the request went away (its client disconnected)
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
