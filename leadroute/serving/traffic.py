"""Simulated live traffic for the demo company: leads routed by the endpoint's own service (in
process, into the real decision log) and outcomes drawn from the simulation's ground truth
(into the real outcome log) — what a CRM would send, without a network.

The demo, notebooks and tests use it to give a workspace a finished online experiment; the
end-to-end tests send the same kind of traffic through a real server instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from leadroute.serving.deployment import build_deployment
from leadroute.serving.log import JsonLog
from leadroute.serving.outcomes import OUTCOMES, OutcomeStore
from leadroute.serving.records import validate_records
from leadroute.serving.router import DECISIONS, RoutingService
from models.simulation import simulate_company
from pipelines.demo import simulation_config
from pipelines.deployments import live_deployment
from pipelines.endpoint_logs import outcome_log_dir
from pipelines.policies import load_roster
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse


@dataclass(frozen=True)
class Traffic:
    """What was sent: decisions per arm and the true conversion probability of each."""

    decisions: pl.DataFrame  # lead_id (as sent), arm, team, rep_id, p_true, converted

    def true_rates(self) -> dict[str, float]:
        frame = self.decisions.group_by("arm").agg(pl.col("p_true").mean()).sort("arm")
        return dict(zip(frame["arm"].to_list(), frame["p_true"].to_list(), strict=True))


def payloads(leads: pl.DataFrame, prefix: str) -> list[dict[str, Any]]:
    """Simulated leads as a CRM would send them: JSON values, ISO timestamps, ids ``prefix + id``."""
    out = []
    for row in leads.iter_rows(named=True):
        lead = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items() if v is not None}
        lead["lead_id"] = f"{prefix}{row['lead_id']}"
        out.append(lead)
    return out


def conversion_events(
    prefix: str, lead_ids: list[str], converted: np.ndarray, delay_days: float
) -> list[dict[str, Any]]:
    """``converted`` outcome events (ids ``prefix + lead_id``) for the leads drawn as converted,
    ``delay_days`` from now."""
    when = (datetime.now(UTC) + timedelta(days=delay_days)).isoformat()
    return [
        {"event_id": f"{prefix}conv-{lead}", "lead_id": f"{prefix}{lead}", "event": "converted", "occurred_at": when}
        for lead, hit in zip(lead_ids, converted, strict=True)
        if hit
    ]


def simulate_traffic(
    settings: Settings, *, prefix: str, seed: int, n_leads: int | None = None, outcome_delay_days: float = 3.0
) -> Traffic:
    """Route the demo company's leads (fresh ids ``prefix + lead_id``) with the live deployment and
    log outcomes the truth draws for the destinations chosen, ``outcome_delay_days`` later."""
    config = simulation_config(Warehouse(settings.warehouse_path))
    if config is None:
        raise ValueError("this workspace was not built by leadroute demo: there is no truth to draw outcomes from")
    company = simulate_company(config)
    leads = company.leads if n_leads is None else company.leads.head(n_leads)
    roster = load_roster(settings)
    deployment = build_deployment(settings, roster, None, live_deployment(settings))
    log = JsonLog(settings.decision_log_dir, DECISIONS)
    outcomes = OutcomeStore(JsonLog(outcome_log_dir(settings), OUTCOMES))
    try:
        service = RoutingService(settings, roster, deployment, log)
        service.rebuild()
        rows, rejects = validate_records("leads", payloads(leads, prefix))
        if rejects:
            raise ValueError(f"simulated leads failed validation: {rejects[0].reason}")
        records = service.route(rows)
        decisions = pl.DataFrame(
            {
                "lead_id": [str(r["lead_id"]).removeprefix(prefix) for r in records],
                "team": [r["team"] for r in records],
                "rep_id": [r["rep_id"] for r in records],
                "arm": [r["arm"] for r in records],
                "decided_at": [r["decided_at"] for r in records],
            }
        )
        probability = np.asarray(
            company.truth.conversion_probability(leads, decisions.select("lead_id", "team", "rep_id"))
        )
        converted = np.random.default_rng(seed).random(probability.size) < probability
        events = conversion_events(prefix, decisions["lead_id"].to_list(), converted, outcome_delay_days)
        result = outcomes.add(events)
        if result.rejected:
            raise ValueError(f"simulated outcomes failed validation: {result.rejected[0].reason}")
    finally:
        log.close()
        outcomes.log.close()
    return Traffic(
        decisions.with_columns(
            pl.Series("lead_id", [f"{prefix}{x}" for x in decisions["lead_id"]]),
            pl.Series("p_true", probability),
            pl.Series("converted", converted),
        )
    )
