"""Validation of canonical records: types, required fields, enumerations, ranges, references."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.canonical import (
    ENTITIES,
    ROW_NUMBER,
    MissingColumnsError,
    _parse_timestamp_few,
    parse_timestamp,
    parse_timestamp_series,
    validate,
)


def raw(**columns: list[str | None]) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    return pl.DataFrame(
        {ROW_NUMBER: list(range(2, n + 2)), **columns}, schema_overrides=dict.fromkeys(columns, pl.String)
    )


def test_valid_and_invalid_leads_split_with_reasons_naming_the_field() -> None:
    result = validate(
        "leads",
        raw(
            lead_id=["a", "b", None, "d", "e"],
            created_at=["2025-01-01", "31/13/2025", "2025-01-01", "2025-01-02T10:00:00+01:00", "2025-01-01"],
            employees=["10", "n/a", "5", "-3", "12.0"],
            web_visits=["3", None, "1", "2", "7"],
        ),
    )
    assert result.rows["lead_id"].to_list() == ["a", "e"]
    assert result.rows["employees"].to_list() == [10, 12]
    assert result.rows["extra"].to_list() == ['{"web_visits":"3"}', '{"web_visits":"7"}']
    reasons = dict(zip(result.rejects[ROW_NUMBER].to_list(), result.rejects["reason"].to_list(), strict=True))
    assert reasons[3] == "created_at: '31/13/2025' is not an ISO 8601 timestamp; employees: 'n/a' is not a whole number"
    assert reasons[4] == "lead_id: is required but missing"
    assert reasons[5] == "employees: -3 must be at least 0"
    raw_values = result.rejects.filter(pl.col(ROW_NUMBER) == 3)["raw"].item()
    assert '"created_at":"31/13/2025"' in raw_values
    assert result.read == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-04", datetime(2025, 3, 4, tzinfo=UTC)),
        ("2025-03-04T05:06:07", datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)),
        ("2025-03-04 05:06:07.250", datetime(2025, 3, 4, 5, 6, 7, 250000, tzinfo=UTC)),
        ("2025-03-04T05:06:07Z", datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)),
        ("2025-03-04T05:06:07+02:00", datetime(2025, 3, 4, 3, 6, 7, tzinfo=UTC)),
        ("2025-03-04T05:06:07.5-0530", datetime(2025, 3, 4, 10, 36, 7, 500000, tzinfo=UTC)),
        ("2025-03-04T05:06", datetime(2025, 3, 4, 5, 6, tzinfo=UTC)),
        ("2025-02-30", None),
        ("04/03/2025", None),
        ("yesterday", None),
    ],
)
def test_timestamps_are_iso_8601_and_utc_without_offset(text: str, expected: datetime | None) -> None:
    frame = pl.DataFrame({"t": [text]})
    assert frame.select(parse_timestamp(pl.col("t"))).item() == expected
    assert parse_timestamp_series(frame["t"]).item() == expected


def test_mixed_timestamp_formats_in_one_column_all_parse() -> None:
    texts = ["2025-01-01T00:00:00Z", "2025-01-01 01:00:00", "2025-01-01T03:00:00+02:00", "2025-01-01", None, "bad"]
    parsed = parse_timestamp_series(pl.Series("t", texts))
    expected = pl.DataFrame({"t": texts}).select(parse_timestamp(pl.col("t"))).to_series()
    assert parsed.to_list() == expected.to_list()
    assert parsed.null_count() == 2


_STAMP_FORMATS = (
    "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M", "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S+00:00", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%d %H:%M%z", "%d/%m/%Y",
)  # fmt: skip
_stamp_texts = st.one_of(
    st.none(),
    st.text(alphabet="0123456789-:T +Z.z", max_size=30),
    st.builds(
        lambda moment, fmt, zone: moment.replace(tzinfo=zone).strftime(fmt),
        st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
        st.sampled_from(_STAMP_FORMATS),
        st.sampled_from([UTC, *(timezone(timedelta(minutes=m)) for m in (-330, -60, 60, 345))]),
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_stamp_texts, min_size=1, max_size=20))
def test_the_cheap_timestamp_parse_of_a_batch_reads_what_every_format_reads(texts: list[str | None]) -> None:
    # The first plain format, then all formats for the rest: the same as trying every format.
    series = pl.Series("t", texts, dtype=pl.String)
    expected = series.to_frame().select(parse_timestamp(pl.col("t"))).to_series()
    assert _parse_timestamp_few(series).equals(expected, check_dtypes=True, check_names=False)


def test_outcome_events_are_an_enumeration_and_leads_must_exist() -> None:
    known = {"leads": pl.DataFrame({"lead_id": ["a"]})}
    result = validate(
        "outcomes",
        raw(
            lead_id=["a", "zz", "a"],
            event=["converted", "won", "lost"],
            occurred_at=["2025-01-01"] * 3,
            value=["10", "2", ""],
        ),
        known,
    )
    assert result.rows["event"].to_list() == ["converted", "lost"]
    assert result.rows["value"].to_list() == [10.0, None]
    (reason,) = result.rejects["reason"].to_list()
    assert "event: 'won' is not one of contacted, meeting, qualified, converted, lost" in reason
    assert "lead_id: 'zz' is not a known lead" in reason


def test_outcome_without_event_id_gets_a_stable_natural_key() -> None:
    frame = raw(lead_id=["a"], event=["converted"], occurred_at=["2025-01-01T10:00:00+01:00"])
    first = validate("outcomes", frame).rows["event_id"].item()
    assert first == validate("outcomes", frame).rows["event_id"].item()
    assert first == "a:converted:2025-01-01T09:00:00.000000"


def test_decision_takes_its_team_from_a_known_rep_and_propensity_is_a_probability() -> None:
    known = {"leads": pl.DataFrame({"lead_id": ["a"]}), "reps": pl.DataFrame({"rep_id": ["r1"], "team": ["smb"]})}
    result = validate(
        "decisions",
        raw(
            lead_id=["a", "a", "a"],
            decided_at=["2025-01-01"] * 3,
            rep_id=["r1", "r2", "r1"],
            propensity=["0.5", "0.2", "0"],
        ),
        known,
    )
    assert result.rows["team"].to_list() == ["smb"]
    reasons = result.rejects["reason"].to_list()
    assert reasons[0] == "team: is required but missing; rep_id: 'r2' is not a known rep"
    assert reasons[1] == "propensity: 0.0 must be above 0"


def test_reps_lists_booleans_and_numbers() -> None:
    result = validate(
        "reps",
        raw(
            rep_id=["r1", "r2", "r3"],
            name=["Ann", "Bo", "Cy"],
            team=["smb", "smb", "smb"],
            regions=["NA| EMEA", "", "APAC"],
            active=["yes", "0", "maybe"],
            capacity_per_day=["5", "2", "2.5"],
        ),
    )
    assert result.rows["regions"].to_list() == [["NA", "EMEA"], []]
    assert result.rows["active"].to_list() == [True, False]
    assert result.rejects["reason"].to_list() == [
        "capacity_per_day: '2.5' is not a whole number; active: 'maybe' is not a boolean (true/false, yes/no, 1/0)",
    ]


def test_list_fields_accept_arrays() -> None:
    frame = pl.DataFrame(
        {ROW_NUMBER: [1], "rep_id": ["r"], "name": ["n"], "team": ["t"], "industries": [[" saas ", "fintech"]]}
    )
    assert validate("reps", frame).rows["industries"].to_list() == [["saas", "fintech"]]


def test_a_missing_required_column_refuses_the_file_and_hints_at_the_delimiter() -> None:
    with pytest.raises(MissingColumnsError, match=r"missing required column\(s\) lead_id, created_at.*delimiter"):
        validate("leads", pl.DataFrame({ROW_NUMBER: [1], "lead_id;created_at": ["a;2025-01-01"]}))


def test_values_that_look_like_sql_or_code_are_just_text() -> None:
    hostile = ["'; DROP TABLE leads; --", "__import__('os').system('true')", "{{7*7}}", "\x00\u202e"]
    result = validate("leads", raw(lead_id=hostile, created_at=["2025-01-01"] * 4, company=hostile))
    assert result.rows["company"].to_list() == hostile


text_or_null = st.one_of(
    st.none(), st.text(max_size=12), st.sampled_from(["", " ", "1", "-1", "2025-01-01", "true", "x|y"])
)


@settings(max_examples=60, deadline=None)
@given(
    entity=st.sampled_from(list(ENTITIES)),
    rows=st.lists(
        st.dictionaries(
            st.sampled_from(
                [
                    "lead_id",
                    "created_at",
                    "employees",
                    "event",
                    "occurred_at",
                    "rep_id",
                    "name",
                    "team",
                    "regions",
                    "active",
                    "decided_at",
                    "propensity",
                    "account_id",
                    "value",
                    "score",
                    "misc",
                ]
            ),
            text_or_null,
            min_size=0,
            max_size=8,
        ),
        max_size=12,
    ),
)
def test_any_input_splits_into_rows_and_rejects_that_add_up(entity: str, rows: list[dict[str, str | None]]) -> None:
    spec = ENTITIES[entity]  # type: ignore[index]
    columns = sorted({*spec.required, *(k for r in rows for k in r)} - ({"team"} if entity == "decisions" else set()))
    frame = pl.DataFrame(
        {ROW_NUMBER: list(range(1, len(rows) + 1)), **{c: [r.get(c) for r in rows] for c in columns}},
        schema={ROW_NUMBER: pl.Int64, **dict.fromkeys(columns, pl.String)},
    )
    if entity == "decisions" and "team" not in frame.columns and "rep_id" not in frame.columns:
        with pytest.raises(MissingColumnsError):
            validate(entity, frame)  # type: ignore[arg-type]
        return
    result = validate(entity, frame)  # type: ignore[arg-type]
    assert result.rows.height + result.rejects.height == frame.height
    assert set(result.rows[ROW_NUMBER]).isdisjoint(set(result.rejects[ROW_NUMBER]))
    assert result.rejects["reason"].null_count() == 0
    for name in spec.required:
        assert result.rows[name].null_count() == 0
