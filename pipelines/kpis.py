"""KPIs of routing history for the app, notebooks and CLI: one per-lead history frame from the
warehouse, then the pure functions in ``models.kpi``."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from models.kpi import ASSUMPTIONS, Dimension, kpis_by
from models.policy.metrics import coefficient_of_variation, gini
from pipelines.warehouse import Warehouse, query_frame

DIMENSIONS: tuple[Dimension, ...] = ("team", "source", "region", "week", "industry", "size")
KPI_ASSUMPTIONS = ASSUMPTIONS


def lead_history(warehouse: Warehouse, start: datetime | None = None, end: datetime | None = None) -> pl.DataFrame:
    """One row per lead created in ``[start, end)``: canonical fields, latest decision's team and
    rep, time to first touch (minutes), stage flags (contacted, meeting, qualified, converted,
    final) and revenue."""
    with warehouse.connect() as con:
        return query_frame(
            con,
            """
            WITH last_decision AS (
                SELECT lead_id, arg_max(team, decided_at) AS team, arg_max(rep_id, decided_at) AS rep_id
                FROM decisions GROUP BY lead_id
            ),
            per_lead AS (
                SELECT lead_id,
                       bool_or(event = 'contacted') AS contacted,
                       bool_or(event IN ('meeting', 'qualified', 'converted')) AS meeting,
                       bool_or(event IN ('qualified', 'converted')) AS qualified,
                       bool_or(event = 'converted') AS converted,
                       bool_or(event IN ('converted', 'lost')) AS final,
                       sum(value) FILTER (event = 'converted') AS revenue,
                       min(occurred_at) FILTER (event = 'contacted') AS first_touch
                FROM outcomes GROUP BY lead_id
            )
            SELECT l.lead_id, l.created_at, l.source, l.region, l.industry, l.employees, l.country,
                   d.team, d.rep_id,
                   epoch(o.first_touch - l.created_at) / 60 AS minutes_to_touch,
                   coalesce(o.contacted, false) AS contacted,
                   coalesce(o.meeting, false) AS meeting,
                   coalesce(o.qualified, false) AS qualified,
                   coalesce(o.converted, false) AS converted,
                   coalesce(o.final, false) AS final,
                   coalesce(o.revenue, 0) AS revenue
            FROM leads l
            LEFT JOIN last_decision d USING (lead_id)
            LEFT JOIN per_lead o USING (lead_id)
            WHERE (CAST(? AS TIMESTAMPTZ) IS NULL OR l.created_at >= ?)
              AND (CAST(? AS TIMESTAMPTZ) IS NULL OR l.created_at < ?)
            ORDER BY l.created_at, l.lead_id
            """,
            [start, start, end, end],
        )


def kpi_table(warehouse: Warehouse, by: Dimension) -> pl.DataFrame:
    """Headline KPIs by one dimension (see ``models.kpi.kpis_by``)."""
    return kpis_by(lead_history(warehouse), by)


_REP_LOADS = """
SELECT r.team, r.rep_id, count(d.decision_id) AS leads
FROM reps r
JOIN teams t ON t.team = r.team AND t.kind = 'sales'
LEFT JOIN decisions d ON d.rep_id = r.rep_id AND d.team = r.team
WHERE r.active OR d.decision_id IS NOT NULL
GROUP BY r.team, r.rep_id
"""


def distribution_fairness(warehouse: Warehouse) -> pl.DataFrame:
    """How evenly each sales team's logged leads are spread over its reps: ``team, reps, leads,
    gini`` (0 = perfectly even), ``cv`` (std / mean) and ``top_rep_share``. Active reps without a
    lead count as zero; unweighted (a weighted policy is uneven on purpose)."""
    with warehouse.connect(read_only=True) as con:
        loads = query_frame(con, _REP_LOADS)
    rows = []
    for (team,), part in loads.sort("team", "rep_id").group_by(["team"], maintain_order=True):
        counts = part["leads"].cast(pl.Float64).to_numpy()
        total = float(counts.sum())
        rows.append(
            {
                "team": team,
                "reps": int(counts.size),
                "leads": int(total),
                "gini": gini(counts),
                "cv": coefficient_of_variation(counts),
                "top_rep_share": float(counts.max()) / total if total else None,
            }
        )
    schema = {"team": pl.String, "reps": pl.Int64, "leads": pl.Int64, "gini": pl.Float64, "cv": pl.Float64,
              "top_rep_share": pl.Float64}  # fmt: skip
    return pl.DataFrame(rows, schema=schema)
