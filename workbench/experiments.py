"""Experiments: running and finished online tests — allocation and SRM, the lift with its
confidence sequence over time, guardrails, the verdict, predicted vs realised; start and stop."""

from __future__ import annotations

from datetime import UTC, datetime, time

import polars as pl
import streamlit as st

from pipelines.experiments import list_experiments, read_out, start, stop
from workbench.common import EMPTY_HINT, policy_choices, printable, workspace

settings, warehouse = workspace()
st.title("Experiments")
if not settings.warehouse_path.exists():
    st.info(EMPTY_HINT)
    st.stop()

experiments = list_experiments(settings)
with st.expander("Start an experiment", expanded=experiments.height == 0):
    with st.form("experiment_start"):
        name = st.text_input("Name", key="exp_name", placeholder="e.g. best-fit-vs-round-robin")
        chosen = st.multiselect("Policies (the first is the control)", policy_choices(settings), key="exp_policies")
        horizon = st.number_input("Conversion counted within (days)", 1, 365, 30, key="exp_horizon")
        expected = st.number_input("Expected matured leads at the end (tunes the boundary)", 10, 10_000_000, 5_000)
        launch = st.form_submit_button("Start (the endpoint picks it up without a restart)")
    if launch:
        try:
            with st.spinner("Estimating each arm's lift offline before launch …"):
                started = start(settings, name, chosen, horizon_days=int(horizon), expected_leads=int(expected))
        except ValueError as error:
            st.error(str(error))
        else:
            st.success(f"Experiment {name} started (deployment {started['deployment_id']}).")
            experiments = list_experiments(settings)

if experiments.height == 0:
    st.info("No experiments yet: start one above, or `leadroute experiment start NAME --policy A --policy B`.")
    st.stop()

st.dataframe(printable(experiments), hide_index=True, width="stretch")
name = st.selectbox("Experiment", experiments["experiment"].to_list(), key="exp_pick")
status = experiments.filter(pl.col("experiment") == name)["status"][0]
as_of = None
if status == "running":
    day = st.date_input("Read out as of", value=datetime.now(UTC).date(), key="exp_as_of")
    as_of = max(datetime.combine(day, time(23, 59, 59), tzinfo=UTC), datetime.now(UTC))
with st.spinner("Loading the endpoint's logs and computing the read-out …"):
    view = read_out(settings, name, as_of=as_of)

verdict = view["verdict"]
(st.success if verdict.get("winner") else st.info)(f"Verdict: {verdict['message']}")
st.subheader("Allocation")
srm = view["srm"]
(st.error if srm["mismatch"] else st.caption)(f"Sample ratio: {srm['message']}")
st.dataframe(
    [
        {
            "arm": a["arm"],
            "policy": f"{a['policy']}@{a['version']}",
            "share": a["share"],
            "decided": a["decided"],
            "matured": a["matured"],
            "conversions": a["conversions"],
            "conversion rate": a["conversion_rate"],
        }
        for a in view["arms"]
    ],
    hide_index=True,
)
st.subheader("Lift")
rows = []
for c in view["comparisons"]:
    if c.get("comparison") is None:
        rows.append({"arm": c["arm"], "metric": c["metric"], "note": c["note"]})
        continue
    h = c["headline"]
    predicted = c.get("predicted")
    rows.append(
        {
            "arm": c["arm"],
            "metric": c["metric"],
            "lift": h["lift"],
            "ci low (always valid)": h["ci_low"],
            "ci high (always valid)": h["ci_high"],
            "p (always valid)": h["p_value"],
            "Holm-adjusted p": c.get("adjusted_p_value"),
            "predicted offline": None if predicted is None else predicted["value"],
            "note": h["basis"],
        }
    )
st.dataframe(rows, hide_index=True, width="stretch")
if view["path"]:
    st.caption("The primary lift and its confidence sequence after each day of decisions (valid at every look).")
    path = pl.DataFrame(view["path"]).select("day", "lift", "ci_low", "ci_high")
    st.line_chart(path, x="day")
st.subheader("Guardrails")
st.dataframe(
    [{"arm": g["arm"]} | {k: c[k] for k in ("name", "breached", "measurable", "note")} for g in view["guardrails"]
     for c in g["checks"]],
    hide_index=True,
    width="stretch",
)  # fmt: skip
for note in view["notes"]:
    st.caption(note)

if status == "running":
    st.subheader("Stop")
    labels = [a["arm"] for a in view["arms"]]
    winner = st.selectbox("Winner", ["auto (the verdict)", *labels, "none (keep the control)"], key="exp_winner")
    if st.button("Stop and deploy", key="exp_stop"):
        pick = "auto" if winner.startswith("auto") else None if winner.startswith("none") else winner
        try:
            result = stop(settings, name, winner=pick, as_of=as_of)
        except ValueError as error:
            st.error(str(error))
        else:
            st.success(f"Stopped: {result['verdict']['message']}")
