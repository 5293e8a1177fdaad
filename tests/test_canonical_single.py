"""``validate_record`` (one record, plain Python) agrees with ``validate`` (polars) on every record."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.canonical import (
    ENTITIES,
    EXTRA,
    ROW_NUMBER,
    EntityName,
    Field,
    KnownKeys,
    MissingColumnsError,
    parse_timestamp_text,
    validate,
    validate_record,
)

KNOWN = {
    "leads": pl.DataFrame({"lead_id": ["L1", "L2", "L 3"]}),
    "reps": pl.DataFrame({"rep_id": ["R1", "R2"], "team": ["smb", "enterprise"]}),
}

_SPACE = st.sampled_from(["", " ", "\t", "\u00a0", "\u2003", "\x1c", "\n"])
_JUNK = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)


@st.composite
def stamps(draw: st.DrawFn) -> str:
    """Timestamp text in the shapes sources send (and a few that do not parse)."""
    moment = draw(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31)))
    date = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    clock = f"{moment.hour:02d}:{moment.minute:02d}"
    seconds = f":{moment.second:02d}" + draw(
        st.sampled_from(["", ".5", ".250", f".{moment.microsecond:06d}", ".123456789"])
    )
    body = draw(
        st.sampled_from(
            [date, f"{date}T{clock}", f"{date} {clock}", f"{date}T{clock}{seconds}", f"{date} {clock}{seconds}"]
        )
    )
    zone = draw(
        st.sampled_from(["", "", "Z", "z", "+00:00", "-0000", "+05:30", "-08:00", "+0530", "+14:00", "+24:00", "+05"])
    )
    odd = draw(
        st.sampled_from(
            [None, "2024-02-30", "2024-13-01", "2024-1-5", "2024-01-05t10:00", "2023-12-31T23:59:60", "05/01/2024"]
        )
    )
    return odd if odd is not None else body + zone


def numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(min_value=-(10**20), max_value=10**20).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.floats(min_value=-1e6, max_value=1e6).map(lambda x: f"{x:.3f}"),
        st.sampled_from(
            ["1e400", "-1e400", "1_000", "0x10", ".5", "5.", "+5", "-0", "NaN", "inf", "Infinity", "١٢", "1,5"]
        ),
        st.sampled_from(
            ["0", "1", "0.0", "-1", "0.5", "2", "1.0000001", str(2**53), str(2**53 + 1), "9007199254740993.0"]
        ),
    )


def value_for(f: Field) -> st.SearchStrategy[Any]:
    kinds: dict[str, st.SearchStrategy[Any]] = {
        "timestamp": stamps(),
        "int": numbers(),
        "float": numbers(),
        "bool": st.sampled_from(["true", "FALSE", "Yes", "n", "1", "0", "T", "maybe", "ｙｅｓ"]),
        "list": st.one_of(
            st.lists(st.sampled_from(["NA", " EMEA ", "", "a|b"]), max_size=3).map("|".join), st.just("|")
        ),
        "text": st.one_of(_JUNK, st.sampled_from(["L1", "L2", "L 3", "R1", "R2", "R9", "smb"])),
    }
    base = kinds[f.kind]
    if f.choices is not None:
        base = st.one_of(st.sampled_from(f.choices), base)
    padded = st.tuples(_SPACE, base, _SPACE).map(lambda t: t[0] + t[1] + t[2])
    return st.one_of(st.none(), st.just(""), base, padded)


_EXTRA_NAMES = st.one_of(
    st.sampled_from(
        ["web_visits", "Budget (€)", "naïve", "a b", "_position", "_text_lead_id", "_reason", "😀", "x" * 60]
    ),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8),
)


@st.composite
def records(draw: st.DrawFn, entity: EntityName) -> dict[str, Any]:
    spec = ENTITIES[entity]
    record: dict[str, Any] = {}
    for f in spec.fields:
        if f.required or draw(st.booleans()):
            record[f.name] = draw(value_for(f))
    reserved = {*spec.field_names, ROW_NUMBER, EXTRA}
    for name in draw(st.lists(_EXTRA_NAMES, max_size=3, unique=True)):
        if name not in reserved:
            record[name] = draw(st.one_of(st.none(), _JUNK, numbers()))
    return record


def batch(entity: EntityName, record: dict[str, Any], known: dict[str, pl.DataFrame] | None) -> tuple[Any, Any]:
    frame = pl.DataFrame(
        {**{k: [v] for k, v in record.items()}, ROW_NUMBER: [1]},
        schema={**dict.fromkeys(record, pl.String), ROW_NUMBER: pl.Int64},
    )
    result = validate(entity, frame, known)
    if result.rows.height:
        return result.rows.drop(ROW_NUMBER).to_dicts()[0], None
    return None, result.rejects["reason"].item()


@pytest.mark.parametrize("entity", ["leads", "outcomes", "reps", "accounts", "decisions"])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_one_record_validates_exactly_as_a_one_row_frame(entity: EntityName, data: st.DataObject) -> None:
    record = data.draw(records(entity))
    known = data.draw(st.sampled_from([None, KNOWN]))
    want_row, want_reason = batch(entity, record, known)
    row, reason = validate_record(entity, record, known)
    assert reason == want_reason
    assert row == want_row
    if known is not None:  # prepared keys give the same answer as frames
        assert validate_record(entity, record, KnownKeys.from_frames(known)) == (row, reason)


@settings(max_examples=150, deadline=None)
@given(text=st.one_of(stamps(), _JUNK))
def test_timestamp_text_parses_as_polars_parses_it(text: str) -> None:
    want = batch("leads", {"lead_id": "L1", "created_at": text}, None)
    got = validate_record("leads", {"lead_id": "L1", "created_at": text})
    assert got == want
    stripped = text.strip(" \t\n\r\x0b\x0c\x85\xa0")
    if got[0] is not None and stripped == text:
        assert parse_timestamp_text(text) == got[0]["created_at"]


def test_reasons_and_defaults_match_on_hand_picked_records() -> None:
    cases: list[tuple[EntityName, dict[str, Any]]] = [
        ("leads", {"lead_id": " a ", "created_at": "2025-03-04T05:06:07.5-05:30", "employees": "-3", "x": " y "}),
        ("leads", {"lead_id": "", "created_at": "31/13/2025", "employees": "12.5", "annual_revenue": "-1e20"}),
        ("outcomes", {"lead_id": "L9", "event": "won", "occurred_at": "2025-01-01", "value": "-0.5"}),
        ("outcomes", {"lead_id": "L1", "event": "converted", "occurred_at": "2025-01-01T10:00:00.123Z"}),
        ("decisions", {"lead_id": "L1", "decided_at": "2025-01-01", "rep_id": "R2", "propensity": "0"}),
        ("decisions", {"lead_id": "L2", "decided_at": "2025-01-01", "rep_id": "R9", "team": None, "propensity": "1.5"}),
        ("decisions", {"lead_id": "L2", "decided_at": "2025-01-01", "team": None, "rep_id": "R1"}),
        ("reps", {"rep_id": "R1", "name": "Ann", "team": "smb", "regions": " NA | | EMEA", "active": "Yes"}),
    ]
    for entity, record in cases:
        assert validate_record(entity, record, KNOWN) == batch(entity, record, KNOWN), (entity, record)
    row, reason = validate_record("decisions", cases[4][1], KNOWN)
    assert row is None and reason == "propensity: 0.0 must be above 0"
    row, _ = validate_record("decisions", cases[6][1], KNOWN)
    assert row is not None and row["team"] == "smb" and row["decision_id"] == "L2@2025-01-01T00:00:00.000000"
    row, _ = validate_record("leads", cases[0][1], unpack_extra=True)
    assert row is None  # employees -3
    row, _ = validate_record("leads", {"lead_id": "a", "created_at": "2025-01-01", "x": " y "}, unpack_extra=True)
    assert row is not None and row["x"] == " y " and EXTRA not in row
    assert row["created_at"] == datetime(2025, 1, 1, tzinfo=UTC)


def test_a_record_without_a_required_field_is_refused_like_a_file() -> None:
    with pytest.raises(MissingColumnsError, match="created_at"):
        validate_record("leads", {"lead_id": "a"})
