"""Run retraining cycles on a cron expression, with an injectable clock (tests never sleep).

APScheduler computes the fire times (its ``CronTrigger`` is the well-kept cron parser); the loop
itself is ours so that time is injected: a ``Clock`` says what time it is and how to wait.
A failing cycle is reported and the schedule goes on — one bad night must not stop retraining.

The cron/systemd alternative (no long-running process) is in the README: run
``leadroute retrain`` from crontab or a systemd timer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    """What time it is, and how to wait until later."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock (UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


@dataclass(frozen=True)
class CycleOutcome(Generic[T]):
    """One fired cycle: when it was due, its result, or the one-line error that stopped it."""

    due: datetime
    started: datetime
    result: T | None
    error: str | None


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron_trigger(cron: str) -> Any:
    """An APScheduler trigger for a standard 5-field cron expression, in UTC.

    APScheduler 3 numbers weekdays from Monday = 0, while cron uses Sunday = 0 (and 7): numeric
    weekdays are translated to names first, so ``0 3 * * 1`` means Mondays as in crontab.

    Raises:
        ValueError: not a valid 5-field cron expression.
    """
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    # A number not preceded by "/" is a weekday (after "/" it is a step).
    fields[4] = re.sub(r"(?<![/\d])(\d+)", lambda m: _weekday(m.group(1)), fields[4])
    return CronTrigger(
        minute=fields[0], hour=fields[1], day=fields[2], month=fields[3], day_of_week=fields[4], timezone="UTC"
    )


def _weekday(number: str) -> str:
    if int(number) > 7:
        raise ValueError(f"weekday {number} is out of range 0-7")
    return _CRON_DAYS[int(number)]


def next_fire_time(cron: str, after: datetime) -> datetime:
    """The first instant strictly after ``after`` that matches ``cron`` (evaluated in UTC)."""
    trigger = cron_trigger(cron)
    # CronTrigger returns "now" if it matches; nudge by a microsecond for "strictly after".
    fire: datetime | None = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    if fire is None:
        raise ValueError(f"the cron expression '{cron}' never fires")
    return fire.astimezone(UTC)


def run_schedule(
    cron: str,
    cycle: Callable[[], T],
    clock: Clock | None = None,
    max_cycles: int | None = None,
    on_outcome: Callable[[CycleOutcome[T]], None] | None = None,
) -> list[CycleOutcome[T]]:
    """Wait for each fire time of ``cron`` and run ``cycle``; stop after ``max_cycles`` (None: never).

    Returns:
        The outcomes of the cycles run (only when ``max_cycles`` is set does this return).
    """
    clock = clock or SystemClock()
    outcomes: list[CycleOutcome[T]] = []
    due = next_fire_time(cron, clock.now())
    while max_cycles is None or len(outcomes) < max_cycles:
        wait = (due - clock.now()).total_seconds()
        if wait > 0:
            clock.sleep(wait)
            continue  # re-check: a real sleep may wake early
        started = clock.now()
        try:
            outcome = CycleOutcome(due, started, cycle(), None)
        except Exception as exc:  # a failed cycle is reported; the schedule goes on
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            outcome = CycleOutcome[T](due, started, None, text)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
        # Cycles missed while one ran are skipped (coalesced): the next one is after now.
        due = next_fire_time(cron, max(due, clock.now()))
    return outcomes
