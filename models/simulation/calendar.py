"""When can a destination first touch a lead: working hours, time zones, weekends, absences.

Times inside the simulation are ``int64`` microseconds since the Unix epoch (UTC), the physical
representation of ``pl.Datetime("us", "UTC")``, so all arithmetic stays vectorised numpy.

A rep's working time is a sorted list of disjoint UTC intervals (their local working hours on
each weekday they are not absent). Adding a response time *in working time* to an arrival is then
two ``searchsorted`` calls over cumulative working seconds, with no Python loop over leads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR
EPOCH = date(1970, 1, 1)

QUEUE_SWEEP_MINUTES = 16 * 60
"""The queue is swept once per weekday, late in the afternoon of its regional hub."""
QUEUE_MIN_WAIT_US = 12 * US_PER_HOUR
"""A lead only makes a sweep it arrived at least this long before: the queue is worked last."""


def parse_working_hours(text: str) -> tuple[int, int]:
    """``"09:00-17:00"`` → minutes after local midnight of the start and the end."""
    begin, end = (part.strip() for part in text.split("-"))
    first, last = _minutes(begin), _minutes(end)
    if not 0 <= first < last <= 24 * 60:
        raise ValueError(f"working_hours: '{text}' is not a same-day range like 09:00-17:00")
    return first, last


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def local_instants(days: np.ndarray, minutes: int, timezone: str) -> np.ndarray:
    """UTC microseconds of ``minutes`` after local midnight on each local calendar day.

    Args:
        days: ``datetime64[D]`` local calendar dates.
        minutes: minutes after local midnight (a time of day that exists on every date).
        timezone: IANA name; daylight saving time is applied per date.
    """
    local = pl.Series("t", days.astype("datetime64[us]")) + timedelta(minutes=minutes)
    utc = local.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
    return utc.dt.epoch("us").to_numpy().astype(np.int64)


def day_number(when_us: np.ndarray) -> np.ndarray:
    """UTC calendar day of each instant, as days since the epoch (``int64``)."""
    return np.asarray(np.floor_divide(when_us, US_PER_DAY), dtype=np.int64)


@dataclass(frozen=True)
class WorkingTime:
    """One rep's working intervals over a span of dates, with cumulative working time."""

    starts: np.ndarray  # int64 µs, sorted
    ends: np.ndarray  # int64 µs, ends[i] > starts[i], ends[i] <= starts[i + 1]
    worked_before: np.ndarray  # int64 µs of working time before interval i

    def advance(self, arrival_us: np.ndarray, response_us: np.ndarray) -> np.ndarray:
        """The instant ``response_us`` of working time after each arrival (vectorised).

        Work starts at the arrival if it falls inside an interval, else at the next interval's
        start; a response longer than the rest of that interval spills into later ones.
        """
        n = self.starts.size
        if n == 0:
            raise ValueError("working time: no working interval in the calendar span")
        index = np.searchsorted(self.ends, arrival_us, side="right")
        beyond = index >= n
        index = np.minimum(index, n - 1)
        begin = np.maximum(arrival_us, self.starts[index])
        position = self.worked_before[index] + (begin - self.starts[index]) + response_us
        finished = self.worked_before + (self.ends - self.starts)
        target = np.minimum(np.searchsorted(finished, position, side="left"), n - 1)
        touch = self.starts[target] + (position - self.worked_before[target])
        # Past the calendar span (only for arrivals far outside history): the last instant known.
        known = np.where(beyond, np.maximum(arrival_us, self.ends[-1]), np.minimum(touch, self.ends[target]))
        return np.asarray(known, dtype=np.int64)


def working_time(
    first: date,
    last: date,
    timezone: str,
    working_hours: tuple[int, int],
    absent_days: np.ndarray,
) -> WorkingTime:
    """Build a rep's working intervals from ``first`` to ``last`` (local dates, inclusive).

    Args:
        first, last: the span of local calendar dates to cover.
        timezone: the rep's IANA time zone.
        working_hours: minutes after local midnight (start, end), Monday to Friday.
        absent_days: ``datetime64[D]`` local dates the rep does not work.
    """
    days = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + 1)
    # 1970-01-01 was a Thursday: (days since epoch + 3) % 7 is 0 on Mondays.
    weekday = (days.astype(np.int64) + 3) % 7
    keep = (weekday < 5) & ~np.isin(days, absent_days)
    days = days[keep]
    starts = local_instants(days, working_hours[0], timezone)
    ends = local_instants(days, working_hours[1], timezone)
    lengths = ends - starts
    worked_before = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return WorkingTime(starts=starts, ends=ends, worked_before=worked_before)


def queue_sweeps(first: date, last: date, timezone: str) -> np.ndarray:
    """UTC instants of the queue's weekday sweeps at its hub, sorted."""
    days = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + 1)
    days = days[(days.astype(np.int64) + 3) % 7 < 5]
    return local_instants(days, QUEUE_SWEEP_MINUTES, timezone)


def queue_touch(arrival_us: np.ndarray, sweeps: np.ndarray) -> np.ndarray:
    """First sweep at least :data:`QUEUE_MIN_WAIT_US` after each arrival."""
    index = np.searchsorted(sweeps, arrival_us + QUEUE_MIN_WAIT_US, side="left")
    fallback = arrival_us + QUEUE_MIN_WAIT_US
    return np.where(index < sweeps.size, sweeps[np.minimum(index, sweeps.size - 1)], fallback)


def span_for(when_us: np.ndarray, anchor_first: date, anchor_last: date) -> tuple[date, date]:
    """A calendar span covering the instants with slack, snapped so repeated calls share a cache.

    The slack after the last instant (150 days) covers the longest wait the world can create:
    an absence of up to 15 days, a weekend, and the next absence right after it.
    """
    if when_us.size:
        lo = EPOCH + timedelta(days=int(day_number(when_us.min())) - 3)
        hi = EPOCH + timedelta(days=int(day_number(when_us.max())) + 150)
    else:
        lo, hi = anchor_first, anchor_last
    first = min(lo, anchor_first - timedelta(days=3))
    last = max(hi, anchor_last + timedelta(days=150))
    return first, last
