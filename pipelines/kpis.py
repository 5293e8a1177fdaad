"""Headline KPIs of routing history, by team, source, region or week.

DuckDB aggregates; the core (``models.intervals``) adds the intervals. Assumptions stated with
the numbers: a lead counts towards conversion once it has a *final* outcome (converted or lost),
so recent leads still open do not look like losses; a lead's team is the team of its latest
decision; speed-to-lead is the time from ``created_at`` to the first ``contacted`` event.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from models.intervals import wilson_interval
from pipelines.warehouse import Warehouse, query_frame

Dimension = Literal["team", "source", "region", "week"]
DIMENSIONS: tuple[Dimension, ...] = ("team", "source", "region", "week")

# Each dimension is a fixed SQL expression chosen from this table, never user text.
_GROUP_SQL: dict[Dimension, str] = {
    "team": "coalesce(d.team, '(unrouted)')",
    "source": "coalesce(l.source, '(unknown)')",
    "region": "coalesce(l.region, '(unknown)')",
    "week": "strftime(date_trunc('week', l.created_at), '%Y-%m-%d')",
}

KPI_ASSUMPTIONS = (
    "Conversion rate = converted ÷ leads with a final outcome (converted or lost); open leads are excluded.",
    "Intervals: 95% Wilson score intervals, assuming independent leads within a group.",
    "Team = team of the lead's latest routing decision; speed-to-lead = created_at → first 'contacted' event.",
)


def kpi_table(warehouse: Warehouse, by: Dimension) -> pl.DataFrame:
    """One row per group: leads, final outcomes, conversions, rate with 95% interval, revenue,
    speed-to-lead median and p90 (minutes)."""
    group = _GROUP_SQL[by]
    with warehouse.connect() as con:
        frame = query_frame(
            con,
            f"""
            WITH last_decision AS (
                SELECT lead_id, arg_max(team, decided_at) AS team FROM decisions GROUP BY lead_id
            ),
            per_lead AS (
                SELECT lead_id,
                       bool_or(event = 'converted') AS converted,
                       bool_or(event IN ('converted', 'lost')) AS final,
                       sum(value) FILTER (event = 'converted') AS revenue,
                       min(occurred_at) FILTER (event = 'contacted') AS first_touch
                FROM outcomes GROUP BY lead_id
            )
            SELECT {group} AS "group",
                   count(*) AS leads,
                   count(*) FILTER (o.final) AS final_outcomes,
                   count(*) FILTER (o.converted) AS converted,
                   coalesce(sum(o.revenue), 0) AS revenue,
                   quantile_cont(epoch(o.first_touch - l.created_at) / 60, 0.5) AS median_minutes_to_touch,
                   quantile_cont(epoch(o.first_touch - l.created_at) / 60, 0.9) AS p90_minutes_to_touch
            FROM leads l
            LEFT JOIN last_decision d USING (lead_id)
            LEFT JOIN per_lead o USING (lead_id)
            GROUP BY ALL ORDER BY "group"
            """,
        )
    low, high = wilson_interval(frame["converted"].to_numpy(), frame["final_outcomes"].to_numpy())
    rate = frame["converted"] / frame["final_outcomes"]
    return frame.with_columns(
        pl.when(pl.col("final_outcomes") > 0).then(rate).otherwise(None).alias("conversion_rate"),
        pl.Series("ci_low", low).fill_nan(None),
        pl.Series("ci_high", high).fill_nan(None),
    ).select(
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
