"""Coalescing: single-lead requests that arrive together are validated and routed in one pass.

Routing is serialised anyway (one state), and every decision must be fsynced before it is
answered. Requests waiting together are validated, routed in arrival order with one log append
and one fsync, and each gets its own decisions (or its own rejects). A lone request is handled
at once, so coalescing adds no wait; under load it amortises the fsync.

Who does the work (group commit, leader/follower): a request thread (:meth:`Coalescer.decide`,
a sync handler in the server's thread pool) queues its job and then takes the *leader* lock
and serves what is queued — its own job first in line — itself, instead of handing it to
another thread and waiting for a wake-up; the requests that queue meanwhile are served as one
batch by the next leader. An ``async`` handler must not block the event loop with routing and
an fsync: :meth:`Coalescer.decide_async` queues its job, wakes the worker thread (which leads
the same way) and awaits the answer, without a thread-pool hop.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from leadroute.serving.records import Rejected, reserved_names, validate_indexed
from leadroute.serving.router import RoutingService

Outcome = tuple[list[dict[str, Any]], list[Rejected]]


@dataclass
class _Job:
    leads: Sequence[Mapping[str, Any]]
    done: Future[Outcome] = field(default_factory=Future)


class Coalescer:
    """Front of the routing service for concurrent requests (start before use, stop at the end;
    :meth:`decide` also works without the worker, :meth:`decide_async` needs it)."""

    def __init__(self, service: RoutingService, max_leads: int = 2000) -> None:
        self.service, self.max_leads = service, max_leads
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._wake: queue.SimpleQueue[bool] = queue.SimpleQueue()  # a token per async job; False stops
        self._leader = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="route-coalescer", daemon=True)

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._wake.put(False)
        self._worker.join(timeout=10)

    def decide(self, leads: Sequence[Mapping[str, Any]]) -> Outcome:
        """Validate and route ``leads`` (one request): its decisions, or its rejects (none routed)."""
        reserved = reserved_names(leads)
        if reserved:
            return [], reserved
        job = _Job(leads)
        self._queue.put(job)
        while not job.done.done():
            with self._leader:
                # Queued before the lock was taken: either served by an earlier leader, or in the
                # queue, where this leader's batches reach it.
                if not job.done.done():
                    self._serve_batch()
        return job.done.result()

    async def decide_async(self, leads: Sequence[Mapping[str, Any]]) -> Outcome:
        """:meth:`decide` for an ``async`` handler: awaited on the event loop, served by the worker."""
        reserved = reserved_names(leads)
        if reserved:
            return [], reserved
        job = _Job(leads)
        self._queue.put(job)
        self._wake.put(True)
        return await asyncio.wrap_future(job.done)

    def _run(self) -> None:
        while self._wake.get():
            with self._leader:
                while self._serve_batch():
                    pass

    def _serve_batch(self) -> bool:
        """Serve the jobs waiting in the queue (up to ``max_leads`` leads); False if none was."""
        jobs: list[_Job] = []
        size = 0
        while size < self.max_leads:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            jobs.append(job)
            size += len(job.leads)
        if not jobs:
            return False
        try:
            self._serve(jobs)
        except Exception as exc:  # a failure answers the waiting requests instead of hanging them
            for job in jobs:
                if not job.done.done():
                    job.done.set_exception(exc)
        return True

    def _serve(self, jobs: list[_Job]) -> None:
        rows, rejects = validate_indexed("leads", [lead for job in jobs for lead in job.leads])
        typed = dict(rows)
        accepted: list[tuple[_Job, range]] = []
        wanted: list[dict[str, Any]] = []
        offset = 0
        for job in jobs:
            span = range(offset, offset + len(job.leads))
            offset = span.stop
            mine = [Rejected(r.index - span.start, r.reason) for r in rejects if r.index in span]
            if mine:
                job.done.set_result(([], mine))  # the whole request is refused: nothing routed
                continue
            accepted.append((job, range(len(wanted), len(wanted) + len(span))))
            wanted += [typed[i] for i in span]
        records = self.service.route(wanted) if wanted else []
        for job, at in accepted:
            job.done.set_result((records[at.start : at.stop], []))
