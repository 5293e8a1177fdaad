"""Inbound leads: arrivals over the calendar, firmographics, contacts and engagement signals.

Draws are vectorised over all leads (1M leads take seconds). Only fields a CRM knows when the
lead is created are emitted; the buying intent that drives the engagement signals stays hidden.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from models.simulation.calendar import US_PER_DAY, local_instants
from models.simulation.catalog import (
    C_LEVEL_TITLES,
    COUNTRIES,
    DEPARTMENTS,
    FREE_MAIL,
    INDIVIDUAL_TITLES,
    INDUSTRIES,
    INDUSTRY_SHARES,
    LANGUAGES,
    PRODUCT_SHARES,
    PRODUCTS,
    REGION_SHARES,
    REGIONS,
    SEGMENT_EMPLOYEES,
    SEGMENT_SHARES,
    SENIORITIES,
    SENIORITY_SHARES,
    SOURCE_INTENT,
    SOURCE_SHARES,
    SOURCES,
)
from models.simulation.config import SimulationConfig
from models.simulation.names import N_DISTINCT, company_names, person_names, sequential_ids
from models.simulation.world import World

LEAD_COLUMNS: tuple[str, ...] = (
    "lead_id", "created_at", "email", "company", "account_id", "industry", "employees",
    "annual_revenue", "country", "region", "source", "title", "seniority", "product_interest",
    "score", "web_visits", "email_opens", "pricing_page_views", "demo_requested", "language",
)  # fmt: skip

ACCOUNT_LEAD_SHARE = 0.15
# Valid but incomplete records, as real CRMs have them.
MISSING_SHARES = {"industry": 0.04, "country": 0.03, "employees": 0.05, "annual_revenue": 0.04,
                  "title": 0.03, "product_interest": 0.08}  # fmt: skip
FREE_MAIL_SHARES = (0.30, 0.12, 0.05)  # per segment
WEEKDAY_VOLUME = (1.0, 1.08, 1.06, 1.0, 0.86, 0.18, 0.15)  # Monday … Sunday
MONTH_VOLUME = (1.12, 1.04, 1.06, 1.0, 0.97, 0.92, 0.78, 0.72, 1.02, 1.1, 1.12, 0.86)  # Jan … Dec
BUSINESS_HOURS_SHARE = 0.82


def simulate_leads(config: SimulationConfig, world: World, rng: np.random.Generator) -> pl.DataFrame:
    """Draw ``config.n_leads`` clean leads sorted by ``created_at`` (columns :data:`LEAD_COLUMNS`)."""
    n = config.n_leads
    country_codes = np.array([c[0] for c in COUNTRIES])
    accounts = world.accounts

    # Who: a named account's employee, or someone at one of many other companies.
    from_account = rng.random(n) < ACCOUNT_LEAD_SHARE
    weights = accounts["employees"].to_numpy().astype(np.float64) ** 0.35
    account = rng.choice(accounts.height, n, p=weights / weights.sum())
    pool = max(1_000, n // 3)
    company = rng.integers(0, pool, n)
    pool_segment = rng.choice(len(SEGMENT_SHARES), pool, p=SEGMENT_SHARES)
    medians = np.log(np.array([m for m, _ in SEGMENT_EMPLOYEES]))[pool_segment]
    sigmas = np.array([s for _, s in SEGMENT_EMPLOYEES])[pool_segment]
    pool_employees = np.maximum(1, np.round(np.exp(rng.normal(medians, sigmas)))).astype(np.int64)
    pool_industry = rng.choice(len(INDUSTRIES), pool, p=INDUSTRY_SHARES)
    pool_country = _countries(rng, pool)
    open_names = world.open_company_names
    # Leads' companies take the names accounts left free, then numbered variants beyond them.
    seat = np.arange(pool)
    pool_name = np.where(seat < open_names.size, open_names[np.minimum(seat, open_names.size - 1)], N_DISTINCT + seat)
    pool_revenue_per_head = np.exp(rng.normal(np.log(150_000.0), 0.5, pool))

    account_country = np.searchsorted(np.sort(country_codes), accounts["country"].to_numpy())
    account_country = np.argsort(country_codes)[account_country]
    account_industry = np.array([INDUSTRIES.index(i) for i in accounts["industry"]])
    employees = np.where(from_account, accounts["employees"].to_numpy()[account], pool_employees[company])
    segment = np.where(employees >= 1_000, 2, np.where(employees >= 200, 1, 0))
    segment = np.where(from_account, segment, pool_segment[company])
    industry = np.where(from_account, account_industry[account], pool_industry[company])
    country = np.where(from_account, account_country[account], pool_country[company])
    revenue = np.where(
        from_account,
        accounts["annual_revenue"].to_numpy()[account],
        np.round(employees * pool_revenue_per_head[company], -3),
    )
    pool_names = company_names(pool_name)
    company_name = _either(from_account, accounts["name"].gather(account), pool_names["name"].gather(company))
    domain = _either(from_account, accounts["domain"].gather(account), pool_names["domain"].gather(company))

    # What they said and did before the form was sent.
    source = _categorical(rng, np.array(SOURCE_SHARES), segment)
    seniority = _categorical(rng, np.array(SENIORITY_SHARES), segment)
    product = _categorical(rng, np.array(PRODUCT_SHARES), segment)
    intent = rng.normal(0.0, 1.0, n) + np.array(SOURCE_INTENT)[source] + 0.15 * (seniority <= 1)
    web_visits = rng.poisson(np.exp(0.9 + 0.45 * intent))
    outbound = source == SOURCES.index("outbound")
    email_opens = rng.poisson(np.exp(0.4 + 0.35 * intent + 0.6 * outbound))
    pricing_views = rng.poisson(np.exp(-1.1 + 0.8 * intent))
    demo_bonus = 0.6 * (source == SOURCES.index("web_form")) + 0.4 * (source == SOURCES.index("referral"))
    demo = rng.random(n) < 1.0 / (1.0 + np.exp(-(-2.4 + 1.1 * intent + demo_bonus)))
    language = np.array([LANGUAGES.index(c[3]) for c in COUNTRIES])[country]
    # Some speakers of other languages fill the form in English.
    language = np.where((language != 0) & (rng.random(n) < 0.2), 0, language)

    created_us = _arrivals(config, rng, country)
    people = person_names(rng, n)
    free_mail = ~from_account & (rng.random(n) < np.array(FREE_MAIL_SHARES)[segment])
    mailbox = rng.integers(0, len(FREE_MAIL), n)
    suffix = rng.integers(10, 100, n)
    department = rng.integers(0, len(DEPARTMENTS), n)
    title_variant = rng.integers(0, max(len(C_LEVEL_TITLES), len(INDIVIDUAL_TITLES)), n)
    missing = {k: rng.random(n) < share for k, share in MISSING_SHARES.items()}

    frame = pl.DataFrame(
        {
            "created_at": created_us,
            "first": people["first"],
            "last": people["last"],
            "domain": domain,
            "free_mail": free_mail,
            "mailbox": pl.Series(FREE_MAIL).gather(mailbox),
            "suffix": suffix,
            "company": company_name,
            "account_id": accounts["account_id"].gather(account).scatter(np.flatnonzero(~from_account), None),
            "industry": _labels(INDUSTRIES, industry, missing["industry"]),
            "employees": pl.Series(employees, dtype=pl.Int64).scatter(np.flatnonzero(missing["employees"]), None),
            "annual_revenue": pl.Series(revenue.astype(np.float64)).scatter(
                np.flatnonzero(missing["employees"] | missing["annual_revenue"]), None
            ),
            "country": _labels(tuple(country_codes), country, missing["country"]),
            "region": pl.Series([c[1] for c in COUNTRIES]).gather(country),
            "source": _labels(SOURCES, source),
            "seniority": _labels(SENIORITIES, seniority, missing["title"]),
            "department": _labels(DEPARTMENTS, department),
            "title_variant": title_variant,
            "product_interest": _labels(PRODUCTS, product, missing["product_interest"]),
            "web_visits": web_visits.astype(np.int64),
            "email_opens": email_opens.astype(np.int64),
            "pricing_page_views": pricing_views.astype(np.int64),
            "demo_requested": demo,
            "language": _labels(LANGUAGES, language),
        }
    )
    local_part = pl.concat_str(
        [pl.col("first"), pl.lit("."), pl.col("last").str.replace_all(" ", "")]
    ).str.to_lowercase()
    email = (
        pl.when(pl.col("free_mail"))
        .then(pl.concat_str([local_part, pl.col("suffix").cast(pl.String), pl.lit("@"), pl.col("mailbox")]))
        .otherwise(pl.concat_str([local_part, pl.lit("@"), pl.col("domain")]))
    )
    order = np.argsort(created_us, kind="stable")
    return (
        frame.with_columns(email.alias("email"), _title().alias("title"), pl.lit(None, pl.Float64).alias("score"))
        .select(pl.all().gather(order))
        .with_columns(
            sequential_ids("L", n, 7).alias("lead_id"),
            pl.col("created_at").cast(pl.Datetime("us", "UTC")),
        )
        .select(LEAD_COLUMNS)
    )


def _either(condition: np.ndarray, yes: pl.Series, no: pl.Series) -> pl.Series:
    frame = pl.DataFrame({"c": condition, "yes": yes, "no": no})
    return frame.select(pl.when(pl.col("c")).then(pl.col("yes")).otherwise(pl.col("no")))["yes"]


def _categorical(rng: np.random.Generator, shares: np.ndarray, group: np.ndarray) -> np.ndarray:
    """One category per row, with row ``i`` drawn from ``shares[group[i]]`` (rows sum to 1)."""
    cumulative = np.cumsum(shares / shares.sum(axis=1, keepdims=True), axis=1)
    draws = rng.random(group.size)
    return np.asarray(np.minimum((draws[:, None] > cumulative[group]).sum(axis=1), shares.shape[1] - 1), dtype=np.int64)


def _countries(rng: np.random.Generator, n: int) -> np.ndarray:
    region = rng.choice(len(REGIONS), n, p=REGION_SHARES)
    shares = np.array([[c[4] if c[1] == r else 0.0 for c in COUNTRIES] for r in REGIONS])
    return _categorical(rng, shares, region)


def _labels(words: tuple[str, ...], index: np.ndarray, missing: np.ndarray | None = None) -> pl.Series:
    labels = pl.Series(words, dtype=pl.String).gather(pl.Series(index, dtype=pl.Int64))
    return labels if missing is None else labels.scatter(np.flatnonzero(missing), None)


def _title() -> pl.Expr:
    dept = pl.col("department")
    variant = pl.col("title_variant")
    c_level = pl.Series(C_LEVEL_TITLES)
    individual = pl.Series(INDIVIDUAL_TITLES)
    return (
        pl.when(pl.col("seniority") == "c_level")
        .then(pl.lit(c_level).implode().list.get(variant % len(C_LEVEL_TITLES)))
        .when(pl.col("seniority") == "vp")
        .then(pl.lit("VP of ") + dept)
        .when(pl.col("seniority") == "director")
        .then(pl.lit("Director of ") + dept)
        .when(pl.col("seniority") == "manager")
        .then(dept + pl.lit(" Manager"))
        .when(pl.col("seniority") == "individual")
        .then(dept + pl.lit(" ") + pl.lit(individual).implode().list.get(variant % len(INDIVIDUAL_TITLES)))
    )


def _arrivals(config: SimulationConfig, rng: np.random.Generator, country: np.ndarray) -> np.ndarray:
    """Creation instants (UTC µs, whole seconds): a local day with weekday and seasonal volume,
    then a local time of day that is mostly business hours in the lead's own time zone."""
    n = country.size
    first_day = np.datetime64(config.start_utc.date(), "D")
    last_day = np.datetime64((config.now - timedelta(microseconds=1)).date(), "D")
    days = np.arange(first_day, last_day + 1)
    day_number = days.astype(np.int64)
    weekday = (day_number + 3) % 7
    month = days.astype("datetime64[M]").astype(np.int64) % 12
    month_day = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
    holidays = ((month == 11) & (month_day >= 24)) | ((month == 0) & (month_day == 1))
    trend = 1.0 + 0.15 * np.arange(days.size) / max(1, days.size - 1)
    weight = np.array(WEEKDAY_VOLUME)[weekday] * np.array(MONTH_VOLUME)[month] * trend * np.where(holidays, 0.35, 1.0)
    day = rng.choice(days.size, n, p=weight / weight.sum())
    business = rng.random(n) < BUSINESS_HOURS_SHARE
    seconds = np.where(
        business,
        np.clip(rng.normal(13.0 * 3600, 2.6 * 3600, n), 6 * 3600, 21 * 3600),
        rng.uniform(0, 86_400, n),
    ).astype(np.int64)
    # Local wall clock → UTC with each country's offset on that date (daylight saving included).
    timezones = sorted({c[2] for c in COUNTRIES})
    tz_of_country = np.array([timezones.index(c[2]) for c in COUNTRIES])
    day_us = day_number * US_PER_DAY
    offsets = np.stack([day_us + 12 * 3_600_000_000 - local_instants(days, 720, tz) for tz in timezones])
    created = day_us[day] + seconds * 1_000_000 - offsets[tz_of_country[country], day]
    # Leads whose local day straddles the edge of history wrap around, keeping exactly n leads.
    start_us = int(config.start_utc.timestamp()) * 1_000_000
    span = int(config.now.timestamp()) * 1_000_000 - start_us
    return np.asarray(start_us + np.mod(created - start_us, span), dtype=np.int64)
