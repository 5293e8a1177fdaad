"""Ingest into a real DuckDB file: nothing lost, counts add up, idempotent, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from pipelines.ingest import IngestError, ingest_file
from pipelines.warehouse import Warehouse, query_frame
from tests.conftest import write

LEADS_CSV = """lead_id,created_at,company,employees,country,web_visits
L1,2025-01-01T09:00:00Z,Acme,120,US,3
L2,31/13/2025,Beta,50,DE,1
L3,2025-01-03,Gamma,n/a,FR,0
,2025-01-04,Delta,10,GB,2
L5,2025-01-05,Eps,-4,US,9
L6,2025-01-06,"Zeta, Inc",7,US,4,surplus
L7,2025-01-07T10:00:00+02:00,Eta,7,US,
"""


def snapshot(warehouse: Warehouse, table: str, key: str) -> list[dict[str, object]]:
    with warehouse.connect() as con:
        return query_frame(con, f'SELECT * FROM "{table}" ORDER BY "{key}"').to_dicts()


def test_bad_rows_are_rejected_with_reasons_and_good_rows_load(warehouse: Warehouse, tmp_path: Path) -> None:
    summary = ingest_file(warehouse, "leads", write(tmp_path / "leads.csv", LEADS_CSV))
    counts = summary.counts
    assert (counts.read, counts.loaded, counts.updated, counts.rejected) == (7, 2, 0, 5)
    assert counts.read == counts.loaded + counts.updated + counts.rejected
    with warehouse.connect() as con:
        leads = query_frame(con, "SELECT lead_id, created_at, employees, extra FROM leads ORDER BY lead_id")
        rejects = query_frame(con, "SELECT row_number, reason, raw FROM rejects ORDER BY row_number")
    assert leads["lead_id"].to_list() == ["L1", "L7"]
    assert str(leads["created_at"][1]) == "2025-01-07 08:00:00+00:00"
    assert json.loads(leads["extra"][0]) == {"web_visits": "3"}
    by_line = dict(zip(rejects["row_number"].to_list(), rejects["reason"].to_list(), strict=True))
    assert by_line == {
        3: "created_at: '31/13/2025' is not an ISO 8601 timestamp",
        4: "employees: 'n/a' is not a whole number",
        5: "lead_id: is required but missing",
        6: "employees: -4 must be at least 0",
        7: "unreadable CSV record: Expected Number of Columns: 6 Found: 7",
    }
    assert json.loads(rejects.filter(pl.col("row_number") == 3)["raw"].item())["company"] == "Beta"
    assert rejects.filter(pl.col("row_number") == 7)["raw"].item() == 'L6,2025-01-06,"Zeta, Inc",7,US,4,surplus'
    assert summary.reject_reasons["leads: employees: … is not a whole number"] == 1


def test_same_file_twice_changes_nothing(warehouse: Warehouse, tmp_path: Path) -> None:
    path = write(tmp_path / "leads.csv", LEADS_CSV)
    ingest_file(warehouse, "leads", path)
    before = snapshot(warehouse, "leads", "lead_id")
    again = ingest_file(warehouse, "leads", path).counts
    assert (again.loaded, again.updated, again.unchanged, again.rejected) == (0, 2, 2, 5)
    assert snapshot(warehouse, "leads", "lead_id") == before  # audit columns included: nothing rewritten


def test_a_changed_record_updates_and_later_rows_of_a_key_win(warehouse: Warehouse, tmp_path: Path) -> None:
    ingest_file(warehouse, "leads", write(tmp_path / "a.csv", "lead_id,created_at,company\nL1,2025-01-01,Old\n"))
    summary = ingest_file(
        warehouse,
        "leads",
        write(tmp_path / "b.csv", "lead_id,created_at,company\nL1,2025-01-01,New\nL2,2025-01-02,X\nL2,2025-01-02,Y\n"),
    )
    c = summary.counts
    assert (c.read, c.loaded, c.updated, c.unchanged) == (3, 1, 2, 0)
    rows = snapshot(warehouse, "leads", "lead_id")
    assert [(r["lead_id"], r["company"]) for r in rows] == [("L1", "New"), ("L2", "Y")]


def test_outcomes_for_unknown_leads_are_rejected_and_event_ids_deduplicate(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    ingest_file(warehouse, "leads", write(tmp_path / "leads.csv", LEADS_CSV))
    outcomes = write(
        tmp_path / "outcomes.csv",
        "event_id,lead_id,event,occurred_at,value\n"
        "e1,L1,converted,2025-02-01,1200\n"
        "e1,L1,converted,2025-02-01,1200\n"
        "e2,NOPE,lost,2025-02-01,\n"
        "e3,L7,won,2025-02-01,\n"
        ",L7,contacted,2025-01-07T10:05:00Z,\n",
    )
    c = ingest_file(warehouse, "outcomes", outcomes).counts
    assert (c.read, c.loaded, c.updated, c.rejected) == (5, 2, 1, 2)
    rows = snapshot(warehouse, "outcomes", "event_id")
    assert [r["event_id"] for r in rows] == ["L7:contacted:2025-01-07T10:05:00.000000", "e1"]
    with warehouse.connect() as con:
        reasons = query_frame(con, "SELECT reason FROM rejects WHERE entity = 'outcomes' ORDER BY row_number")
    assert reasons["reason"].to_list() == [
        "lead_id: 'NOPE' is not a known lead",
        "event: 'won' is not one of contacted, meeting, qualified, converted, lost",
    ]
    c2 = ingest_file(warehouse, "outcomes", outcomes).counts
    assert (c2.loaded, c2.updated, c2.unchanged) == (0, 3, 2)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", "", "the file is empty"),
        ("nocreated.csv", "lead_id,company\nL1,Acme\n", "missing required column(s) created_at"),
        ("leads.xlsx", "whatever", "cannot tell the format from the extension"),
        ("broken.parquet", "not parquet at all", "cannot read as Parquet"),
        ("missing.csv", None, "no such file"),
    ],
)
def test_a_file_that_cannot_be_read_fails_whole_and_loads_nothing(
    warehouse: Warehouse, tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    ingest_file(warehouse, "leads", write(tmp_path / "seed.csv", "lead_id,created_at\nS1,2025-01-01\n"))
    before = warehouse.table_counts()
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(IngestError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        ingest_file(warehouse, "leads", path)
    assert "\n" not in str(caught.value)
    assert warehouse.table_counts() == before


def test_delimiter_is_detected_and_a_wrong_declared_one_fails_whole(warehouse: Warehouse, tmp_path: Path) -> None:
    semi = write(tmp_path / "semi.csv", "lead_id;created_at;company\nL1;2025-01-01;A, B and C\n")
    assert ingest_file(warehouse, "leads", semi).counts.loaded == 1
    mapping = write(tmp_path / "comma.yaml", "delimiter: ','\n")
    with pytest.raises(IngestError, match=r"missing required column\(s\) lead_id, created_at.*is the delimiter right"):
        ingest_file(warehouse, "leads", write(tmp_path / "semi2.csv", "lead_id;created_at\nL2;2025-01-01\n"), mapping)
    assert warehouse.table_counts()["leads"] == 1


def test_jsonl_keeps_arrays_and_rejects_unparseable_lines(warehouse: Warehouse, tmp_path: Path) -> None:
    path = write(
        tmp_path / "reps.jsonl",
        '{"rep_id": "r1", "name": "Ann", "team": "smb", "regions": ["NA", "EMEA"], "active": true, "tz": "UTC"}\n'
        '{"rep_id": "r2", "name": "Bo", "team": "smb", "regions": "APAC", "capacity_per_day": 5}\n'
        "{not json}\n"
        "[1, 2]\n"
        '{"rep_id": "r3", "team": "enterprise"}\n',
    )
    summary = ingest_file(warehouse, "reps", path)
    c = summary.counts
    assert (c.read, c.loaded, c.rejected) == (5, 2, 3)
    rows = snapshot(warehouse, "reps", "rep_id")
    assert rows[0]["regions"] == ["NA", "EMEA"]
    assert rows[0]["active"] is True
    assert json.loads(str(rows[0]["extra"])) == {"tz": "UTC"}
    assert rows[1]["regions"] == ["APAC"]
    assert rows[1]["capacity_per_day"] == 5
    with warehouse.connect() as con:
        teams = query_frame(con, "SELECT team FROM teams ORDER BY team")["team"].to_list()
        reasons = query_frame(con, "SELECT row_number, reason FROM rejects ORDER BY row_number").rows()
    assert teams == ["smb"]
    assert reasons[0][0] == 3
    assert reasons[0][1].startswith("unreadable JSON line")
    assert reasons[1] == (4, "unreadable JSON line: expected an object, got list")
    assert reasons[2] == (5, "name: is required but missing")


def test_parquet_with_native_types_imports_like_csv(warehouse: Warehouse, tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "lead_id": ["P1", "P2"],
            "created_at": pl.Series(["2025-01-01T10:00:00", "2025-01-02T11:30:00"])
            .str.to_datetime()
            .dt.replace_time_zone("Europe/Berlin"),
            "employees": [12, None],
            "annual_revenue": [1.5e6, 2.25e5],
            "demo_requested": [True, False],
            "tags": [["a", "b"], []],
        }
    )
    path = tmp_path / "leads.parquet"
    frame.write_parquet(path)
    c = ingest_file(warehouse, "leads", path).counts
    assert (c.read, c.loaded, c.rejected) == (2, 2, 0)
    rows = snapshot(warehouse, "leads", "lead_id")
    assert str(rows[0]["created_at"]) == "2025-01-01 09:00:00+00:00"
    assert rows[0]["employees"] == 12
    assert rows[1]["annual_revenue"] == 225000.0
    assert json.loads(str(rows[0]["extra"])) == {"demo_requested": "true", "tags": ["a", "b"]}


def test_extras_are_queryable_in_duckdb(warehouse: Warehouse, tmp_path: Path) -> None:
    ingest_file(warehouse, "leads", write(tmp_path / "leads.csv", LEADS_CSV))
    with warehouse.connect() as con:
        visits = con.execute(
            "SELECT lead_id, (extra->>'$.web_visits')::INT FROM leads WHERE extra->>'$.web_visits' IS NOT NULL"
        ).fetchall()
    assert visits == [("L1", 3)]


def test_every_import_is_recorded(warehouse: Warehouse, tmp_path: Path) -> None:
    summary = ingest_file(warehouse, "leads", write(tmp_path / "leads.csv", LEADS_CSV))
    with warehouse.connect() as con:
        row = query_frame(con, "SELECT * FROM imports WHERE import_id = ?", [summary.import_id]).to_dicts()[0]
    assert (row["entity"], row["read"], row["loaded"], row["rejected"]) == ("leads", 7, 2, 5)
    assert row["source_file"].endswith("leads.csv")


def test_keys_stay_unique_under_overlapping_and_concurrent_imports(warehouse: Warehouse, tmp_path: Path) -> None:
    """The history tables keep keys unique by construction (no index): check it hard."""
    from concurrent.futures import ThreadPoolExecutor

    files = []
    for i in range(6):
        rows = "".join(f"K{(i * 7 + j) % 25},2025-01-{1 + j % 28:02d},v{i}\n" for j in range(20))
        files.append(write(tmp_path / f"part{i}.csv", "lead_id,created_at,company\n" + rows))
    with ThreadPoolExecutor(max_workers=3) as pool:
        summaries = list(pool.map(lambda f: ingest_file(warehouse, "leads", f), files * 2))
    with warehouse.connect() as con:
        total, distinct = con.execute("SELECT count(*), count(DISTINCT lead_id) FROM leads").fetchall()[0]
    assert total == distinct == 25
    assert sum(s.counts.loaded for s in summaries) == 25


def test_columns_named_like_internal_ones_are_kept_as_attributes(warehouse: Warehouse, tmp_path: Path) -> None:
    """A file's own row_number, _position or _reason columns are ordinary extra attributes."""
    path = write(
        tmp_path / "odd.csv",
        "lead_id,created_at,row_number,_position,_reason,extra\nA,2025-01-01,7,x,y,z\nB,bad,8,x,y,z\n",
    )
    c = ingest_file(warehouse, "leads", path).counts
    assert (c.loaded, c.rejected) == (1, 1)
    with warehouse.connect() as con:
        extra = con.execute("SELECT extra FROM leads").fetchall()[0][0]
        raw = con.execute("SELECT row_number, raw FROM rejects").fetchall()[0]
    assert json.loads(extra) == {"row_number": "7", "_position": "x", "_reason": "y", "extra": "z"}
    assert raw[0] == 3
    assert json.loads(raw[1])["row_number"] == "8"
    reserved = write(tmp_path / "reserved.csv", "lead_id,created_at,__row_number__\nA,2025-01-01,1\n")
    with pytest.raises(IngestError, match="is reserved"):
        ingest_file(warehouse, "leads", reserved)
