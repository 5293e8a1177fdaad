"""Speed-to-lead SLAs over the workspace: KPIs from the warehouse and replay on the simulated company.

* :func:`sla_history` — one row per routed lead (decisions + outcomes + leads from the
  warehouse, SLAs from the registered policy versions, business calendars from the roster);
  :func:`sla_kpi_table` groups it by team, rep, source or policy version (the same pure
  functions in ``models.sla.kpi`` serve the app, notebooks and experiment guardrails).
* :func:`sla_replay` — replay a policy with and without its SLAs on the workspace's simulated
  company and compare time to first touch and true conversions (``models.sla.replay``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from models.policy import Policy, PolicySpec, PolicySpecError
from models.policy.spec import Sla
from models.simulation import simulate_company
from models.sla.clock import calendars
from models.sla.kpi import SlaDimension, first_touch_frame, sla_kpis
from models.sla.replay import SlaComparison, replay_with_sla
from pipelines.demo import simulation_config
from pipelines.policies import PolicyNotFoundError, load_roster, resolve
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse, query_frame

_DECISIONS = """
    SELECT lead_id, decided_at, team, rep_id, policy, policy_version,
           coalesce(extra->>'$.rule', CASE WHEN json_valid(reasons) THEN json_extract_string(reasons, '$.rule') END)
               AS rule,
           extra->>'$.sla_root' AS sla_root
    FROM decisions
    WHERE (CAST(? AS TIMESTAMPTZ) IS NULL OR decided_at >= ?)
"""


def sla_history(
    settings: Settings, *, now: datetime | None = None, since: datetime | None = None, target: Sla | None = None
) -> pl.DataFrame:
    """One row per routed lead: time to first touch and whether its SLA was met.

    Args:
        settings: the workspace.
        now: the clock (default: now); an untouched lead whose deadline is still ahead is pending.
        since: only decisions from this instant on.
        target: an SLA to measure every lead with a rep against (a what-if or a guardrail); by
            default each decision's policy version says which SLA applied.
    """
    warehouse = Warehouse(settings.warehouse_path)
    with warehouse.connect(read_only=True) as con:
        decisions = query_frame(con, _DECISIONS, [since, since])
        outcomes = query_frame(con, "SELECT lead_id, event, occurred_at FROM outcomes")
        leads = query_frame(con, "SELECT lead_id, created_at, source FROM leads")
    roster = load_roster(settings)
    specs: dict[str, PolicySpec | None] = {}

    def sla_of(policy: str | None, version: int | None, rule: str | None) -> Sla | None:
        if target is not None:
            return target
        key = f"{policy}@{version}"
        if key not in specs:
            ref = str(policy) if version is None else f"{policy}@{int(version)}"
            try:
                specs[key] = resolve(settings, ref).spec
            except (PolicyNotFoundError, PolicySpecError, ValueError):
                specs[key] = None
        spec = specs[key]
        return None if spec is None else spec.sla_for(rule)

    cal = calendars(roster)
    return first_touch_frame(decisions, outcomes, leads, sla_of, cal.get, now or datetime.now(UTC))


def sla_kpi_table(
    settings: Settings, by: SlaDimension, *, now: datetime | None = None, target: Sla | None = None
) -> pl.DataFrame:
    """Time to first touch (median, p90) and SLA attainment by ``by`` (see ``models.sla.kpi``)."""
    return sla_kpis(sla_history(settings, now=now, target=target), by)


def sla_replay(settings: Settings, policy: str, *, seed: int = 0) -> SlaComparison:
    """Replay ``policy`` (a name, ``name@version`` or file) with and without its SLAs on the
    workspace's simulated company and evaluate both with its ground truth."""
    config = simulation_config(Warehouse(settings.warehouse_path))
    if config is None:
        raise ValueError("SLA replay needs a simulated company (a demo workspace): its truth gives true conversions")
    source = resolve(settings, policy)
    if source.spec.sla is None and all(r.sla is None for r in source.spec.rules):
        raise ValueError(f"policy '{policy}' has no SLA: add an 'sla' block to a rule or to the policy")
    company = simulate_company(config)
    bound = Policy(source.spec, load_roster(settings), version=source.version)
    return replay_with_sla(bound, company.leads, company.truth, seed=seed)
