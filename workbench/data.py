"""Data: import a file (optionally through a shipped mapping), see the summary and every
rejected row with its reason."""

from __future__ import annotations

import polars as pl
import streamlit as st

from models.canonical import ENTITY_NAMES
from pipelines.ingest import IngestError
from pipelines.quality import quality_trend
from pipelines.status import list_rejects, workspace_status
from pipelines.uploads import UploadError, import_upload, shipped_mappings
from workbench.common import EMPTY_HINT, workspace

settings, warehouse = workspace()
st.title("Data")

with st.form("import"):
    entity = st.selectbox("The file holds", ENTITY_NAMES, key="data_entity")
    mapping = st.selectbox("Mapping file", ["(none: canonical columns)", *shipped_mappings()], key="data_mapping")
    upload = st.file_uploader("CSV, Parquet or JSON lines", type=["csv", "parquet", "jsonl", "json", "txt"])
    submitted = st.form_submit_button("Import")
if submitted:
    if upload is None:
        st.warning("Choose a file first.")
    else:
        try:
            with st.spinner(f"Importing {upload.name} …"):
                summary = import_upload(
                    settings, entity, upload.name, upload.getvalue(), None if mapping.startswith("(") else mapping
                )
        except (IngestError, UploadError) as error:
            st.error(str(error))
        else:
            result = summary.to_json()
            st.success(
                f"{entity}: read {result['read']:,}, loaded {result['loaded']:,}, "
                f"updated {result['updated']:,} (unchanged {result['unchanged']:,}), rejected {result['rejected']:,}"
            )
            if summary.reject_reasons:
                st.table([{"problem": k, "rows": v} for k, v in summary.reject_reasons.items()])

status = workspace_status(warehouse, settings)
if not status.exists:
    st.info(EMPTY_HINT)
    st.stop()
st.subheader("Workspace")
st.dataframe([{"table": name, "rows": n} for name, n in status.tables.items()], hide_index=True)
st.subheader("Data quality trend")
trend = quality_trend(warehouse, every="week").with_columns(pl.col("period").dt.strftime("%Y-%m-%d"))
if trend.is_empty():
    st.caption("No quality checks yet: run `leadroute quality run` (the demo runs it).")
else:
    shares = [c for c in trend.columns if c in ("completeness", "matched", "duplicates") or c.startswith("flag_")]
    st.line_chart(trend.select("period", *shares[:8]), x="period")
    st.dataframe(trend, hide_index=True, width="stretch")
st.subheader("Recent imports")
st.dataframe(status.recent_imports, hide_index=True, width="stretch")
st.subheader("Rejected rows")
import_ids = sorted({int(row["import_id"]) for row in status.recent_imports}, reverse=True)
if import_ids:
    chosen = st.selectbox("Import", import_ids, key="data_import")
    _, rejects = list_rejects(warehouse, chosen, limit=500)
    if rejects:
        st.dataframe(rejects, hide_index=True, width="stretch")
    else:
        st.caption("No rejected rows in this import.")
