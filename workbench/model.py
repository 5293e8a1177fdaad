"""Model: MLflow runs and metrics, calibration, feature importance, drift, champion vs challenger
(``pipelines.model_report``), and a retrain button (``pipelines.train.retrain``, the same as
``leadroute retrain``)."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import polars as pl
import streamlit as st

from pipelines.model_report import ModelNotFoundError, ModelReport, model_report, model_runs
from pipelines.registry import MODEL_NAMES, ModelName, alias_version
from pipelines.settings import Settings
from pipelines.status import workspace_status
from pipelines.train import retrain
from workbench.common import EMPTY_HINT, workspace

settings, warehouse = workspace()
st.title("Model")
status = workspace_status(warehouse, settings)
if not status.exists or not status.tables.get("leads"):
    st.info(EMPTY_HINT)
    st.stop()

if st.button("Retrain now", key="model_retrain", help="One champion/challenger cycle on the latest matured data"):
    try:
        with st.status("Retraining the scoring models …", expanded=True) as progress:
            trained = retrain(settings, progress=lambda m: progress.write(m))
            progress.update(label=f"Retrained in {trained.seconds:.1f} s", state="complete", expanded=False)
    except (ValueError, FileNotFoundError) as error:
        st.error(str(error))
    else:
        st.session_state["model_retrained"] = trained.lines()
for line in st.session_state.get("model_retrained", []):
    st.caption(line)

runs = model_runs(settings)
if runs.is_empty():
    st.info("No model trained yet: press **Retrain now**, or run `leadroute train` (the demo trains them).")
    st.stop()
st.subheader("Training runs (MLflow)")
st.dataframe(runs, hide_index=True, width="stretch")


@st.cache_data(show_spinner=False, max_entries=8)
def cached_report(
    home: str, tracking_uri: str | None, name: ModelName, versions: tuple[int | None, ...]
) -> ModelReport:
    """``model_report`` once per model version pair (a retrain makes new versions, so a new entry)."""
    return model_report(Settings(home=Path(home), mlflow_tracking_uri=tracking_uri), name)


name = st.selectbox("Model", list(MODEL_NAMES), key="model_name")
versions = (alias_version(settings, name, "champion"), alias_version(settings, name, "challenger"))
try:
    with st.spinner(f"Evaluating the {name} champion on its holdout …"):
        report = cached_report(str(settings.home), settings.mlflow_tracking_uri, name, versions)
except ModelNotFoundError as error:
    st.info(f"{error}")
    st.stop()

w = report.window
st.caption(
    f"{name} v{report.champion_version} (champion): trained on {w['train_start']} … {w['train_end']},"
    f" evaluated on the holdout from {w['holdout_start']} ({report.metrics.n:,} leads)"
)
m = report.metrics
cols = st.columns(4)


def shown(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


cols[0].metric("ROC AUC", shown(m.roc_auc, 3))
cols[1].metric("Calibration error (ECE)", shown(m.ece, 3))
cols[2].metric("Brier score", shown(m.brier, 4))
cols[3].metric("Top-decile lift", shown(m.top_decile_lift, 2))

left, right = st.columns(2)
with left:
    st.markdown("**Calibration** (observed rate per predicted bin, 95% Wilson intervals)")
    rel = report.reliability.to_pandas()
    top = float(max(report.reliability["mean_predicted"].max() or 0.0, report.reliability["ci_high"].max() or 0.0))  # type: ignore[arg-type]
    diagonal = alt.Chart(pl.DataFrame({"x": [0.0, top * 1.05], "y": [0.0, top * 1.05]}).to_pandas()).mark_line(
        strokeDash=[4, 4], color="grey"
    )
    points = (
        alt.Chart(rel)
        .mark_point(filled=True)
        .encode(
            x=alt.X("mean_predicted:Q", title="mean predicted probability"),
            y=alt.Y("observed_rate:Q", title="observed conversion rate"),
            size="n:Q",
        )
    )
    bars = alt.Chart(rel).mark_rule().encode(x="mean_predicted:Q", y="ci_low:Q", y2="ci_high:Q")
    st.altair_chart(diagonal.encode(x="x:Q", y="y:Q") + bars + points, width="stretch")
with right:
    st.markdown("**Feature importance** (drop in ROC AUC when a feature is shuffled)")
    if report.importance.height:
        st.bar_chart(report.importance.head(15), x="feature", y="mean", horizontal=True)
    else:
        st.caption(report.importance_note or "No importance was logged with this run.")

st.subheader(f"Drift: leads of the last {report.drift_days} days against the training window")
if report.drift.height:
    moved = report.drift.filter(pl.col("level") != "stable")
    st.caption(
        f"{moved.height} of {report.drift.height} features moved (PSI ≥ 0.1 moderate, ≥ 0.25 major)"
        + (": " + ", ".join(moved["feature"].head(5).to_list()) if moved.height else "")
    )
    st.dataframe(report.drift, hide_index=True, width="stretch")
else:
    st.caption("No recent leads to compare with the training window.")

st.subheader("Champion vs challenger")
if report.challenger is None or report.duel is None:
    st.caption("No challenger yet: the next retraining registers one.")
elif report.same_model:
    st.caption(f"The challenger is the champion (v{report.champion_version}): nothing to compare yet.")
else:
    d = report.duel
    st.dataframe(
        pl.DataFrame(
            [
                {"alias": "champion", "version": report.champion_version, **m.to_json()},
                {"alias": "challenger", "version": report.challenger_version, **report.challenger.to_json()},
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    if d.brier_diff is not None and d.brier_ci_low is not None and d.brier_ci_high is not None:
        st.caption(
            f"Brier score difference (challenger − champion, paired on {d.n:,} leads): {d.brier_diff:+.5f}"
            f" [{d.brier_ci_low:+.5f}, {d.brier_ci_high:+.5f}]; negative means the challenger forecasts better."
        )
