"""Monitor: the endpoint's live decisions from its log, destination mix drift, notifications,
latency and errors from its /metrics when ``LEADROUTE_ENDPOINT_URL`` (and ``LEADROUTE_API_KEY``)
are set, and alerts on stated thresholds (``pipelines.monitor``)."""

from __future__ import annotations

import os
from datetime import timedelta

import streamlit as st

from models.sla.kpi import SLA_DIMENSIONS
from pipelines.monitor import ALERT_RULES, decision_stream, monitor
from pipelines.sla import sla_kpi_table
from workbench.common import printable, workspace

WINDOWS = {"15 minutes": timedelta(minutes=15), "1 hour": timedelta(hours=1), "1 day": timedelta(days=1)}

settings, _ = workspace()
st.title("Monitor")
url = os.environ.get("LEADROUTE_ENDPOINT_URL") or None
key = os.environ.get("LEADROUTE_API_KEY") or None
span = st.selectbox("Window (recent vs the one before)", list(WINDOWS), index=1, key="monitor_window")
summary = monitor(settings, window=WINDOWS[span], endpoint_url=url, api_key=key)

if summary.n_decisions == 0:
    st.info(
        f"No decisions logged yet in {settings.decision_log_dir}: start the endpoint (`leadroute serve`)"
        " and send it leads; every decision it makes appears here."
    )
else:
    assert summary.last is not None and summary.first is not None
    cols = st.columns(4)
    cols[0].metric("Decisions logged", f"{summary.n_decisions:,}")
    recent = summary.mix.n_recent if summary.mix else 0
    cols[1].metric(f"In the last {span}", f"{recent:,}")
    n = summary.notifications
    cols[2].metric("Notifications delivered", f"{n.delivered:,} of {n.requested:,}")
    cols[3].metric("Notifications overdue", f"{n.overdue:,}")
    st.caption(
        f"Log from {summary.first:%Y-%m-%d %H:%M} to {summary.last:%Y-%m-%d %H:%M:%S} UTC;"
        f" windows end at the latest decision."
    )

st.subheader("Alerts")
if summary.alerts:
    for alert in summary.alerts:
        (st.error if alert.level == "alert" else st.warning)(f"**{alert.what}**: {alert.message}")
else:
    st.success("No alert.")
with st.expander("Alert rules"):
    for rule in ALERT_RULES:
        st.markdown(f"- {rule}")

st.subheader("Endpoint")
if summary.endpoint is not None:
    e = summary.endpoint
    ecols = st.columns(5)
    for col, label, value in zip(ecols[:3], ("p50", "p95", "p99"), (e.p50_s, e.p95_s, e.p99_s), strict=True):
        col.metric(f"Latency {label}", "—" if value is None else f"{value * 1000:.1f} ms")
    ecols[3].metric("5xx errors", f"{e.errors_5xx:,} of {e.requests:,}")
    ecols[4].metric("Notification failures", f"{e.notification_failures:g}")
    st.caption(f"Latency of {e.latency_route or 'all routes'} since the endpoint started (Prometheus histogram).")
elif summary.endpoint_error:
    st.warning(summary.endpoint_error)
else:
    st.caption(
        "Latency and error rates come from the endpoint's /metrics: set LEADROUTE_ENDPOINT_URL and"
        " LEADROUTE_API_KEY to show them. The decision log alone gives what follows."
    )


def sla_section() -> None:
    """Speed to lead and SLA attainment from the warehouse; stuck leads from the endpoint."""
    st.subheader("Speed to lead and SLAs")
    if summary.endpoint is not None and summary.endpoint.stuck_leads:
        stuck = summary.endpoint.stuck_leads
        scols = st.columns(len(stuck))
        for col, (kind, count) in zip(scols, sorted(stuck.items()), strict=True):
            col.metric(f"Stuck: {kind.replace('_', ' ')}", f"{count:,}")
    by = st.selectbox("By", SLA_DIMENSIONS, key="monitor_sla_by")
    if not settings.warehouse_path.exists():
        st.caption("No warehouse yet: import history or run `leadroute demo`.")
        return
    table = sla_kpi_table(settings, by)
    if table.is_empty():
        st.caption("No routed leads in the warehouse yet (`leadroute logs load` brings the endpoint's home).")
    else:
        st.caption(
            "Minutes from the decision to the first touch (contacted or meeting) and, for leads whose"
            " policy rule has an SLA, the share met with its 95% Wilson interval (`pipelines.sla`)."
        )
        st.dataframe(table, hide_index=True, width="stretch")


if summary.n_decisions:
    mix = summary.mix
    st.subheader("Destination mix: recent vs previous window")
    if mix is not None:
        if mix.psi is not None:
            st.caption(
                f"PSI {mix.psi:.3f} ({mix.level}); chi-square {mix.chi2:.1f}, p = {mix.p_value:.3g};"
                f" {mix.n_recent:,} recent and {mix.n_previous:,} previous decisions."
            )
        else:
            st.caption(mix.note)
        chart = mix.table.unpivot(index="team", on=["previous_share", "recent_share"])
        st.bar_chart(chart, x="team", y="value", color="variable", stack=False)
        st.dataframe(mix.table, hide_index=True, width="stretch")
    if summary.per_policy.height:
        st.markdown("**Recent decisions by policy version and arm**")
        st.dataframe(summary.per_policy, hide_index=True, width="stretch")
    sla_section()
    st.subheader("Latest decisions")
    limit = st.number_input("Show", min_value=10, max_value=1000, value=100, step=10, key="monitor_limit")
    stream = decision_stream(settings, int(limit))
    st.dataframe(printable(stream.drop([c for c in ("decision_id",) if c in stream.columns])), hide_index=True)
    st.button("Refresh", key="monitor_refresh")  # a click reruns the page, which reads the log again
else:
    sla_section()
