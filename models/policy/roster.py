"""Who can take leads: teams, reps (skills, capacity, weights, hours) and when they are available.

Availability has two implementations with one meaning, like conditions: ``available`` is
vectorised over many leads (polars time-zone conversion once per zone) for replay, and
``available_one`` is plain Python (``zoneinfo``) for one lead at the endpoint.

A rep is available at an instant if active, not absent on their *local* calendar date
(absences are inclusive local dates) and, when working hours are enforced, inside their local
working hours on a weekday (Monday–Friday). Capacity days are UTC calendar days of the lead's
``created_at``, the same day the ground truth counts load on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from models.policy.spec import Availability

EPOCH = date(1970, 1, 1)
DEFAULT_KINDS = {"nurture": "nurture", "queue": "queue"}
UNLIMITED = 1_000_000_000


@dataclass(frozen=True)
class Roster:
    """The sales organisation a policy routes into (pure data, built from frames at the edge).

    Attributes:
        teams: team → kind (``sales``, ``nurture``, ``queue``); reps' teams default to sales.
        rep_id, team, seniority: one entry per rep (numpy arrays of text).
        regions, industries, languages: per rep, the sets they cover.
        capacity: leads per UTC day (``UNLIMITED`` when unknown); weight: share multiplier.
        active: the active flag; timezone and hours (minutes after local midnight) per rep.
        absences: rep row → inclusive (first, last) local day numbers.
        owners: account_id → rep_id of the account owner.
    """

    teams: dict[str, str]
    rep_id: np.ndarray
    team: np.ndarray
    seniority: np.ndarray
    regions: tuple[frozenset[str], ...]
    industries: tuple[frozenset[str], ...]
    languages: tuple[frozenset[str], ...]
    capacity: np.ndarray
    weight: np.ndarray
    active: np.ndarray
    timezone: tuple[str, ...]
    hours: tuple[tuple[int, int], ...]
    absences: dict[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_frames(
        cls,
        reps: pl.DataFrame,
        teams: pl.DataFrame | None = None,
        absences: pl.DataFrame | None = None,
        accounts: pl.DataFrame | None = None,
    ) -> Roster:
        """Build from the reps frame (canonical columns, optionally ``timezone``, ``languages``,
        ``working_hours``), the teams frame (``team``, ``kind``), absences and accounts."""
        n = reps.height

        def column(name: str, default: Any) -> list[Any]:
            return reps[name].to_list() if name in reps.columns else [default] * n

        kinds = {t: "sales" for t in column("team", "")}
        kinds.update(DEFAULT_KINDS)
        if teams is not None:
            kinds.update(dict(zip(teams["team"].to_list(), teams["kind"].to_list(), strict=True)))
        index = {r: i for i, r in enumerate(column("rep_id", ""))}
        spans: dict[int, list[tuple[int, int]]] = {}
        if absences is not None:
            for rep, first, last in absences.select("rep_id", "starts_on", "ends_on").iter_rows():
                if rep in index and first is not None and last is not None:
                    spans.setdefault(index[rep], []).append(((first - EPOCH).days, (last - EPOCH).days))
        owners: dict[str, str] = {}
        if accounts is not None and "owner_rep_id" in accounts.columns:
            owners = {a: o for a, o in accounts.select("account_id", "owner_rep_id").iter_rows() if o is not None}
        capacity = [UNLIMITED if c is None or c <= 0 else int(c) for c in column("capacity_per_day", None)]
        return cls(
            teams=kinds,
            rep_id=np.array(column("rep_id", ""), dtype=object),
            team=np.array(column("team", ""), dtype=object),
            seniority=np.array([s or "" for s in column("seniority", "")], dtype=object),
            regions=tuple(frozenset(v or ()) for v in column("regions", None)),
            industries=tuple(frozenset(v or ()) for v in column("industries", None)),
            languages=tuple(frozenset(v or ()) for v in column("languages", None)),
            capacity=np.array(capacity, dtype=np.int64),
            weight=np.array([1.0 if w is None or w <= 0 else float(w) for w in column("weight", 1.0)]),
            active=np.array([a is not False for a in column("active", True)], dtype=bool),
            timezone=tuple(t or "UTC" for t in column("timezone", "UTC")),
            hours=tuple(_hours(h) for h in column("working_hours", None)),
            absences={r: tuple(s) for r, s in spans.items()},
            owners=owners,
        )

    @property
    def size(self) -> int:
        return int(self.rep_id.size)

    def kind(self, team: str) -> str | None:
        return self.teams.get(team)

    def only_sales_reps(self, rep_ids: frozenset[str]) -> Roster:
        """The same roster where only ``rep_ids`` of the sales teams take leads (an experiment arm
        randomised by rep); nurture and queue teams, and the row layout, are unchanged."""
        sales = np.array([self.teams.get(t, "sales") == "sales" for t in self.team], dtype=bool)
        keep = ~sales | np.isin(self.rep_id, sorted(rep_ids))
        return replace(self, active=self.active & keep)

    def members(self, team: str | None, seniority: tuple[str, ...] = (), reps: tuple[str, ...] = ()) -> np.ndarray:
        """Rows of the active reps of ``team`` (``None``: every sales team), optionally only
        some seniorities or some named reps."""
        if team is None:
            keep = np.array([self.teams.get(t) == "sales" for t in self.team], dtype=bool)
        else:
            keep = self.team == team
        keep &= self.active
        if seniority:
            keep &= np.isin(self.seniority, list(seniority))
        if reps:
            keep &= np.isin(self.rep_id, list(reps))
        return np.flatnonzero(keep)

    # -- availability -----------------------------------------------------------------------

    def available(self, created_at: pl.Series, reps: np.ndarray, rules: Availability) -> np.ndarray:
        """Boolean ``(n_leads, len(reps))``: who is available at each lead's ``created_at``."""
        n = created_at.len()
        out = np.broadcast_to(self.active[reps], (n, reps.size)).copy()
        if not (rules.absences or rules.working_hours) or n == 0 or reps.size == 0:
            return out
        # Availability only changes on whole minutes (whole quarter hours without working hours:
        # every time-zone offset is a multiple of 15 min), so compute it once per distinct instant.
        step_us = 60_000_000 if rules.working_hours else 900_000_000
        micros = _utc(created_at).dt.epoch("us").to_numpy() // step_us
        instants, inverse = np.unique(micros, return_inverse=True)
        if instants.size * reps.size <= PYTHON_CELLS:  # a few instants: zoneinfo beats a polars pass
            rows = [
                self.available_one(_EPOCH + timedelta(microseconds=int(i) * step_us), reps, rules) for i in instants
            ]
            return np.asarray(np.stack(rows)[inverse.reshape(-1)], dtype=bool)
        utc = pl.Series(instants * step_us).cast(pl.Datetime("us", "UTC"))
        distinct = np.broadcast_to(self.active[reps], (instants.size, reps.size)).copy()
        zones = sorted({self.timezone[r] for r in reps})
        # Local wall-clock time in every zone at once (one polars pass), then plain integer maths.
        local_us = pl.DataFrame({"t": utc}).select(
            pl.col("t").dt.convert_time_zone(zone).dt.replace_time_zone(None).dt.epoch("us").alias(str(i))
            for i, zone in enumerate(zones)
        )
        for i, zone in enumerate(zones):
            wall = local_us[str(i)].to_numpy()
            day = wall // _DAY_US  # days since 1970-01-01, local
            minute = (wall % _DAY_US) // 60_000_000
            weekday = (day + 3) % 7 + 1  # 1 = Monday … 7 = Sunday (1970-01-01 was a Thursday)
            for j, r in enumerate(reps):
                if self.timezone[r] != zone:
                    continue
                if rules.absences:
                    for first, last in self.absences.get(int(r), ()):
                        distinct[(day >= first) & (day <= last), j] = False
                if rules.working_hours:
                    begin, end = self.hours[r]
                    distinct[:, j] &= (weekday <= 5) & (minute >= begin) & (minute < end)
        return np.asarray(distinct[inverse.reshape(-1)], dtype=bool)

    def available_one(self, created_at: datetime, reps: np.ndarray, rules: Availability) -> np.ndarray:
        """The same as :meth:`available` for one instant (plain Python, for the endpoint)."""
        out = self.active[reps].copy()
        moment = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
        for j, r in enumerate(reps):
            if not out[j] or not (rules.absences or rules.working_hours):
                continue
            local = moment.astimezone(ZoneInfo(self.timezone[r]))
            if rules.absences:
                day = (local.date() - EPOCH).days
                if any(first <= day <= last for first, last in self.absences.get(int(r), ())):
                    out[j] = False
            if rules.working_hours:
                begin, end = self.hours[r]
                minute = local.hour * 60 + local.minute
                out[j] = out[j] and local.isoweekday() <= 5 and begin <= minute < end
        return np.asarray(out, dtype=bool)

    def skill_mask(self, reps: np.ndarray, leads: Mapping[str, list[Any]], skills: tuple[str, ...]) -> np.ndarray:
        """Boolean ``(n_leads, len(reps))``: the rep covers the lead's industry (and/or language)."""
        sets = {"industry": self.industries, "language": self.languages, "region": self.regions}
        n = len(next(iter(leads.values()))) if leads else 0
        out = np.ones((n, reps.size), dtype=bool)
        for skill in skills:
            values = leads.get(skill, [None] * n)
            covered = sets[skill]
            # Few distinct values: one membership row per value, then gather.
            distinct = {v: np.array([v in covered[r] for r in reps], dtype=bool) for v in set(values)}
            out &= np.stack([distinct[v] for v in values]) if n else out
        return out

    def owner_mask(self, reps: np.ndarray, account_ids: list[Any]) -> np.ndarray:
        """Boolean ``(n_leads, len(reps))``: the rep owns the lead's account."""
        ids = self.rep_id[reps]
        owner = [self.owners.get(a) if a is not None else None for a in account_ids]
        return np.array([ids == o for o in owner], dtype=bool).reshape(len(owner), reps.size)


_DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Up to this many (instant, rep) pairs, :meth:`Roster.available` asks :meth:`Roster.available_one`
#: per distinct instant (the same rules, in Python) instead of a polars pass per time zone.
PYTHON_CELLS = 256


def utc_day(created_at: pl.Series) -> np.ndarray:
    """UTC calendar day number of each instant (the capacity day)."""
    return _utc(created_at).dt.date().cast(pl.Int32).to_numpy().astype(np.int64)


def _utc(created_at: pl.Series) -> pl.Series:
    dtype = created_at.dtype
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return created_at.dt.convert_time_zone("UTC")
    return created_at.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _hours(text: object) -> tuple[int, int]:
    """``"09:00-17:00"`` → minutes after local midnight; unknown hours mean all day."""
    try:
        begin, end = (part.strip().split(":") for part in str(text).split("-"))
        first, last = int(begin[0]) * 60 + int(begin[1]), int(end[0]) * 60 + int(end[1])
    except (ValueError, IndexError):
        return (0, 24 * 60)
    return (first, last) if 0 <= first < last <= 24 * 60 else (0, 24 * 60)
