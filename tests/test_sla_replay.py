"""Replaying a policy with SLAs on the simulated company: time to first touch and true
conversions (the truth decays conversion with speed to lead) against the same policy without."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from models.policy import Policy, Roster, parse_policy
from models.policy.spec import Sla
from models.simulation import SimulatedCompany, SimulationConfig, simulate_company
from models.sla import replay_with_sla
from pipelines.demo import build_demo
from pipelines.policies import parse_text, register
from pipelines.settings import Settings
from pipelines.sla import sla_kpi_table, sla_replay

SHIPPED = Path(__file__).resolve().parents[1] / "policies" / "round_robin.yaml"


@pytest.fixture(scope="module")
def company() -> SimulatedCompany:
    return simulate_company(SimulationConfig(n_leads=3000, months=3, seed=3))


def round_robin(sla: dict[str, Any]) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(SHIPPED.read_text())
    return raw | {"name": "round_robin_sla", "sla": sla}


def replay(company: SimulatedCompany, sla: dict[str, Any]) -> dict[str, float]:
    roster = Roster.from_frames(company.reps, company.teams, company.absences, company.accounts)
    comparison = replay_with_sla(Policy(parse_policy(round_robin(sla)), roster), company.leads, company.truth)
    figures = comparison.figures()
    print(sla, {k: round(v, 3) for k, v in figures.items()})
    hops = comparison.hops.filter(pl.col("action") == "reassign")
    # Never back to an earlier owner, always inside the same destination (any sales team here).
    owners = hops.group_by("lead_id").agg(pl.col("rep_id"), pl.col("previous_rep_id").first())
    for reps, first in owners.select("rep_id", "previous_rep_id").iter_rows():
        assert len(set(reps)) == len(reps) and first not in reps
    return figures


def test_follow_the_sun_sla_speeds_up_first_touch_and_raises_true_conversions(company: SimulatedCompany) -> None:
    # 1 hour of wall-clock time, up to two re-assignments: a lead that arrives while its owner
    # is off (night, weekend) goes to a rep who is at work.
    f = replay(company, {"first_touch": "1h", "business_hours": False, "max_hops": 2})
    # Measured (seed 3, 3,000 leads over 3 months): median 4.34 h → 1.36 h, p90 25.9 h → 2.5 h,
    # 1,898 leads re-assigned, true expected conversions 299.3 → 336.4 (+12.4%).
    assert f["leads_under_sla"] == f["leads"] == 3000
    assert 1000 < f["reassigned"] < 2500 and f["escalated"] == 0
    assert f["median_hours_with"] < 0.5 * f["median_hours_without"]
    assert f["p90_hours_with"] < 0.25 * f["p90_hours_without"]
    gain = f["conversions_with"] / f["conversions_without"] - 1
    assert 0.05 < gain < 0.25
    assert f["revenue_with"] > f["revenue_without"]


def test_a_tight_business_hours_sla_escalating_to_the_queue_costs_conversions(company: SimulatedCompany) -> None:
    # 30 business minutes is shorter than most reps' simulated response (6–60 working minutes,
    # slower when loaded), and the queue is swept once a day: the chain ends there and hurts.
    f = replay(company, {"first_touch": "30m", "max_hops": 1, "escalate": {"team": "queue"}})
    # Measured: median 4.34 h → 16.4 h, 1,194 leads escalated, conversions 299.3 → 245.3 (-18%).
    assert f["escalated"] > 500
    assert f["median_hours_with"] > f["median_hours_without"]
    assert -0.35 < f["conversions_with"] / f["conversions_without"] - 1 < -0.05


def test_pipeline_replay_and_kpis_on_a_demo_workspace(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "ws")
    build_demo(settings, n_leads=2000, seed=1, register_policies=True, train_models=False)
    raw = round_robin({"first_touch": "1h", "business_hours": False, "max_hops": 2})
    register(settings, parse_text(yaml.safe_dump(raw), "test"))
    comparison = sla_replay(settings, "round_robin_sla")
    f = comparison.figures()
    print("demo workspace", {k: round(v, 3) for k, v in f.items()})
    assert f["leads"] > 1900 and f["reassigned"] > 0
    assert f["median_hours_with"] < f["median_hours_without"]
    assert f["conversions_with"] > f["conversions_without"]
    with pytest.raises(ValueError, match="has no SLA"):
        sla_replay(settings, "round_robin")

    # KPIs from the warehouse: the demo history measured against a one-hour business-time SLA.
    target = Sla(first_touch_s=3600, business_hours=True)
    by_team = {r["group"]: r for r in sla_kpi_table(settings, "team", target=target).iter_rows(named=True)}
    for team in ("enterprise", "mid-market", "smb"):
        row = by_team[team]
        assert row["with_sla"] == row["leads"] and 0.0 <= row["attainment"] <= 1.0
        assert row["attainment_low"] <= row["attainment"] <= row["attainment_high"]
        assert row["median_minutes_to_first_touch"] < row["p90_minutes_to_first_touch"]
    assert by_team["queue"]["with_sla"] == 0 and by_team["queue"]["attainment"] is None
    by_version = sla_kpi_table(settings, "policy_version")
    assert by_version["group"].to_list() == ["legacy-rules@1"] and by_version["with_sla"].to_list() == [0]
    by_rep = sla_kpi_table(settings, "rep_id", target=target)
    assert by_rep.filter(pl.col("group") != "(none)")["due"].sum() == sum(
        by_team[t]["due"] for t in ("enterprise", "mid-market", "smb")
    )


def test_truth_starts_the_response_at_the_hand_over(company: SimulatedCompany) -> None:
    leads = company.leads.head(200)
    decisions = company.decisions.filter(pl.col("lead_id").is_in(leads["lead_id"].implode()))
    created = leads["created_at"].dt.epoch("us").to_numpy()
    plain = company.truth.evaluate(leads, decisions)
    same = company.truth.evaluate(leads, decisions, created)
    assert (plain.first_touch_us == same.first_touch_us).all() and (plain.probability == same.probability).all()
    later = company.truth.evaluate(leads, decisions, created + 6 * 3_600_000_000)
    aligned = leads.select("lead_id").join(decisions, on="lead_id", how="left", maintain_order="left")
    with_rep = aligned["rep_id"].is_not_null().to_numpy()
    assert (later.first_touch_us >= created + 6 * 3_600_000_000).all()
    assert (later.delay_hours >= 6).all()  # speed to lead still counts from creation
    assert (later.probability[with_rep] <= plain.probability[with_rep] + 1e-12).all()
