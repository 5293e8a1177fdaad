"""Configuration of the simulated demo company and its independent random streams."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

STREAMS: tuple[str, ...] = (
    "reps",
    "absences",
    "accounts",
    "truth",
    "leads",
    "logging",
    "outcomes",
    "export",
)
"""One child seed per component, in a fixed order: adding a stream appends, never reorders.

Because each component draws from its own ``SeedSequence`` child, a change in one (say, more
leads) cannot shift the draws of another (the reps, their absences, the accounts).
"""


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate.

    The organisation is staffed for about 20,000 leads a year (rep capacities do not change with
    ``n_leads``, so the world stays the same company): more leads per month means busier,
    overloaded reps and lower conversion. For a longer history at the default pace, raise
    ``months`` together with ``n_leads`` (e.g. 80,000 leads over 48 months).

    Attributes:
        n_leads: number of clean leads over the whole history.
        seed: master seed; every component spawns its own stream from it.
        start: first instant of history (timezone-aware).
        months: length of history in calendar months; ``now = start + months``.
        exploration: share of traffic whose team the logging policy draws uniformly at random.
        conversion_window_days: an outcome is matured once this many days passed since
            ``created_at``; every terminal outcome (converted or lost) happens within it.
    """

    n_leads: int = 20_000
    seed: int = 7
    start: datetime = datetime(2025, 11, 1, tzinfo=UTC)
    months: int = 12
    exploration: float = 0.15
    conversion_window_days: int = 120

    def __post_init__(self) -> None:
        # Fail fast at the edge: a bad config would otherwise surface as an obscure numpy error.
        if self.n_leads < 0:
            raise ValueError(f"n_leads: must be at least 0, got {self.n_leads}")
        if self.months < 1:
            raise ValueError(f"months: must be at least 1, got {self.months}")
        if not 0.0 <= self.exploration <= 1.0:
            raise ValueError(f"exploration: must be within [0, 1], got {self.exploration}")
        if self.conversion_window_days < 1:
            raise ValueError(f"conversion_window_days: must be at least 1, got {self.conversion_window_days}")
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start: must be timezone-aware (e.g. datetime(2025, 11, 1, tzinfo=UTC))")

    @property
    def start_utc(self) -> datetime:
        """``start`` expressed in UTC."""
        return self.start.astimezone(UTC)

    @property
    def now(self) -> datetime:
        """End of history (exclusive): ``start`` plus ``months`` calendar months, in UTC."""
        return add_months(self.start_utc, self.months)


def add_months(moment: datetime, months: int) -> datetime:
    """Add calendar months, clamping the day to the target month's length (Jan 31 + 1 → Feb 28)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    days = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return moment.replace(year=year, month=month, day=min(moment.day, days))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per component named in :data:`STREAMS`."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)}
