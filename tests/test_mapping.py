"""Mapping files: strict validation, predictable order of steps, derived entities."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from models.canonical import ROW_NUMBER
from pipelines.ingest import IngestError, ingest_file
from pipelines.mapping import MappingError, apply_mapping, derive_records, load_mapping, parse_mapping
from pipelines.warehouse import Warehouse, query_frame
from tests.conftest import write


def frame(**columns: list[str | None]) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    return pl.DataFrame(
        {ROW_NUMBER: list(range(2, n + 2)), **columns}, schema_overrides=dict.fromkeys(columns, pl.String)
    )


def test_steps_apply_in_documented_order() -> None:
    mapping = parse_mapping(
        {
            "missing_values": ["Select", "-"],
            "templates": {"lead_id": "X-{Id}-{__row__}"},
            "rename": {"Created": "created_at", "Industry": "industry", "Revenue": "annual_revenue"},
            "values": {"industry": {"Tech": "technology", "Unknown": None}},
            "scale": {"annual_revenue": 1000},
            "constants": {"source": "hubspot", "industry": "other"},
        }
    )
    out = apply_mapping(
        mapping,
        frame(
            Id=["7", "8", "9"],
            Created=["2025-01-01", "2025-01-02", "-"],
            Industry=["Tech", "Select", "Unknown"],
            Revenue=["1.5", "abc", None],
        ),
    )
    assert out["lead_id"].to_list() == ["X-7-2", "X-8-3", "X-9-4"]
    assert out["created_at"].to_list() == ["2025-01-01", "2025-01-02", None]
    # "Select" became missing before the value map, then the constant filled it; None from the map too.
    assert out["industry"].to_list() == ["technology", "other", "other"]
    assert out["annual_revenue"].to_list() == ["1500.0", "abc", None]  # non-numbers are left for validation to reject
    assert out["source"].to_list() == ["hubspot"] * 3


def test_sequence_time_spreads_rows_evenly_in_file_order() -> None:
    mapping = parse_mapping(
        {"sequence_time": {"column": "created_at", "start": "2020-01-01T00:00:00Z", "end": "2020-01-05T00:00:00Z"}}
    )
    out = apply_mapping(mapping, frame(a=["1", "2", "3", "4"]))
    assert out["created_at"].to_list() == [
        "2020-01-01T00:00:00.000000+00:00",
        "2020-01-02T00:00:00.000000+00:00",
        "2020-01-03T00:00:00.000000+00:00",
        "2020-01-04T00:00:00.000000+00:00",
    ]


def test_derivations_select_rows_and_carry_the_row_number() -> None:
    mapping = parse_mapping(
        {
            "rename": {"id": "lead_id"},
            "derive": {
                "outcomes": [
                    {
                        "when": {"column": "stage", "in": ["Won"]},
                        "columns": {"occurred_at": "closed", "value": "amount"},
                        "constants": {"event": "converted"},
                    },
                    {
                        "when": {"column": "stage", "in": ["Lost"]},
                        "columns": {"occurred_at": "closed"},
                        "constants": {"event": "lost"},
                    },
                ]
            },
        }
    )
    mapped = apply_mapping(
        mapping,
        frame(
            id=["a", "b", "c"],
            stage=["Won", "Open", "Lost"],
            closed=["2025-02-01", None, "2025-03-01"],
            amount=["10", None, "0"],
        ),
    )
    outcomes = derive_records(mapping, mapped, "leads")["outcomes"]
    assert outcomes.select(ROW_NUMBER, "lead_id", "event", "value").rows() == [
        (2, "a", "converted", "10"),
        (4, "c", "lost", None),
    ]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"renmae": {"a": "b"}}, "renmae: Extra inputs are not permitted"),
        ({"delimiter": ";;"}, "delimiter must be a single character"),
        ({"templates": {"lead_id": "{__class__.__init__}"}}, "only plain {column} placeholders"),
        ({"templates": {"lead_id": "{a!r}"}}, "only plain {column} placeholders"),
        ({"derive": {"leads": []}}, "derive.leads"),
        ({"derive": {"outcomes": [{"when": {"column": "x"}}]}}, "exactly one of"),
        (
            {"sequence_time": {"column": "created_at", "start": "2020-01-02", "end": "2020-01-01"}},
            "`end` must be after `start`",
        ),
        (["not", "a", "mapping"], "expected a YAML mapping"),
    ],
)
def test_invalid_mappings_name_the_key_and_the_problem(document: object, message: str) -> None:
    with pytest.raises(MappingError, match=message.replace("{", r"\{").replace("}", r"\}").replace("(", r"\(")):
        parse_mapping(document)


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    hostile = write(tmp_path / "evil.yaml", "rename: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(MappingError, match="not valid YAML"):
        load_mapping(hostile)


def test_a_mapping_naming_a_missing_column_fails_the_whole_file(warehouse: Warehouse, tmp_path: Path) -> None:
    data = write(tmp_path / "leads.csv", "id,created\nA,2025-01-01\n")
    mapping = write(tmp_path / "m.yaml", "rename: {id: lead_id, created: created_at, region_name: region}\n")
    with pytest.raises(IngestError, match=r"rename: the file has no column\(s\) region_name"):
        ingest_file(warehouse, "leads", data, mapping)
    assert warehouse.table_counts()["leads"] == 0


def test_mapping_for_another_entity_is_refused(warehouse: Warehouse, tmp_path: Path) -> None:
    data = write(tmp_path / "leads.csv", "lead_id,created_at\nA,2025-01-01\n")
    with pytest.raises(IngestError, match="written for reps, not leads"):
        ingest_file(warehouse, "leads", data, write(tmp_path / "m.yaml", "entity: reps\n"))


def test_a_spreadsheet_export_with_placeholders_and_a_status_column(warehouse: Warehouse, tmp_path: Path) -> None:
    data = write(
        tmp_path / "export.csv",
        "Record ID,Create Date,Company Name,Industry,Lead Status,Closed\n"
        "101,2025-03-01 10:00,Acme,Select,Closed Won,2025-04-01\n"
        "102,2025-03-02 11:00,Beta,Software,Open,\n"
        "103,2025-03-03 12:00,Gamma,--None--,Closed Lost,2025-04-15\n",
    )
    mapping = write(
        tmp_path / "hubspot.yaml",
        """
