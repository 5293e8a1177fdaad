"""Duplicate detection and quality flags: known cases, batch = one lead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from models.quality.duplicates import DuplicateConfig, find_duplicate, find_duplicates
from models.quality.flags import FLAGS, check_lead, quality_flags

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def history() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "lead_id": ["H1", "H2", "H3", "H4"],
            "created_at": [T0 - timedelta(days=d) for d in (5, 40, 2, 1)],
            "email": ["J.Doe+webinar@GoogleMail.com", "old@acme.com", None, None],
            "phone": [None, None, "+1 (415) 555-0100", None],
            "company": ["Acme", "Acme", None, "Brightwave Labs Inc."],
            "name": [None, None, None, "Ana Lopez"],
            "rep_id": ["R1", "R2", "R3", "R4"],
            "team": ["smb", "smb", "ent", "mid"],
        }
    )


def batch() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L4", "L5", "L6"],
            "created_at": [T0, T0, T0 + timedelta(hours=1), T0, T0 + timedelta(days=1), T0 + timedelta(days=2)],
            "email": ["jdoe@gmail.com", "old@acme.com", "new@x.com", "ana@brightwave.io", "new@x.com", "NEW@x.com"],
            "phone": [None, None, "415.555.0100", None, None, None],
            "company": ["Acme", "Acme", None, "Brightwave Labs", None, None],
            "name": [None, None, None, "ana lopez", None, None],
        }
    )


def test_duplicates_by_email_phone_and_name_company_within_the_window() -> None:
    result = find_duplicates(batch(), history())
    found = {r["lead_id"]: r for r in result.iter_rows(named=True)}
    assert (found["L1"]["duplicate_of"], found["L1"]["duplicate_key"], found["L1"]["previous_rep_id"]) == (
        "H1", "email", "R1")  # fmt: skip
    assert found["L2"]["duplicate_of"] is None  # 40 days ago: outside the 30-day window
    assert (found["L3"]["duplicate_of"], found["L3"]["duplicate_key"]) == ("H3", "phone")
    assert (found["L4"]["duplicate_of"], found["L4"]["duplicate_key"], found["L4"]["previous_team"]) == (
        "H4", "name_company", "mid")  # fmt: skip
    # L5 repeats L3 (same batch, unrouted): it inherits L3's owner from further up the chain.
    assert (found["L5"]["duplicate_of"], found["L5"]["previous_rep_id"]) == ("L3", "R3")
    assert (found["L6"]["duplicate_of"], found["L6"]["previous_rep_id"]) == ("L5", "R3")
    assert found["L5"]["days_since_previous"] == round(23 / 24, 4)
    longer = find_duplicates(batch(), history(), DuplicateConfig(window_days=60))
    assert longer.filter(pl.col("lead_id") == "L2")["duplicate_of"].item() == "H2"


def test_a_lead_is_never_its_own_duplicate_and_order_breaks_same_instant_ties() -> None:
    same = pl.DataFrame({"lead_id": ["B", "A"], "created_at": [T0, T0], "email": ["x@y.com", "x@y.com"]})
    result = find_duplicates(same, same)  # the history holds the batch itself
    assert dict(zip(result["lead_id"], result["duplicate_of"], strict=True)) == {"A": None, "B": "A"}


def test_batch_and_single_lead_duplicates_agree() -> None:
    leads, past = batch().head(4), history()
    result = find_duplicates(leads, past)
    for row in result.iter_rows(named=True):
        one = find_duplicate({k: row[k] for k in ("lead_id", "created_at", "email", "phone", "company", "name")}, past)
        expected = (row["duplicate_of"], row["duplicate_key"], row["previous_rep_id"], row["previous_team"],
                    row["days_since_previous"])  # fmt: skip
        assert (one.duplicate_of, one.key, one.previous_rep_id, one.previous_team, one.days_since_previous) == expected


def leads_to_flag() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "email": ["ann@acme.com", "not-an-email", "bob@gmail.com", "x@mailinator.com", None],
            "company": ["Acme", "N/A", "test", "Beta GmbH", None],
            "country": ["US", "XX", "united states", "DE", None],
            "industry": ["software", None, "retail", "retail", None],
            "employees": [120, 0, 5_000_000, 10, None],
            "annual_revenue": [3e6, None, None, 9e9, None],
            "title": ["CTO", None, None, None, None],
            "created_at": [T0, T0, T0 + timedelta(days=3), T0, T0],
        }
    )


def test_flags_name_what_is_missing_or_impossible() -> None:
    result = quality_flags(leads_to_flag(), now=T0 + timedelta(days=1))
    flags = result["quality_flags"].to_list()
    assert flags[0] == []
    assert flags[1] == ["bad_email", "placeholder_company", "unknown_country", "missing_industry", "impossible_size"]
    assert flags[2] == ["free_mail", "placeholder_company", "impossible_size", "future_created_at"]
    assert flags[3] == ["disposable_email", "implausible_revenue_per_employee"]
    assert "missing_email" in flags[4] and "missing_size" in flags[4]
    assert result["completeness"].to_list() == [1.0, round(4 / 7, 4), round(5 / 7, 4), round(6 / 7, 4), 0.0]
    assert all(f"flag_{name}" in result.columns for name in FLAGS)


def test_batch_and_single_lead_flags_agree() -> None:
    now = T0 + timedelta(days=1)
    result = quality_flags(leads_to_flag(), now=now)
    for lead, flags, completeness in zip(
        leads_to_flag().iter_rows(named=True), result["quality_flags"], result["completeness"], strict=True
    ):
        report = check_lead(lead, now=now)
        assert report.flags == tuple(flags) and report.completeness == completeness
