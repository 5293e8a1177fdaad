"""Rules: edit a policy as an analyst thinks and see, on every change, its impact on history
against the live policy (``pipelines.preview.preview``); save it as a new version and see the diff."""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from models.policy import PolicySpecError, describe, describe_destination, diff_policies
from models.policy.spec import METHODS
from pipelines.policies import PolicyNotFoundError, load_roster, register, resolve, validate
from pipelines.preview import (
    NothingToPreviewError,
    live_policy_ref,
    preview,
    score_cutoffs,
    source_from_raw,
    with_cutoffs,
    with_destination,
)
from pipelines.status import workspace_status
from workbench.common import EMPTY_HINT, policy_choices, workspace

EVERY_SALES_TEAM = "(every sales team)"

settings, warehouse = workspace()
st.title("Rules")
status = workspace_status(warehouse, settings)
if not status.exists or not status.tables.get("leads"):
    st.info(EMPTY_HINT)
    st.stop()

choices = policy_choices(settings)
live = live_policy_ref(settings)
default = live.partition("@")[0] if live else "seed"
chosen = st.selectbox("Policy", choices, index=choices.index(default) if default in choices else 0, key="rules_policy")
try:
    start = resolve(settings, chosen)
except (PolicyNotFoundError, PolicySpecError) as error:
    st.error(str(error))
    st.stop()
st.caption(
    f"Editing **{start.origin}**. "
    + (
        f"Every change is previewed against the live policy **{live}**."
        if live
        else "Nothing is live yet: changes are previewed against the version you started from."
    )
)
prefix = f"rules.{start.spec.name}@{start.version or 0}"
raw: dict[str, Any] = start.raw

cutoffs = score_cutoffs(raw)
if cutoffs:
    st.subheader("Score cut-offs")
    moved: dict[float, float] = {}
    for i, cut in enumerate(cutoffs):
        moved[cut.value] = st.slider(
            f"Score cut-off {cut.value:g} (used by {', '.join(cut.rules)})",
            min_value=0.0,
            max_value=100.0,
            value=cut.value,
            step=1.0,
            key=f"{prefix}.cut.{i}",
        )
    raw = with_cutoffs(raw, moved)

roster = load_roster(settings)
teams = [EVERY_SALES_TEAM, *sorted(roster.teams)]
st.subheader("Rules (the first that matches wins)")
readable = []  # filled with each rule's condition and destination once the edits are parsed
for i, rule in enumerate(start.spec.rules):
    then = raw["rules"][i].get("then") or {}
    with st.container(border=True):
        st.markdown(f"**{i + 1}. {rule.name}**" + (f" — {rule.description}" if rule.description else ""))
        readable.append(st.empty())
        left, middle, right = st.columns([2, 2, 1])
        team_now = then.get("team") or EVERY_SALES_TEAM
        team = left.selectbox(
            "Destination",
            teams if team_now in teams else [*teams, team_now],
            index=(teams if team_now in teams else [*teams, team_now]).index(team_now),
            key=f"{prefix}.team.{i}",
        )
        method = middle.selectbox(
            "Assignment method",
            METHODS,
            index=METHODS.index(then.get("method", "round_robin")),
            key=f"{prefix}.method.{i}",
        )
        capacity = right.checkbox(
            "Respect capacity",
            value=bool(then.get("respect_capacity", then.get("method") != "account_owner")),
            key=f"{prefix}.capacity.{i}",
            help="A rep at their daily capacity is not eligible; the lead goes down the fallback chain.",
        )
        notify = right.checkbox("Notify", value=bool(then.get("notify", False)), key=f"{prefix}.notify.{i}")
        changes: dict[str, Any] = {}
        if team != team_now:
            changes["team"] = None if team == EVERY_SALES_TEAM else team
        if method != then.get("method", "round_robin"):
            changes["method"] = method
        if capacity != bool(then.get("respect_capacity", then.get("method") != "account_owner")):
            changes["respect_capacity"] = capacity
        if notify != bool(then.get("notify", False)):
            changes["notify"] = notify
        if changes:
            raw = with_destination(raw, i, **changes)

try:
    edited = source_from_raw(raw, f"{start.spec.name} (edited)")
except PolicySpecError as error:
    for problem in error.problems:
        st.error(problem)
    st.stop()
