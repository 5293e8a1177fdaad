"""Account owner first reaches leads that arrived without an account id, through the quality
stage's account match."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.demo import build_demo
from pipelines.quality import run_quality
from pipelines.replay import load_leads, run_replay
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse, query_frame


def test_matched_accounts_feed_account_owner_routing(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "ws")
    build_demo(settings, n_leads=2_000, seed=6, register_policies=True)
    warehouse = Warehouse(settings.warehouse_path)
    with warehouse.connect() as con:
        linked = query_frame(
            con,
            """SELECT l.lead_id, l.account_id, a.owner_rep_id FROM leads l JOIN accounts a USING (account_id)
               WHERE a.owner_rep_id IS NOT NULL ORDER BY l.lead_id LIMIT 25""",
        )
        assert linked.height == 25
        # The CRM never linked these leads: only their company email domain says whose they are.
        con.execute("UPDATE leads SET account_id = NULL WHERE list_contains(?, lead_id)", [linked["lead_id"].to_list()])
    before = load_leads(settings).filter(pl.col("lead_id").is_in(linked["lead_id"].to_list()))
    assert before["account_id"].null_count() == 25
    run_quality(warehouse)
    after = load_leads(settings).filter(pl.col("lead_id").is_in(linked["lead_id"].to_list())).sort("lead_id")
    assert after["account_id"].to_list() == linked["account_id"].to_list()
    assert after["account_matched"].all()
    decisions = run_replay(settings, "account_owner").decisions
    routed = decisions.filter(pl.col("lead_id").is_in(linked["lead_id"].to_list())).sort("lead_id")
    owners = linked.sort("lead_id")["owner_rep_id"].to_list()
    to_owner = sum(r == o for r, o in zip(routed["rep_id"].to_list(), owners, strict=True))
    # Absent owners divert a few leads to the policy's fallback; most must reach their owner.
    assert to_owner >= 20, to_owner
    reasons = routed.filter(pl.col("rep_id") == pl.Series(owners))["reasons"].to_list()
    assert all("account" in r for r in reasons)
