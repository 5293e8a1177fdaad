"""The warehouse-facing quality stage: whole run, storage, one lead = its batch row."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import polars as pl
import pytest

from models.simulation import SimulationConfig, export_files, simulate_company
from pipelines.enrichment import EnrichmentClient, ProviderConfig
from pipelines.ingest import ingest_frame
from pipelines.quality import STORED_COLUMNS, assess_lead, assess_leads, load_context, run_quality
from pipelines.warehouse import Warehouse, query_frame
from tests.test_quality_enrichment import Provider, provider  # noqa: F401 (fixture)


@pytest.fixture
def filled(warehouse: Warehouse) -> Warehouse:
    files = export_files(simulate_company(SimulationConfig(n_leads=800, seed=6)))
    # Half the leads lose their account id: matching must find it again.
    leads = files["leads"].with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(None).otherwise(pl.col("account_id")).alias("account_id")
    )
    for entity, frame in (("reps", files["reps"]), ("accounts", files["accounts"]), ("leads", leads),
                          ("decisions", files["decisions"])):  # fmt: skip
        ingest_frame(warehouse, entity, frame, label=entity)
    return warehouse


def test_run_stores_one_row_per_lead_and_is_repeatable(filled: Warehouse) -> None:
    first = run_quality(filled)
    second = run_quality(filled)
    with filled.connect() as con:
        leads = con.execute("SELECT count(*) FROM leads").fetchall()[0][0]
        stored = query_frame(con, "SELECT * FROM lead_quality")
    assert first.leads == second.leads == leads == stored.height
    assert sum(first.methods.values()) == leads
    assert first.methods.get("domain", 0) + first.methods.get("name", 0) + first.methods.get("fuzzy", 0) > 0
    assert stored["lead_id"].n_unique() == leads
    assert set(STORED_COLUMNS) <= set(stored.columns)
    assert first.to_json()["leads"] == leads


def test_one_lead_gets_exactly_its_batch_row(filled: Warehouse) -> None:
    context = load_context(filled, history_since=datetime(2000, 1, 1, tzinfo=UTC))
    with filled.connect() as con:
        leads = query_frame(
            con,
            "SELECT lead_id, created_at, email, company, country, industry, employees FROM leads"
            " ORDER BY lead_id LIMIT 40",
        )
    now = datetime(2027, 1, 1, tzinfo=UTC)
    batch = assess_leads(leads, context, now=now)
    for lead, row in zip(leads.iter_rows(named=True), batch.iter_rows(named=True), strict=True):
        one = assess_lead(lead, context, now=now)
        assert (one.match.account_id, one.match.method, one.match.confidence) == (
            row["matched_account_id"], row["match_method"], row["match_confidence"])  # fmt: skip
        assert (one.duplicate.duplicate_of, one.duplicate.previous_rep_id) == (
            row["duplicate_of"],
            row["previous_rep_id"],
        )
        assert one.report.flags == tuple(row["quality_flags"]) and one.report.completeness == row["completeness"]
        assert {k: v.value for k, v in one.enriched.items()} == {k: row[k] for k in one.enriched}


def test_a_slow_provider_delays_one_lead_by_at_most_its_timeout(
    filled: Warehouse,
    provider: Provider,  # noqa: F811
) -> None:
    context = load_context(filled)
    lead = {"lead_id": "NEW1", "created_at": datetime(2026, 5, 1, tzinfo=UTC), "email": "ceo@newco-unknown.io"}
    assess_lead(lead, context)  # warm up
    cfg = ProviderConfig(base_url=provider.url("slow"), timeout_s=0.2, max_retries=2)
    with EnrichmentClient(cfg) as client:
        started = time.monotonic()
        result = assess_lead(lead, context, provider=client)
        elapsed = time.monotonic() - started
    assert elapsed < 0.2 + 0.25
    assert "unavailable" in result.note and "routed with the data known" in result.note
    assert result.match.method == "none"


def test_cli_loads_a_reference_and_runs_the_stage(filled: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    import json as json_module

    from typer.testing import CliRunner

    from leadroute.cli import app

    monkeypatch.setenv("LEADROUTE_HOME", str(filled.path.parent))
    reference = filled.path.parent / "reference.csv"
    reference.write_text("domain,industry,employees\nhttps://www.somewhere.io,retail,40\n", encoding="utf-8")
    runner = CliRunner()
    loaded = runner.invoke(app, ["quality", "reference", str(reference), "--source", "crm", "--json"])
    assert loaded.exit_code == 0, loaded.output
    assert json_module.loads(loaded.stdout.strip().splitlines()[-1]) == {"stored": 1, "source": "crm"}
    ran = runner.invoke(app, ["quality", "run", "--json"])
    assert ran.exit_code == 0, ran.output
    summary = json_module.loads(ran.stdout.strip().splitlines()[-1])
    with filled.connect() as con:
        assert summary["leads"] == con.execute("SELECT count(*) FROM leads").fetchall()[0][0]
    missing = runner.invoke(app, ["quality", "reference", str(filled.path.parent / "nope.csv")])
    assert missing.exit_code != 0


def test_an_empty_warehouse_and_a_bare_lead_are_fine(warehouse: Warehouse) -> None:
    assert run_quality(warehouse).leads == 0
    context = load_context(warehouse)
    bare = pl.DataFrame({"lead_id": ["X"], "created_at": [datetime(2026, 1, 1, tzinfo=UTC)]})
    row = assess_leads(bare, context).row(0, named=True)
    assert row["match_method"] == "none" and row["duplicate_of"] is None
    assert "missing_email" in row["quality_flags"] and row["completeness"] == 0.0


def test_quality_trend_per_week(filled: Warehouse) -> None:
    from pipelines.quality import quality_trend

    run = run_quality(filled)
    trend = quality_trend(filled)
    assert trend["leads"].sum() == run.leads
    assert trend["period"].is_sorted()
    shares = trend.select(pl.exclude("period", "leads"))
    values = shares.to_numpy()
    assert ((values >= 0) & (values <= 1)).all()
    free_mail_leads = run.flags.get("free_mail", 0)
    assert (trend["flag_free_mail"] * trend["leads"]).sum() == pytest.approx(free_mail_leads, abs=0.5 * trend.height)
    with pytest.raises(ValueError, match="every"):
        quality_trend(filled, every="hour")
