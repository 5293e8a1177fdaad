"""Business time: a rep's working hours in their own time zone, weekdays only, minus absences.

An SLA of "30 minutes in business hours" starts counting when the owner is at work: a lead
assigned on Friday at 16:50 to a rep working 09:00–17:00 is due on Monday at 09:20 in the rep's
zone, and a week of vacation simply does not count. Everything is plain Python over aware
datetimes (``zoneinfo``), so the endpoint's timer and a test with a fake clock agree exactly.

The calendar reuses the roster's notion of availability (:class:`models.policy.Roster`: time zone,
working hours as minutes after local midnight, absences as inclusive local day numbers).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from models.policy.roster import EPOCH, Roster

HORIZON_DAYS = 400
"""How far ahead a calendar looks for working time before it gives up (a rep away for good)."""
WEEKDAYS = frozenset({1, 2, 3, 4, 5})


@dataclass(frozen=True)
class BusinessCalendar:
    """When one rep works.

    Attributes:
        timezone: IANA zone of the rep.
        hours: working minutes after local midnight ``(begin, end)``, ``end`` ≤ 1440.
        weekdays: ISO weekdays worked (1 = Monday).
        absences: inclusive local day numbers (days since 1970-01-01) the rep is away.
    """

    timezone: str = "UTC"
    hours: tuple[int, int] = (0, 24 * 60)
    weekdays: frozenset[int] = WEEKDAYS
    absences: tuple[tuple[int, int], ...] = ()

    def absent_on(self, day: date) -> bool:
        number = (day - EPOCH).days
        return any(first <= number <= last for first, last in self.absences)

    def windows(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working windows (UTC) that end after ``start``, the first one clipped to ``start``."""
        zone = ZoneInfo(self.timezone)
        moment = _aware(start)
        day = moment.astimezone(zone).date()
        for _ in range(HORIZON_DAYS + 2):
            if day.isoweekday() in self.weekdays and not self.absent_on(day):
                begin = _local(day, self.hours[0], zone)
                end = _local(day, self.hours[1], zone)
                if end > moment:
                    yield max(begin, moment), end
            day += timedelta(days=1)

    def working_at(self, moment: datetime) -> bool:
        for begin, _ in self.windows(moment):
            return begin <= _aware(moment)
        return False

    def add(self, start: datetime, seconds: float) -> datetime | None:
        """The instant ``seconds`` of working time after ``start`` (``None``: no working time
        within :data:`HORIZON_DAYS`, e.g. a rep who has left). Memoised: a timer asks the same
        deadlines again on every tick."""
        return _add(self, _aware(start), float(seconds))

    def elapsed(self, start: datetime, end: datetime) -> float:
        """Seconds of working time in ``[start, end)``."""
        stop = _aware(end)
        total = 0.0
        for begin, finish in self.windows(start):
            if begin >= stop:
                break
            total += (min(finish, stop) - begin).total_seconds()
        return total


@lru_cache(maxsize=100_000)
def _add(calendar: BusinessCalendar, start: datetime, seconds: float) -> datetime | None:
    left = timedelta(seconds=seconds)
    for begin, end in calendar.windows(start):
        if end - begin >= left:
            return begin + left
        left -= end - begin
    return None


def add_time(start: datetime, seconds: float, calendar: BusinessCalendar | None) -> datetime | None:
    """Add business time in ``calendar``, or wall-clock time without one."""
    if calendar is None:
        return _aware(start) + timedelta(seconds=seconds)
    return calendar.add(start, seconds)


def elapsed_time(start: datetime, end: datetime, calendar: BusinessCalendar | None) -> float:
    """Business seconds between two instants in ``calendar``, or wall-clock seconds without one."""
    if calendar is None:
        return max(0.0, (_aware(end) - _aware(start)).total_seconds())
    return calendar.elapsed(start, end)


def calendar_of(roster: Roster, row: int) -> BusinessCalendar:
    """The business calendar of the rep in roster row ``row``."""
    return BusinessCalendar(
        timezone=roster.timezone[row],
        hours=roster.hours[row],
        absences=tuple(roster.absences.get(int(row), ())),
    )


def calendars(roster: Roster) -> dict[str, BusinessCalendar]:
    """Every rep's calendar by ``rep_id``."""
    return {str(rep): calendar_of(roster, i) for i, rep in enumerate(roster.rep_id.tolist())}


def _local(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    if minutes >= 24 * 60:  # "until midnight": the start of the next local day
        day, minutes = day + timedelta(days=1), 0
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=zone).astimezone(UTC)


def _aware(moment: datetime) -> datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