missing_values: ["Select", "--None--"]
rename: {Record ID: lead_id, Create Date: created_at, Company Name: company, Industry: industry}
derive:
  outcomes:
    - when: {column: Lead Status, in: [Closed Won]}
      columns: {occurred_at: Closed}
      constants: {event: converted}
    - when: {column: Lead Status, in: [Closed Lost]}
      columns: {occurred_at: Closed}
      constants: {event: lost}
drop: [Lead Status, Closed]
""",
    )
    summary = ingest_file(warehouse, "leads", data, mapping)
    assert summary.counts.loaded == 3
    assert summary.derived["outcomes"].loaded == 2
    with warehouse.connect() as con:
        leads = query_frame(con, "SELECT lead_id, industry, extra FROM leads ORDER BY lead_id").rows()
        events = query_frame(con, "SELECT lead_id, event FROM outcomes ORDER BY lead_id").rows()
    assert leads == [("101", None, None), ("102", "Software", None), ("103", None, None)]
    assert events == [("101", "converted"), ("103", "lost")]


def test_two_records_derived_from_one_row_are_counted_and_rejected_separately(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    data = write(tmp_path / "leads.csv", "id,created,stage\nA,2025-01-01,Won\nB,2025-01-02,Won\n")
    mapping = write(
        tmp_path / "m.yaml",
        """
rename: {id: lead_id, created: created_at}
derive:
  outcomes:
    - columns: {occurred_at: created_at}
      constants: {event: contacted}
    - when: {column: stage, in: [Won]}
      columns: {occurred_at: stage}
      constants: {event: converted}
""",
    )
    summary = ingest_file(warehouse, "leads", data, mapping)
    outcomes = summary.derived["outcomes"]
    assert (outcomes.read, outcomes.loaded, outcomes.rejected) == (4, 2, 2)
    with warehouse.connect() as con:
        rejects = query_frame(con, "SELECT row_number, reason FROM rejects ORDER BY row_number").rows()
    assert rejects == [
        (2, "occurred_at: 'Won' is not an ISO 8601 timestamp"),
        (3, "occurred_at: 'Won' is not an ISO 8601 timestamp"),
    ]
