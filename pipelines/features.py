"""Warehouse → the frames the scoring core needs: leads, matured labels, decisions, reps.

Reading only: the warehouse is opened read-only and briefly, so training can run while the
endpoint and the app read the same workspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from pipelines.warehouse import SchemaTooNewError, Warehouse, query_frame, scalar

LEAD_COLUMNS = (
    "lead_id, created_at, email, company, account_id, industry, employees, annual_revenue, country, region, "
    "source, title, seniority, product_interest, score, CAST(extra AS VARCHAR) AS extra"
)


@dataclass(frozen=True)
class History:
    """What the warehouse knows, as frames.

    Attributes:
        leads: canonical lead columns plus ``extra`` (JSON text), sorted by ``created_at``.
        conversions: ``lead_id``, ``account_id``, ``occurred_at`` of every ``converted`` event
            (the first one per lead).
        decisions: the latest decision per lead: ``lead_id``, ``team``, ``rep_id``, ``decided_at``.
        reps: ``rep_id``, ``team``, ``seniority``, ``regions``, ``industries``, and from the
            extras ``languages`` (``en|es``), ``timezone``, ``working_hours`` (``09:00-17:00``).
        accounts: ``account_id``, ``owner_rep_id``.
        as_of: end of the recorded history (latest lead or outcome).
    """

    leads: pl.DataFrame
    conversions: pl.DataFrame
    decisions: pl.DataFrame
    reps: pl.DataFrame
    accounts: pl.DataFrame
    as_of: datetime | None


def load_history(warehouse: Warehouse) -> History:
    """Read the history the models learn from (raises if the warehouse does not exist)."""
    if not warehouse.path.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse.path}: import data first (leadroute ingest / demo)")
    try:
        return _read(warehouse)
    except SchemaTooNewError:
        # An older schema cannot be read read-only: migrate it once (a writer, briefly), then
        # read. A schema that is really newer than this release fails again, with its message.
        with warehouse.connect():
            pass
        return _read(warehouse)


def _read(warehouse: Warehouse) -> History:
    with warehouse.connect(read_only=True) as con:
        leads = query_frame(con, f"SELECT {LEAD_COLUMNS} FROM leads ORDER BY created_at, lead_id")
        conversions = query_frame(
            con,
            """SELECT o.lead_id, l.account_id, min(o.occurred_at) AS occurred_at
               FROM outcomes o JOIN leads l USING (lead_id)
               WHERE o.event = 'converted' GROUP BY o.lead_id, l.account_id""",
        )
        decisions = query_frame(
            con,
            """SELECT lead_id, team, rep_id, decided_at FROM decisions
               QUALIFY row_number() OVER (PARTITION BY lead_id ORDER BY decided_at DESC, decision_id DESC) = 1""",
        )
        reps = query_frame(
            con,
            """SELECT rep_id, team, seniority, regions, industries, extra->>'$.languages' AS languages,
                      extra->>'$.timezone' AS timezone, extra->>'$.working_hours' AS working_hours
               FROM reps ORDER BY rep_id""",
        )
        accounts = query_frame(con, "SELECT account_id, owner_rep_id FROM accounts")
        as_of = scalar(
            con,
            "SELECT greatest((SELECT max(created_at) FROM leads), (SELECT max(occurred_at) FROM outcomes))",
        )
    return History(leads, conversions, decisions, reps, accounts, as_of)


def matured_leads(history: History, window_days: int, as_of: datetime | None = None) -> pl.DataFrame:
    """Leads whose conversion window has closed, with ``converted`` (bool).

    A lead created less than ``window_days`` before ``as_of`` is left out: its outcome is not
    known yet, and counting it as a loss would teach the model that recent leads never convert.
    A conversion later than the window is not a conversion (the label means "within the window").
    """
    end = as_of or history.as_of
    if end is None or history.leads.height == 0:
        return history.leads.clear().with_columns(pl.lit(False).alias("converted"))
    cutoff = end - timedelta(days=window_days)
    won = history.conversions.select("lead_id", pl.col("occurred_at").alias("_won_at"))
    window = pl.duration(days=window_days)
    return (
        history.leads.filter(pl.col("created_at") <= cutoff)
        .join(won, on="lead_id", how="left", maintain_order="left")
        .with_columns(
            (pl.col("_won_at").is_not_null() & (pl.col("_won_at") <= pl.col("created_at") + window)).alias("converted")
        )
        .drop("_won_at")
    )
