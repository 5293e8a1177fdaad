"""Compare: offline A/B of two or more policies on history (``pipelines.evaluate.evaluate``, the
same call as ``leadroute evaluate``), or reopen a stored run."""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from models.ope import (
    ESTIMATOR_NAMES,
    diagnostics_table,
    differences_table,
    estimates_table,
    operational_table,
    segments_table,
)
from models.policy import PolicySpecError
from pipelines.evaluate import evaluate, list_runs, load_run
from pipelines.policies import PolicyNotFoundError
from pipelines.status import workspace_status
from workbench.common import EMPTY_HINT, policy_choices, printable, workspace

ESTIMATOR_WORDS = {
    "dm": "direct method: the reward model's prediction at the policy's destination",
    "ips": "inverse propensity weighting of the logged outcomes",
    "snips": "self-normalised inverse propensity weighting",
    "dr": "doubly robust: the model, corrected by the weighted logged outcomes",
    "sndr": "self-normalised doubly robust",
    "clipped_dr": "doubly robust with weights capped at 50 (narrower, slightly biased)",
}

settings, warehouse = workspace()
st.title("Compare")
status = workspace_status(warehouse, settings)
if not status.exists or not status.tables.get("leads"):
    st.info(EMPTY_HINT)
    st.stop()
if not status.tables.get("decisions"):
    st.info("No logged routing decisions yet: offline comparison needs the history of how leads were routed.")
    st.stop()

choices = policy_choices(settings)
defaults = [c for c in ("seed", "best_fit") if c in choices] or choices[:2]
with st.form("compare"):
    picked = st.multiselect(
        "Policies (the first is the baseline of the differences)", choices, default=defaults, key="compare_policies"
    )
    estimators = st.multiselect(
        "Estimators", list(ESTIMATOR_NAMES), default=["dm", "dr", "clipped_dr"], key="compare_estimators"
    )
    folds = st.number_input("Cross-fitting folds", min_value=2, max_value=10, value=5, key="compare_folds")
    run = st.form_submit_button("Run comparison", type="primary")

result: dict[str, Any] | None = None
if run:
    if len(picked) < 2 or not estimators:
        st.warning("Pick at least two policies and one estimator.")
    else:
        try:
            with st.status("Comparing policies on history …", expanded=True) as progress:
                evaluated = evaluate(
                    settings, picked, estimators=estimators, folds=int(folds), progress=lambda m: progress.write(m)
                )
                progress.update(label=f"Stored as run {evaluated.run_id}", state="complete", expanded=False)
        except (ValueError, PolicyNotFoundError, PolicySpecError) as error:
            st.error(str(error))
        else:
            result = evaluated.to_json()
            st.session_state["compare_run"] = evaluated.run_id

runs = list_runs(settings)
if result is None and runs.height:
    ids = runs["run_id"].to_list()
    last = st.session_state.get("compare_run")
    chosen = st.selectbox(
        "Or reopen a stored run", ids, index=ids.index(last) if last in ids else 0, key="compare_stored"
    )
    result = load_run(settings, chosen)
if result is None:
    st.info("No comparison yet: pick two or more policies and press **Run comparison**.")
    st.stop()

st.subheader(f"Run {result['run_id']}: {result['n_leads']:,} matured leads")
for name, reason in result.get("unavailable", {}).items():
    st.warning(f"**{name}** is not available: {reason}")
diffs = differences_table(result).filter(pl.col("valid"))
baseline = result["policies"][0]["policy"]
if diffs.height:
    st.markdown(f"**Paired difference in conversion rate against {baseline}** (95% intervals, same leads)")
    base = alt.Chart(diffs.to_pandas())
    rule = base.mark_rule().encode(
        y=alt.Y("estimator:N", title=None),
        x=alt.X("ci_low:Q", title=f"difference vs {baseline}", axis=alt.Axis(format="%")),
        x2="ci_high:Q",
        color="policy:N",
    )
    point = base.mark_point(filled=True, size=60).encode(y="estimator:N", x="value:Q", color="policy:N")
    zero = alt.Chart(pl.DataFrame({"x": [0.0]}).to_pandas()).mark_rule(strokeDash=[4, 4]).encode(x="x:Q")
    st.altair_chart((rule + point + zero).facet(row=alt.Row("policy:N", title=None)), width="stretch")
    st.dataframe(diffs.drop("valid"), hide_index=True, width="stretch")
st.markdown("**Conversion rate per policy**")
st.dataframe(estimates_table(result), hide_index=True, width="stretch")
st.markdown("**Per segment** (doubly robust where available, else the direct method)")
segments = segments_table(result)
if segments.height:
    segment = st.selectbox("Segment", segments["segment"].unique(maintain_order=True).to_list(), key="compare_segment")
    st.dataframe(segments.filter(pl.col("segment") == segment), hide_index=True, width="stretch")
else:
    st.caption("No segment table: the log has no propensities or no reward model was fitted.")
st.markdown("**Operations** (each policy replayed over every lead with capacity enforced)")
st.dataframe(operational_table(result), hide_index=True, width="stretch")
st.markdown("**Diagnostics**")
st.dataframe(diagnostics_table(result), hide_index=True, width="stretch")
with st.expander("What the diagnostics and assumptions mean", expanded=False):
    for name in result.get("estimators", []):
        st.markdown(f"- **{name}**: {ESTIMATOR_WORDS.get(name, name)}")
    st.markdown(
        "- **effective sample size**: how many leads the weighted estimators really rest on;"
        " below ~1,000 a few large weights dominate and intervals may be too narrow.\n"
        "- **share matched**: how often the policy would have routed a lead where the log did;"
        " only those leads carry weighted evidence.\n"
        "- **support deficit**: how much of the policy's routing went where the log never tried;"
        " only the reward model speaks for it.\n"
        "- **mean weight**: should be close to 1 − support deficit when the logged propensities are right."
    )
    st.markdown("**Assumptions**")
    for line in result.get("assumptions", []):
        st.markdown(f"- {line}")
    for line in result.get("notes", []):
        st.markdown(f"- note: {line}")
if runs.height:
    with st.expander("Stored runs"):
        st.dataframe(printable(runs), hide_index=True, width="stretch")
