"""Overview: lead volume, conversion with intervals and speed-to-lead, by team, source, region, week."""

from __future__ import annotations

import polars as pl
import streamlit as st

from pipelines.kpis import DIMENSIONS, KPI_ASSUMPTIONS, kpi_table
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
