"""Speed-to-lead KPIs: time to first touch (median, p90) and SLA attainment by a dimension.

:func:`first_touch_frame` builds one row per lead from its routing decision (the first hop of
its chain), its touch events and the SLA that applied; :func:`sla_kpis` groups it by team, rep,
source or policy version. Attainment = leads touched by the first owner's deadline ÷ leads
whose deadline has passed or who were touched (a lead still inside its SLA is not counted yet),
with a 95% Wilson interval assuming independent leads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import polars as pl

from models.intervals import wilson_interval
from models.policy.spec import Sla
from models.sla.machine import CalendarOf, Hop, deadline_of

SlaDimension = Literal["team", "rep_id", "source", "policy_version"]
SLA_DIMENSIONS: tuple[SlaDimension, ...] = ("team", "rep_id", "source", "policy_version")
DEFAULT_TOUCH = ("contacted", "meeting")

FRAME_SCHEMA: dict[str, pl.DataType] = {
    "lead_id": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
    "team": pl.String(),
    "rep_id": pl.String(),
    "source": pl.String(),
    "policy_version": pl.String(),
    "minutes_to_first_touch": pl.Float64(),
    "has_sla": pl.Boolean(),
    "deadline": pl.Datetime("us", "UTC"),
    "met": pl.Boolean(),
    "reassigned": pl.Boolean(),
}


def first_touch_frame(
    decisions: pl.DataFrame,
    outcomes: pl.DataFrame,
    leads: pl.DataFrame,
    sla_of: Callable[[str | None, int | None, str | None], Sla | None],
    calendar: CalendarOf,
    now: datetime,
) -> pl.DataFrame:
    """One row per routed lead (see :data:`FRAME_SCHEMA`).

    Args:
        decisions: ``lead_id, decided_at, team, rep_id, policy, policy_version, rule, sla_root``
            (``sla_root`` null for a routing decision, else the SLA hop's first decision).
        outcomes: ``lead_id, event, occurred_at``.
        leads: ``lead_id, created_at, source``.
        sla_of: the SLA of ``(policy, version, rule)`` (``None``: no SLA).
        calendar: business calendar of a rep.
        now: the clock: a lead untouched before a deadline still ahead is pending (``met`` null).
    """
    if "sla_root" not in decisions.columns:
        decisions = decisions.with_columns(pl.lit(None, pl.String).alias("sla_root"))
    hopped = set(decisions.filter(pl.col("sla_root").is_not_null())["lead_id"].cast(pl.String).to_list())
    roots = (
        decisions.filter(pl.col("sla_root").is_null())
        .with_columns(pl.col("lead_id").cast(pl.String))
        .sort("decided_at")
        .unique("lead_id", keep="last", maintain_order=True)
    )
    touches: dict[str, list[tuple[str, datetime]]] = {}
    for lead_id, event, at in outcomes.select("lead_id", "event", "occurred_at").iter_rows():
        touches.setdefault(str(lead_id), []).append((str(event), _utc(at)))
    info = {str(r[0]): (r[1], r[2]) for r in leads.select("lead_id", "created_at", "source").iter_rows()}
    moment = _utc(now)
    rows = []
    for lead_id, decided_at, team, rep_id, policy, version, rule in roots.select(
        "lead_id", "decided_at", "team", "rep_id", "policy", "policy_version", "rule"
    ).iter_rows():
        if lead_id not in info:
            continue
        created, source = info[lead_id]
        sla = sla_of(policy, version, rule) if rep_id is not None else None
        events = sla.touch_events if sla is not None else DEFAULT_TOUCH
        start = _utc(decided_at)
        first = min((at for e, at in touches.get(lead_id, []) if e in events and at >= _utc(created)), default=None)
        deadline = met = None
        if sla is not None:
            deadline = deadline_of(Hop("", start, rep_id, team, "assign"), sla, calendar)
            if first is not None and deadline is not None:
                met = first <= deadline
            elif deadline is not None and deadline <= moment:
                met = False
        rows.append(
            (
                lead_id,
                _utc(created),
                team,
                rep_id,
                source,
                f"{policy}@{version if version is not None else 'shipped'}",
                None if first is None else (first - _utc(created)).total_seconds() / 60.0,
                sla is not None,
                deadline,
                met,
                lead_id in hopped,
            )
        )
    return pl.DataFrame(rows, schema=FRAME_SCHEMA, orient="row")


def sla_kpis(frame: pl.DataFrame, by: SlaDimension) -> pl.DataFrame:
    """Per group: leads, touched, median and p90 minutes to first touch, leads with an SLA,
    leads whose SLA is decided (``due``), met, attainment with its 95% Wilson interval, and
    leads re-assigned by an SLA."""
    table = (
        frame.group_by(pl.col(by).fill_null("(none)").alias("group"))
        .agg(
            pl.len().alias("leads"),
            pl.col("minutes_to_first_touch").is_not_null().sum().alias("touched"),
            pl.col("minutes_to_first_touch").median().alias("median_minutes_to_first_touch"),
            pl.col("minutes_to_first_touch").quantile(0.9, interpolation="linear").alias("p90_minutes_to_first_touch"),
            pl.col("has_sla").sum().alias("with_sla"),
            pl.col("met").is_not_null().sum().alias("due"),
            pl.col("met").fill_null(False).sum().alias("met"),
            pl.col("reassigned").sum().alias("reassigned"),
        )
        .sort("group")
    )
    low, high = wilson_interval(table["met"].to_numpy(), table["due"].to_numpy())
    return table.with_columns(
        pl.when(pl.col("due") > 0).then(pl.col("met") / pl.col("due")).otherwise(None).alias("attainment"),
        pl.Series("attainment_low", low).fill_nan(None),
        pl.Series("attainment_high", high).fill_nan(None),
    )


def _utc(moment: datetime) -> datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
