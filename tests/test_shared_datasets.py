"""The two real datasets in ../shared/data import end to end through the shipped mapping files."""

from __future__ import annotations

import pytest

from pipelines.ingest import ingest_file
from pipelines.warehouse import Warehouse, query_frame
from tests.conftest import MAPPINGS, SHARED_DATA

pytestmark = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared datasets not found at {SHARED_DATA}")

CRM = SHARED_DATA / "crm_sales_opportunities"


def test_bank_marketing_imports_as_leads_with_outcomes(warehouse: Warehouse) -> None:
    path = SHARED_DATA / "bank-additional-full.csv"
    summary = ingest_file(warehouse, "leads", path, MAPPINGS / "bank_marketing_leads.yaml")
    assert (summary.counts.read, summary.counts.loaded, summary.counts.rejected) == (41_188, 41_188, 0)
    assert summary.derived["outcomes"].loaded == 41_188
    with warehouse.connect() as con:
        events = dict(con.execute("SELECT event, count(*) FROM outcomes GROUP BY event").fetchall())
        first, last = con.execute("SELECT min(created_at), max(created_at) FROM leads").fetchall()[0]
        sample = query_frame(
            con,
            """SELECT source, extra->>'$.job' AS job, extra->>'$.duration' AS duration, extra->>'$.y' AS y
               FROM leads WHERE lead_id = 'bank-2'""",
        ).to_dicts()[0]
    assert events == {"converted": 4_640, "lost": 36_548}  # the dataset's documented 4,640 "yes"
    assert (first.year, first.month, last.year, last.month) == (2008, 5, 2010, 11)
    assert sample == {"source": "telephone", "job": "housemaid", "duration": "261", "y": None}
    again = ingest_file(warehouse, "leads", path, MAPPINGS / "bank_marketing_leads.yaml")
    assert (again.counts.loaded, again.counts.unchanged, again.derived["outcomes"].loaded) == (0, 41_188, 0)


def test_crm_opportunities_import_as_accounts_reps_leads_decisions_and_outcomes(warehouse: Warehouse) -> None:
    accounts = ingest_file(warehouse, "accounts", CRM / "accounts.csv", MAPPINGS / "crm_accounts.yaml")
    reps = ingest_file(warehouse, "reps", CRM / "sales_teams.csv", MAPPINGS / "crm_reps.yaml")
    pipeline = ingest_file(warehouse, "leads", CRM / "sales_pipeline.csv", MAPPINGS / "crm_pipeline.yaml")
    assert (accounts.counts.loaded, reps.counts.loaded) == (85, 35)
    # 500 "Prospecting" opportunities have no engage date: rejected (and their decisions) with that reason.
    assert (pipeline.counts.read, pipeline.counts.loaded, pipeline.counts.rejected) == (8_800, 8_300, 500)
    assert pipeline.reject_reasons == {
        "leads: created_at: is required but missing": 500,
        "decisions: decided_at: is required but missing": 500,
    }
    assert pipeline.derived["decisions"].loaded == 8_300
    assert pipeline.derived["outcomes"].loaded == 4_238 + 2_473  # Won + Lost; Engaging has no outcome yet
    with warehouse.connect() as con:
        teams = [t for (t,) in con.execute("SELECT team FROM teams ORDER BY team").fetchall()]
        industry = con.execute("SELECT count(*) FROM accounts WHERE industry = 'technolgy'").fetchall()[0][0]
        won = con.execute("SELECT count(*), sum(value) FROM outcomes WHERE event = 'converted'").fetchall()[0]
        lead = query_frame(con, "SELECT * FROM leads WHERE lead_id = '1C1I7A6R'").to_dicts()[0]
        decision = query_frame(con, "SELECT * FROM decisions WHERE lead_id = '1C1I7A6R'").to_dicts()[0]
        unowned = con.execute("SELECT count(*) FROM leads WHERE account_id IS NULL").fetchall()[0][0]
        gtx = con.execute("SELECT count(*) FROM leads WHERE product_interest = 'GTXPro'").fetchall()[0][0]
    assert teams == ["Central", "East", "West"]
    assert industry == 0  # the misspelt sector was mapped
    assert won[0] == 4_238
    assert won[1] > 10_000_000
    # Firmographics joined from the account; outcome columns kept out of the lead's attributes.
    assert (lead["account_id"], lead["industry"], lead["employees"], lead["country"]) == (
        "Cancity",
        "retail",
        2448,
        "United States",
    )
    assert lead["annual_revenue"] == pytest.approx(718.62e6)
    assert lead["extra"] is None
    assert (decision["rep_id"], decision["team"], decision["policy"], decision["propensity"]) == (
        "Moses Frase",
        "Central",
        "crm-history",
        None,
    )
    assert unowned > 1_000
    assert gtx == 0
