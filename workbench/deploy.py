"""Deploy: what is live, start a canary (or deploy outright), advance or roll back, the history."""

from __future__ import annotations

import streamlit as st

from models.rollout import DEFAULT_GUARDRAILS
from pipelines.deployments import deploy, describe_arms, history, live_deployment, rollback
from pipelines.policies import list_policies
from pipelines.rollout import advance, rollouts
from workbench.common import EMPTY_HINT, printable, workspace

settings, warehouse = workspace()
st.title("Deploy")
if not settings.warehouse_path.exists():
    st.info(EMPTY_HINT)
    st.stop()

live = live_deployment(settings)
if live is None:
    st.info("Nothing deployed yet: the endpoint serves the latest `seed` policy. Deploy a version below.")
else:
    st.metric("Live deployment", f"#{live[0]}")
    st.write(describe_arms(live[1]))
running = [r for r in rollouts(settings) if r.status == "running"]
if running:
    rollout = running[0]
    st.subheader(f"Canary rollout {rollout.rollout_id}")
    st.write(rollout.line())
    st.progress(rollout.share, text=" → ".join(f"{s:.0%}" for s in rollout.steps))

registered = list_policies(settings)
if registered.height == 0:
    st.info("No registered policy versions: save one on the **Rules** page or run `leadroute policy register`.")
else:
    refs = [f"{r['name']}@{r['version']}" for r in registered.iter_rows(named=True)]
    with st.form("deploy_form"):
        ref = st.selectbox("Policy version", refs, index=len(refs) - 1, key="deploy_ref")
        canary = st.slider("Canary share of traffic (%)", 1, 50, 5, key="deploy_canary")
        steps = st.text_input("Ramp steps (%)", "5,25,50,100", key="deploy_steps")
        min_decisions = st.number_input("Canary decisions per step", 1, 1_000_000, 200, key="deploy_min")
        cols = st.columns(len(DEFAULT_GUARDRAILS))
        tolerances = {
            name: col.number_input(name, value=float(value), format="%.3f", key=f"deploy_g_{name}")
            for col, (name, value) in zip(cols, DEFAULT_GUARDRAILS.items(), strict=True)
        }
        reason = st.text_input("Why", key="deploy_reason")
        as_canary = st.form_submit_button("Start canary")
        at_once = st.form_submit_button("Deploy to all traffic")
    if as_canary or at_once:
        try:
            deployed = deploy(
                settings,
                ref,
                canary_pct=float(canary) if as_canary else None,
                steps=steps,
                guardrails=tolerances,
                min_decisions=int(min_decisions),
                reason=reason or None,
            )
        except ValueError as error:
            st.error(str(error))
        else:
            what = f"canary at {deployed.share:.0%}" if deployed.kind == "canary" else "all traffic"
            st.success(f"Deployment {deployed.deployment_id}: {deployed.policy}@{deployed.version}, {what}.")

left, right = st.columns(2)
if left.button("Look at the canary now", key="deploy_advance", disabled=not running):
    status = advance(settings)
    if status is not None:
        st.info(status.line())
        if status.verdict is not None:
            st.dataframe([c.to_json() for c in status.verdict.checks], hide_index=True, width="stretch")
if right.button("Roll back", key="deploy_rollback", disabled=live is None):
    try:
        back = rollback(settings, reason="rolled back from the workbench")
    except ValueError as error:
        st.error(str(error))
    else:
        st.success(f"Deployment {back.deployment_id}: back to {back.policy}@{back.version}.")

st.subheader("History")
past = history(settings)
if past.height == 0:
    st.caption("No deployments yet.")
else:
    st.dataframe(printable(past), hide_index=True, width="stretch")
