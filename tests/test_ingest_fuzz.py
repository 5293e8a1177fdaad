"""Hostile and random files: an import either refuses the whole file with one line, or loads
what is valid and keeps the rest with reasons — never a crash, never a count that does not add up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.ingest import IngestError, ingest_file
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse

cells = st.one_of(
    st.sampled_from(
        ["", "2025-01-01", "2025-13-45", "x,y", '"q"', "1e309", "-0", "NaN", "true", "'; DROP TABLE leads;--"]
    ),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.lists(st.sampled_from(["lead_id", "created_at", "employees", "company", "x"]), min_size=1, max_size=5),
    rows=st.lists(st.lists(cells, min_size=0, max_size=6), max_size=8),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_random_csv_never_crashes_and_counts_add_up(
    tmp_path_factory: pytest.TempPathFactory, header: list[str], rows: list[list[str]], delimiter: str
) -> None:
    home = tmp_path_factory.mktemp("fuzz")
    warehouse = Warehouse(Settings(home=home).warehouse_path)
    lines = [delimiter.join(header), *(delimiter.join(r) for r in rows)]
    path = home / "input.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        summary = ingest_file(warehouse, "leads", path)
    except IngestError as error:
        assert "\n" not in str(error)
        assert not warehouse.path.exists() or warehouse.table_counts()["leads"] == 0
        return
    c = summary.counts
    assert c.read == c.loaded + c.updated + c.rejected
    assert warehouse.table_counts()["rejects"] == c.rejected
    assert warehouse.table_counts()["leads"] == c.loaded


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=200))
def test_random_bytes_are_refused_or_rejected_line_by_line(
    tmp_path_factory: pytest.TempPathFactory, payload: bytes
) -> None:
    home = tmp_path_factory.mktemp("bytes")
    warehouse = Warehouse(Settings(home=home).warehouse_path)
    for name in ("input.csv", "input.jsonl", "input.parquet"):
        path = home / name
        path.write_bytes(b"lead_id,created_at\n" + payload if name.endswith(".csv") else payload)
        try:
            summary = ingest_file(warehouse, "leads", path)
        except IngestError as error:
            assert "\n" not in str(error)
            continue
        c = summary.counts
        assert c.read == c.loaded + c.updated + c.rejected


def test_jsonl_with_hostile_keys_and_nesting_is_kept_as_text(warehouse: Warehouse, tmp_path: Path) -> None:
    record = {
        "lead_id": "J1",
        "created_at": "2025-01-01",
        "'; DROP TABLE leads; --": "x",
        "nested": {"a": [1, {"b": None}]},
        "big": 10**30,
    }
    path = tmp_path / "leads.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert ingest_file(warehouse, "leads", path).counts.loaded == 1
    with warehouse.connect() as con:
        extra = json.loads(con.execute("SELECT extra FROM leads").fetchall()[0][0])
    assert extra["'; DROP TABLE leads; --"] == "x"
    assert json.loads(extra["nested"]) == {"a": [1, {"b": None}]}
    assert extra["big"] == str(10**30)