for slot, rule in zip(readable, edited.spec.rules, strict=True):
    slot.caption(f"When {describe(rule.when)}: {describe_destination(rule.then)}")
st.caption(f"A lead no rule matches goes to {describe_destination(edited.spec.fallback)}.")
report = validate(settings, edited)
for message in report.errors:
    st.error(message)
for message in report.warnings:
    st.warning(message)

st.subheader("Impact on history")
note = st.empty()


def say(message: str) -> None:
    note.caption(message)


try:
    with st.spinner("Replaying the history …"):
        result = preview(settings, edited, progress=say)
except (NothingToPreviewError, PolicyNotFoundError, ValueError) as error:
    note.empty()
    st.error(str(error))
    st.stop()
note.caption(
    f"{result.n_leads:,} historical leads replayed in time order with capacity and absences"
    f" (scores: {result.score_source}); expected conversions by the direct method on the"
    f" {result.n_matured:,} matured leads; baseline **{result.baseline.label}**"
    + (" (live)" if result.baseline_is_live else "")
    + f". Refreshed in {result.seconds:.2f} s."
)
cand, base, diff = result.expected_conversions(), result.expected_conversions("baseline"), result.difference_total()
cm = result.candidate.metrics
bm = result.baseline.metrics
c1, c2, c3, c4 = st.columns(4)
c1.metric(
    "Expected conversions",
    "—" if cand is None else f"{cand[0]:,.1f}",
    delta=None if diff is None else f"{diff[0]:+,.1f} vs baseline",
)
c2.metric("Baseline expected conversions", "—" if base is None else f"{base[0]:,.1f}")
c3.metric(
    "Capacity breaches (rep-days)", f"{cm.capacity_breaches:,}", delta=cm.capacity_breaches - bm.capacity_breaches
)
c4.metric("Leads beyond capacity", f"{cm.leads_over_capacity:,}", delta=cm.leads_over_capacity - bm.leads_over_capacity)
if cand is not None and diff is not None:
    st.caption(
        f"95% interval: {cand[1]:,.1f} to {cand[2]:,.1f} conversions; difference vs baseline {diff[1]:+,.1f} to"
        f" {diff[2]:+,.1f} (paired, same leads). The direct method trusts the cross-fitted reward model;"
        " it does not charge a policy for changed loads (see Compare for every estimator)."
    )
elif result.dm_reason:
    st.info(result.dm_reason)

left, right = st.columns(2)
with left:
    st.markdown("**Destination mix** (share of leads)")
    mix = result.mix()
    st.bar_chart(mix.unpivot(index="team", on=["baseline", "candidate"]), x="team", y="value", color="variable")
    st.dataframe(mix, hide_index=True, width="stretch")
with right:
    st.markdown("**Fairness within sales teams** (0 = perfectly even, weight-adjusted)")
    st.dataframe(result.fairness(), hide_index=True, width="stretch")
st.markdown("**Load and capacity per rep** (candidate; baseline leads for reference)")
st.dataframe(result.rep_load(), hide_index=True, width="stretch")

with st.expander("The edited policy (YAML)"):
    st.code(edited.text, language="yaml")

st.subheader("Save")
changed = edited.content_hash != start.content_hash
if not changed:
    st.caption("No change yet: move a cut-off or change a destination to save a new version.")
if st.button("Save as new version", disabled=not (changed and report.ok), key="rules_save", type="primary"):
    try:
        previous = resolve(settings, start.spec.name) if start.version is not None else None
    except PolicyNotFoundError:
        previous = None
    stored = register(settings, edited)
    lines = diff_policies(previous.spec, edited.spec) if previous is not None else []
    st.session_state["rules_saved"] = {
        "label": f"{stored.name}@{stored.version}",
        "created": stored.created,
        "previous": f"{previous.spec.name}@{previous.version}" if previous else None,
        "diff": lines,
    }
saved = st.session_state.get("rules_saved")
if saved:
    if saved["created"]:
        st.success(f"Registered **{saved['label']}**.")
    else:
        st.info(f"Identical content is already registered as **{saved['label']}**.")
    if saved["previous"]:
        st.markdown(f"Changes from {saved['previous']}:")
        st.dataframe(pl.DataFrame({"change": saved["diff"] or ["no routing change"]}), hide_index=True)
    else:
        st.caption("The first registered version of this policy.")
