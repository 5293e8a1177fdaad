"""KPIs of routing history, computed from one per-lead frame (pure polars + numpy/scipy).

The per-lead *history* frame (built by ``pipelines.kpis.lead_history``) has one row per lead:
its canonical fields, ``team``/``rep_id`` of its latest decision, ``minutes_to_touch`` (to the
first ``contacted`` event, null if never), stage flags ``contacted``, ``meeting``,
``qualified``, ``converted``, ``final`` (converted or lost) and ``revenue``.

Assumptions, stated with every table: a lead counts towards conversion once it has a final
outcome, so open leads are not losses; intervals are 95% Wilson intervals assuming independent
leads within a group.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from models.intervals import wilson_interval
from models.shrinkage import shrink_rates

Dimension = Literal["team", "source", "region", "week", "industry", "size"]

SIZE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("1-49", 0, 49),
    ("50-199", 50, 199),
    ("200-999", 200, 999),
    ("1000-4999", 1000, 4999),
    ("5000+", 5000, 2**62),
)

TOUCH_BANDS: tuple[tuple[str, float, float], ...] = (
    ("< 5 min", 0.0, 5.0),
    ("5-15 min", 5.0, 15.0),
    ("15-60 min", 15.0, 60.0),
    ("1-4 h", 60.0, 240.0),
    ("4-24 h", 240.0, 1440.0),
    ("> 24 h", 1440.0, float("inf")),
)

ASSUMPTIONS = (
    "Conversion rate = converted ÷ leads with a final outcome (converted or lost); open leads are excluded.",
    "Intervals: 95% Wilson score intervals, assuming independent leads within a group.",
    "Team = team of the lead's latest routing decision; speed-to-lead = created_at → first 'contacted' event.",
)


def group_expression(by: Dimension) -> pl.Expr:
    """The grouping column for a dimension (missing values become an explicit label)."""
    if by == "week":
        return pl.col("created_at").dt.truncate("1w").dt.strftime("%Y-%m-%d").alias("group")
    if by == "size":
        band = pl.lit("(unknown)")
        for label, low, high in reversed(SIZE_BANDS):
            band = pl.when(pl.col("employees").is_between(low, high)).then(pl.lit(label)).otherwise(band)
        return band.alias("group")
    label = "(unrouted)" if by == "team" else "(unknown)"
    return pl.col(by).fill_null(label).alias("group")


def with_rate(table: pl.DataFrame, successes: str = "converted", trials: str = "final_outcomes") -> pl.DataFrame:
    """Add ``conversion_rate`` (null without trials) and its 95% Wilson ``ci_low``/``ci_high``."""
    low, high = wilson_interval(table[successes].to_numpy(), table[trials].to_numpy())
    return table.with_columns(
        pl.when(pl.col(trials) > 0).then(pl.col(successes) / pl.col(trials)).otherwise(None).alias("conversion_rate"),
        pl.Series("ci_low", low).fill_nan(None),
        pl.Series("ci_high", high).fill_nan(None),
    )


def kpis_by(history: pl.DataFrame, by: Dimension) -> pl.DataFrame:
    """Leads, final outcomes, conversions with rate and interval, revenue, speed-to-lead."""
    table = (
        history.group_by(group_expression(by))
        .agg(
            pl.len().alias("leads"),
            pl.col("final").sum().alias("final_outcomes"),
            (pl.col("converted") & pl.col("final")).sum().alias("converted"),
            pl.col("revenue").sum().alias("revenue"),
            pl.col("minutes_to_touch").median().alias("median_minutes_to_touch"),
            pl.col("minutes_to_touch").quantile(0.9, interpolation="linear").alias("p90_minutes_to_touch"),
        )
        .sort("group")
    )
    return with_rate(table).select(
        "group",
        "leads",
        "final_outcomes",
        "converted",
        "conversion_rate",
        "ci_low",
        "ci_high",
        "revenue",
        "median_minutes_to_touch",
        "p90_minutes_to_touch",
    )


def funnel(history: pl.DataFrame, by: Dimension) -> pl.DataFrame:
    """How many leads reached each stage, per group, and the share of leads at each stage."""
    stages = ("contacted", "meeting", "qualified", "converted")
    table = (
        history.group_by(group_expression(by))
        .agg(pl.len().alias("leads"), *[pl.col(s).sum().alias(s) for s in stages])
        .sort("group")
    )
    return table.with_columns((pl.col(s) / pl.col("leads")).alias(f"{s}_share") for s in stages)


def speed_to_lead_curve(history: pl.DataFrame) -> pl.DataFrame:
    """Conversion (with interval) by time to first touch, plus a row for leads never contacted.

    Observational: faster touches may also go to better leads, so the curve shows association,
    not the causal effect of speed (the simulated company's truth has the causal decay).
    """
    minutes = pl.col("minutes_to_touch")
    band = pl.lit("never contacted")
    for label, low, high in reversed(TOUCH_BANDS):
        band = pl.when((minutes >= low) & (minutes < high)).then(pl.lit(label)).otherwise(band)
    order = {label: i for i, (label, _, _) in enumerate(TOUCH_BANDS)} | {"never contacted": len(TOUCH_BANDS)}
    table = (
        history.filter(pl.col("final"))
        .group_by(band.alias("time_to_first_touch"))
        .agg(pl.len().alias("final_outcomes"), pl.col("converted").sum().alias("converted"))
        .with_columns(pl.col("time_to_first_touch").replace_strict(order, return_dtype=pl.Int64).alias("_order"))
        .sort("_order")
        .drop("_order")
    )
    return with_rate(table)


def cohorts(history: pl.DataFrame, window_days: int, now: pl.Expr | object) -> pl.DataFrame:
    """Conversion by week of arrival; ``matured`` says whether the whole week's conversion
    window has closed by ``now`` (rates of younger cohorts are still rising)."""
    week = pl.col("created_at").dt.truncate("1w")
    table = (
        history.group_by(week.alias("week"))
        .agg(
            pl.len().alias("leads"),
            pl.col("final").sum().alias("final_outcomes"),
            (pl.col("converted") & pl.col("final")).sum().alias("converted"),
        )
        .sort("week")
        .with_columns(
            ((pl.col("week") + pl.duration(days=7 + window_days)) <= pl.lit(now)).alias("matured"),
            (pl.col("converted") / pl.col("leads")).alias("converted_share_of_leads"),
        )
    )
    return with_rate(table)


def rep_performance(history: pl.DataFrame) -> pl.DataFrame:
    """Each rep's raw conversion rate beside an empirical-Bayes estimate shrunk toward the
    rep's team (see ``models.shrinkage``), with 95% credible intervals."""

    per_rep = (
        history.filter(pl.col("rep_id").is_not_null() & pl.col("final"))
        .group_by("team", "rep_id")
        .agg(pl.len().alias("final_outcomes"), pl.col("converted").sum().alias("converted"))
        .sort("team", "rep_id")
    )
    parts = []
    for _, group in per_rep.group_by("team", maintain_order=True):
        shrunk = shrink_rates(group["converted"].to_numpy(), group["final_outcomes"].to_numpy())
        parts.append(
            group.with_columns(
                (pl.col("converted") / pl.col("final_outcomes")).alias("raw_rate"),
                pl.Series("shrunk_rate", shrunk.rate),
                pl.Series("shrunk_low", shrunk.low),
                pl.Series("shrunk_high", shrunk.high),
                pl.lit(shrunk.prior.mean).alias("team_prior_mean"),
                pl.lit(shrunk.note).alias("note"),
            )
        )
    if not parts:
        return per_rep
    return pl.concat(parts)
