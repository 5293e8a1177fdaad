"""Overview: lead volume, conversion with intervals and speed-to-lead, by team, source, region,
week; SLA breaches and attainment, distribution fairness, notification and API error rates."""

from __future__ import annotations

import os
from datetime import timedelta

import polars as pl
import streamlit as st

from models.sla.kpi import SLA_DIMENSIONS
from pipelines.kpis import DIMENSIONS, KPI_ASSUMPTIONS, distribution_fairness, kpi_table
from pipelines.monitor import monitor
from pipelines.sla import sla_kpi_table
from pipelines.status import workspace_status
from workbench.common import EMPTY_HINT, workspace

settings, warehouse = workspace()
st.title("Overview")
status = workspace_status(warehouse, settings)
if not status.exists or not status.tables.get("leads"):
    st.info(EMPTY_HINT)
    st.page_link("workbench/data.py", label="Import data")
    st.stop()

by = st.selectbox("Break down by", DIMENSIONS, index=0, key="overview_by")
table = kpi_table(warehouse, by)
totals = table.select(pl.col("leads").sum(), pl.col("final_outcomes").sum(), pl.col("converted").sum()).row(0)
left, middle, right = st.columns(3)
left.metric("Leads", f"{totals[0]:,}")
rate = totals[2] / totals[1] if totals[1] else None
middle.metric("Conversion rate (final outcomes)", "—" if rate is None else f"{rate:.1%}")
right.metric("Leads with a final outcome", f"{totals[1]:,}")

st.subheader(f"By {by}")
st.dataframe(table, hide_index=True, width="stretch")
chart = table.filter(pl.col("conversion_rate").is_not_null()).select("group", "conversion_rate")
if by == "week":
    st.line_chart(table.select("group", "leads"), x="group", y="leads")
else:
    st.bar_chart(chart, x="group", y="conversion_rate")
with st.expander("How these numbers are computed"):
    for line in KPI_ASSUMPTIONS:
        st.markdown(f"- {line}")

st.subheader("Speed to lead and SLAs")
sla_by = by if by in SLA_DIMENSIONS else "team"
sla = sla_kpi_table(settings, sla_by)
if sla.is_empty():
    st.caption("No routed leads yet.")
else:
    due, met = int(sla["due"].sum()), int(sla["met"].sum())
    s1, s2 = st.columns(2)
    s1.metric("SLA breaches", f"{due - met:,}", help="Leads whose SLA deadline passed without a touch.")
    s2.metric("SLA attainment", "—" if not due else f"{met / due:.1%}", help="Met ÷ leads whose SLA is decided.")
    st.caption(f"By {sla_by}: minutes from decision to first touch and SLA attainment (`pipelines.sla`).")
    st.dataframe(sla, hide_index=True, width="stretch")

st.subheader("Distribution fairness")
fairness = distribution_fairness(warehouse)
if fairness.is_empty():
    st.caption("No sales decisions logged yet.")
else:
    st.caption("How evenly each sales team's leads are spread over its reps (Gini 0 = even; unweighted).")
    st.bar_chart(fairness.select("team", "gini"), x="team", y="gini")
    st.dataframe(fairness, hide_index=True, width="stretch")

st.subheader("Notifications and API errors")
health = monitor(
    settings,
    window=timedelta(days=1),
    endpoint_url=os.environ.get("LEADROUTE_ENDPOINT_URL") or None,
    api_key=os.environ.get("LEADROUTE_API_KEY") or None,
)
h1, h2, h3 = st.columns(3)
n = health.notifications
h1.metric("Owner notifications delivered", f"{n.delivered:,} of {n.requested:,}")
h2.metric("Notifications overdue", f"{n.overdue:,}")
if health.endpoint is not None:
    h3.metric("API 5xx error rate", f"{health.endpoint.error_rate:.2%}")
else:
    h3.metric("API 5xx error rate", "—", help="Set LEADROUTE_ENDPOINT_URL and LEADROUTE_API_KEY to read /metrics.")
st.caption("From the endpoint's decision and notification logs; see **Monitor** for latency, drift and alerts.")
