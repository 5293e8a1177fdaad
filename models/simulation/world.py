"""The sales organisation: teams, reps (with hidden traits), their absences, named accounts.

Everything here depends only on the seed, never on the number of leads, so a bigger history
is the same company seen for longer or busier, not a different company.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from models.simulation.catalog import (
    COUNTRIES,
    INDUSTRIES,
    INDUSTRY_SHARES,
    REGION_SHARES,
    REGIONS,
    REP_TIMEZONES,
    SALES_TEAMS,
    TEAM_DESCRIPTIONS,
    TEAM_KINDS,
    TEAMS,
    TIMEZONE_LANGUAGE,
)
from models.simulation.config import SimulationConfig
from models.simulation.names import N_DISTINCT, company_names, person_names

# Team rosters: (primary region, seniority) per seat. The composition is fixed (enterprise mostly
# senior, smb mostly junior); which seat gets which seniority is shuffled per seed.
_ROSTERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "enterprise": (
        ("NA", "NA", "EMEA", "EMEA", "APAC", "NA"),
        ("senior", "senior", "senior", "senior", "mid", "mid"),
    ),
    "mid-market": (
        ("NA", "NA", "NA", "EMEA", "EMEA", "APAC", "LATAM", "EMEA"),
        ("senior", "senior", "mid", "mid", "mid", "mid", "junior", "junior"),
    ),
    "smb": (
        ("NA", "NA", "NA", "EMEA", "EMEA", "APAC", "LATAM", "NA"),
        ("junior", "junior", "junior", "junior", "junior", "mid", "mid", "senior"),
    ),
}
# A rep may cover a neighbouring region from their own time zone.
_NEIGHBOUR = {"NA": "LATAM", "LATAM": "NA", "EMEA": "APAC", "APAC": "EMEA"}
_SECOND_REGION_CHANCE = {"NA": 0.35, "LATAM": 0.35, "EMEA": 0.15, "APAC": 0.25}
_WORKING_HOURS = ("09:00-17:00", "08:00-16:00", "10:00-18:00", "08:30-16:30")
_WORKING_HOURS_SHARES = (0.5, 0.2, 0.15, 0.15)

REFERENCE_LEADS_PER_WEEKDAY = 72.0
"""Weekday inbound volume the org is staffed for: 20,000 leads a year (the default history)."""
REFERENCE_TEAM_SHARES = {"enterprise": 0.255, "mid-market": 0.139, "smb": 0.282}
"""Share of leads each sales team gets under the logging policy (measured on the default world)."""

N_ACCOUNTS = 300

REP_SCHEMA: dict[str, pl.DataType] = {
    "rep_id": pl.String(),
    "name": pl.String(),
    "team": pl.String(),
    "seniority": pl.String(),
    "regions": pl.List(pl.String()),
    "industries": pl.List(pl.String()),
    "capacity_per_day": pl.Int64(),
    "weight": pl.Float64(),
    "active": pl.Boolean(),
    "timezone": pl.String(),
    "languages": pl.List(pl.String()),
    "working_hours": pl.String(),
}


@dataclass(frozen=True)
class World:
    """The organisation the leads arrive at.

    Attributes:
        teams: ``team``, ``kind``, ``description``.
        reps: canonical rep columns plus ``timezone``, ``languages``, ``working_hours``.
        absences: ``rep_id``, ``starts_on``, ``ends_on`` (inclusive, rep-local dates), ``reason``.
        accounts: canonical account columns.
        rep_traits: hidden per-rep truth: ``rep_id``, ``talent`` (logit), ``response_hours``.
        open_company_names: company-name indices not taken by accounts, for leads' companies.
    """

    teams: pl.DataFrame
    reps: pl.DataFrame
    absences: pl.DataFrame
    accounts: pl.DataFrame
    rep_traits: pl.DataFrame
    open_company_names: np.ndarray


def build_world(config: SimulationConfig, rngs: dict[str, np.random.Generator]) -> World:
    """Draw teams, reps, absences and accounts from their own streams."""
    teams = pl.DataFrame(
        {
            "team": list(TEAMS),
            "kind": [TEAM_KINDS[t] for t in TEAMS],
            "description": [TEAM_DESCRIPTIONS[t] for t in TEAMS],
        }
    )
    reps = _reps(rngs["reps"])
    traits = pl.DataFrame(
        {
            "rep_id": reps["rep_id"],
            # Talent is a fixed logit shift: the rep effect a learned fit model should recover.
            "talent": rngs["truth"].normal(0.0, 0.15, reps.height),
            "response_hours": rngs["truth"].uniform(0.1, 0.5, reps.height),
        }
    )
    absences = _absences(rngs["absences"], reps, config)
    name_order = rngs["accounts"].permutation(N_DISTINCT)
    accounts = _accounts(rngs["accounts"], reps, name_order[:N_ACCOUNTS])
    return World(
        teams=teams,
        reps=reps,
        absences=absences,
        accounts=accounts,
        rep_traits=traits,
        open_company_names=np.sort(name_order[N_ACCOUNTS:]),
    )


@dataclass(frozen=True)
class _Seat:
    team: str
    seniority: str
    regions: list[str]
    industries: list[str]
    timezone: str
    languages: list[str]
    working_hours: str
    weight: float
    capacity_multiple: float  # capacity over the seat's expected weekday load


def _reps(rng: np.random.Generator) -> pl.DataFrame:
    seats: list[_Seat] = []
    for team in SALES_TEAMS:
        primaries, seniorities = _ROSTERS[team]
        shuffled = [seniorities[i] for i in rng.permutation(len(seniorities))]
        coverage: list[list[str]] = []
        for primary in primaries:
            regions = [primary]
            if rng.random() < _SECOND_REGION_CHANCE[primary]:
                regions.append(_NEIGHBOUR[primary])
            coverage.append(regions)
        # Every team must cover every region, or some leads would have no local rep at all.
        for region in REGIONS:
            if not any(region in regions for regions in coverage):
                hosts = [i for i, regions in enumerate(coverage) if regions[0] == _NEIGHBOUR[region]]
                coverage[hosts[int(rng.integers(0, len(hosts)))]].append(region)
        for regions, seniority in zip(coverage, shuffled, strict=True):
            timezone = str(rng.choice(REP_TIMEZONES[regions[0]]))
            skills = sorted(rng.choice(len(INDUSTRIES), int(rng.integers(2, 4)), replace=False))
            seats.append(
                _Seat(
                    team=team,
                    seniority=seniority,
                    regions=[r for r in REGIONS if r in regions],
                    industries=[INDUSTRIES[i] for i in skills],
                    timezone=timezone,
                    languages=_languages(rng, regions[0], timezone),
                    working_hours=str(rng.choice(_WORKING_HOURS, p=_WORKING_HOURS_SHARES)),
                    weight=float(rng.choice([0.8, 1.0, 1.0, 1.2])),
                    capacity_multiple=float(rng.uniform(1.35, 1.95)),
                )
            )
    n = len(seats)
    names = _unique_names(rng, n)
    # One rep has left: an NA seat in mid-market or smb, so every region stays covered.
    leavers = [i for i, seat in enumerate(seats) if seat.team != "enterprise" and seat.regions == ["NA"]]
    leavers = leavers or [i for i, seat in enumerate(seats) if seat.team != "enterprise" and seat.regions[0] == "NA"]
    inactive = leavers[int(rng.integers(0, len(leavers)))]
    staffed = {t: sum(1 for i, seat in enumerate(seats) if seat.team == t and i != inactive) for t in SALES_TEAMS}
    # Capacity binds: 1.35–1.95× the weekday load a rep gets under the legacy rules.
    capacity = [
        max(
            2,
            round(
                seat.capacity_multiple
                * REFERENCE_LEADS_PER_WEEKDAY
                * REFERENCE_TEAM_SHARES[seat.team]
                / staffed[seat.team]
            ),
        )
        for seat in seats
    ]
    return pl.DataFrame(
        {
            "rep_id": [f"R{i + 1:03d}" for i in range(n)],
            "name": names,
            "team": [seat.team for seat in seats],
            "seniority": [seat.seniority for seat in seats],
            "regions": [seat.regions for seat in seats],
            "industries": [seat.industries for seat in seats],
            "capacity_per_day": capacity,
            "weight": [seat.weight for seat in seats],
            "active": [i != inactive for i in range(n)],
            "timezone": [seat.timezone for seat in seats],
            "languages": [seat.languages for seat in seats],
            "working_hours": [seat.working_hours for seat in seats],
        },
        schema=REP_SCHEMA,
    )


def _languages(rng: np.random.Generator, region: str, timezone: str) -> list[str]:
    spoken = {"en"}
    if timezone in TIMEZONE_LANGUAGE:
        spoken.add(TIMEZONE_LANGUAGE[timezone])
    if region == "NA" and rng.random() < 0.3:
        spoken.add("es")
    elif region == "EMEA" and rng.random() < 0.3:
        spoken.add(str(rng.choice(["de", "fr", "es", "it"])))
    elif region == "LATAM":
        spoken.add(str(rng.choice(["es", "pt"])))
    elif region == "APAC" and rng.random() < 0.2:
        spoken.add("ja")
    return ["en", *sorted(spoken - {"en"})]


def _unique_names(rng: np.random.Generator, n: int) -> list[str]:
    names: list[str] = []
    while len(names) < n:
        drawn = person_names(rng, 1).row(0)
        name = f"{drawn[0]} {drawn[1]}"
        if name not in names:
            names.append(name)
    return names


def _absences(rng: np.random.Generator, reps: pl.DataFrame, config: SimulationConfig) -> pl.DataFrame:
    first = config.start_utc.date()
    horizon = (config.now.date() - first).days
    rows: list[tuple[str, date, date, str]] = []
    for rep_id, active in reps.select("rep_id", "active").iter_rows():
        if not active:
            continue  # a rep who left takes no leave
        count = round(int(rng.integers(1, 4)) * config.months / 12)
        taken: list[tuple[int, int]] = []
        for _ in range(count):
            reason = str(rng.choice(["vacation", "sick", "training"], p=[0.75, 0.15, 0.10]))
            length = int(rng.integers(3, 16)) if reason == "vacation" else int(rng.integers(3, 6))
            for _attempt in range(20):
                begin = int(rng.integers(0, max(1, horizon - length)))
                # Keep a working day between two absences so they never merge.
                if all(begin > end + 1 or begin + length < start - 1 for start, end in taken):
                    taken.append((begin, begin + length - 1))
                    rows.append((rep_id, first + timedelta(begin), first + timedelta(begin + length - 1), reason))
                    break
    frame = pl.DataFrame(
        rows, schema={"rep_id": pl.String, "starts_on": pl.Date, "ends_on": pl.Date, "reason": pl.String}, orient="row"
    )
    return frame.sort("rep_id", "starts_on")


def _accounts(rng: np.random.Generator, reps: pl.DataFrame, name_index: np.ndarray) -> pl.DataFrame:
    n = name_index.size
    region = rng.choice(len(REGIONS), n, p=REGION_SHARES)
    countries = [c[0] for c in COUNTRIES]
    country: list[str] = []
    for r in region:
        options = [i for i, c in enumerate(COUNTRIES) if c[1] == REGIONS[r]]
        shares = np.array([COUNTRIES[i][4] for i in options])
        country.append(countries[options[int(rng.choice(len(options), p=shares / shares.sum()))]])
    employees = np.maximum(120, np.round(np.exp(rng.normal(np.log(2_500.0), 1.1, n)))).astype(np.int64)
    revenue = np.round(employees * np.exp(rng.normal(np.log(180_000.0), 0.45, n)), -3)
    industry = rng.choice(len(INDUSTRIES), n, p=INDUSTRY_SHARES)
    owners: list[str] = []
    active = reps.filter(pl.col("active"))
    for i in range(n):
        # Large accounts are owned by enterprise AEs, the rest by mid-market, in their region.
        team = "enterprise" if employees[i] >= 1_000 else "mid-market"
        candidates = active.filter((pl.col("team") == team) & pl.col("regions").list.contains(REGIONS[region[i]]))
        if candidates.height == 0:
            candidates = active.filter(pl.col("team") == team)
        owners.append(str(candidates["rep_id"][int(rng.integers(0, candidates.height))]))
    names = company_names(name_index)
    return pl.DataFrame(
        {
            "account_id": [f"A{i + 1:04d}" for i in range(n)],
            "name": names["name"],
            "domain": names["domain"],
            "owner_rep_id": owners,
            "industry": [INDUSTRIES[i] for i in industry],
            "employees": employees,
            "annual_revenue": revenue.astype(np.float64),
            "country": country,
        }
    )
