"""The canonical data model and its validation: one semantics for every way data arrives.

Every import (CSV, Parquet, JSON lines, a mapped foreign export) and, later, every lead the
endpoint receives is turned into a *raw frame* of text columns and validated here into typed
canonical rows plus rejected rows with a reason. Pure polars: no I/O, no database.

A raw frame has one ``Utf8`` column per source field (``List(Utf8)`` is accepted for list
fields) and a ``row_number`` column (``Int64``) that says where the record sits in its source
file, so a rejected row can be found again.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Literal

import polars as pl

EntityName = Literal["leads", "outcomes", "reps", "accounts", "decisions"]
ENTITY_NAMES: tuple[EntityName, ...] = ("leads", "outcomes", "reps", "accounts", "decisions")

FieldKind = Literal["text", "int", "float", "timestamp", "bool", "list"]

ROW_NUMBER = "__row_number__"
"""Column of a raw frame holding the record's position in its source (1-based). Named so that
no ordinary source column collides with it (a file's own ``row_number`` is just an attribute);
readers refuse a file that uses this exact name."""

EXTRA = "extra"
"""Column holding every non-canonical field of a record as a JSON object of text values."""

OUTCOME_EVENTS: tuple[str, ...] = ("contacted", "meeting", "qualified", "converted", "lost")

_TRUE = ("true", "yes", "1", "y", "t")
_FALSE = ("false", "no", "0", "n", "f")


@dataclass(frozen=True)
class Field:
    """One canonical field: its type, whether a record needs it, and its allowed values."""

    name: str
    kind: FieldKind = "text"
    required: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    minimum_exclusive: bool = False


@dataclass(frozen=True)
class Entity:
    """A canonical table: its fields and the field that identifies a record."""

    name: EntityName
    key: str
    fields: tuple[Field, ...]
    references: Mapping[str, EntityName] = field(default_factory=dict)
    """field → referenced entity; a value not known there rejects the record."""

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    def polars_schema(self) -> dict[str, pl.DataType]:
        """The typed schema of validated rows (canonical fields, then ``extra``)."""
        schema: dict[str, pl.DataType] = {f.name: _DTYPES[f.kind] for f in self.fields}
        schema[EXTRA] = pl.String()
        return schema


_DTYPES: dict[FieldKind, pl.DataType] = {
    "text": pl.String(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "timestamp": pl.Datetime("us", "UTC"),
    "bool": pl.Boolean(),
    "list": pl.List(pl.String()),
}

ENTITIES: dict[EntityName, Entity] = {
    "leads": Entity(
        name="leads",
        key="lead_id",
        fields=(
            Field("lead_id", required=True),
            Field("created_at", "timestamp", required=True),
            Field("email"),
            Field("company"),
            Field("account_id"),
            Field("industry"),
            Field("employees", "int", minimum=0),
            Field("annual_revenue", "float", minimum=0),
            Field("country"),
            Field("region"),
            Field("source"),
            Field("title"),
            Field("seniority"),
            Field("product_interest"),
            Field("score", "float"),
        ),
    ),
    "outcomes": Entity(
        name="outcomes",
        key="event_id",
        fields=(
            Field("event_id"),
            Field("lead_id", required=True),
            Field("event", required=True, choices=OUTCOME_EVENTS),
            Field("occurred_at", "timestamp", required=True),
            Field("value", "float", minimum=0),
        ),
        references={"lead_id": "leads"},
    ),
    "reps": Entity(
        name="reps",
        key="rep_id",
        fields=(
            Field("rep_id", required=True),
            Field("name", required=True),
            Field("team", required=True),
            Field("seniority"),
            Field("regions", "list"),
            Field("industries", "list"),
            Field("capacity_per_day", "int", minimum=0),
            Field("weight", "float", minimum=0),
            Field("active", "bool"),
        ),
    ),
    "accounts": Entity(
        name="accounts",
        key="account_id",
        fields=(
            Field("account_id", required=True),
            Field("name", required=True),
            Field("domain"),
            Field("owner_rep_id"),
            Field("industry"),
            Field("employees", "int", minimum=0),
            Field("annual_revenue", "float", minimum=0),
            Field("country"),
        ),
    ),
    "decisions": Entity(
        name="decisions",
        key="decision_id",
        fields=(
            Field("decision_id"),
            Field("lead_id", required=True),
            Field("decided_at", "timestamp", required=True),
            Field("team", required=True),
            Field("rep_id"),
            Field("action"),
            Field("policy"),
            Field("policy_version", "int", minimum=1),
            Field("experiment"),
            Field("arm"),
            Field("propensity", "float", minimum=0, maximum=1, minimum_exclusive=True),
            Field("reasons"),
            Field("score", "float"),
        ),
        references={"lead_id": "leads", "rep_id": "reps"},
    ),
}


class MissingColumnsError(ValueError):
    """A source lacks a column every record needs: the whole file is refused."""


@dataclass(frozen=True)
class Validated:
    """The result of validating a raw frame.

    Attributes:
        rows: valid records, typed by :meth:`Entity.polars_schema`, plus ``row_number``; in
            source order, duplicates of a key included (the caller applies them in order).
        rejects: ``row_number``, ``reason`` and ``raw`` (the record's values as JSON text).
    """

    rows: pl.DataFrame
    rejects: pl.DataFrame

    @property
    def read(self) -> int:
        return self.rows.height + self.rejects.height


def check_columns(entity: EntityName, columns: list[str]) -> None:
    """Refuse a source that lacks a required column, naming what is there instead."""
    spec = ENTITIES[entity]
    columns = [c for c in columns if c != ROW_NUMBER]
    missing = [name for name in spec.required if name not in columns]
    if entity == "decisions" and missing == ["team"] and "rep_id" in columns:
        missing = []  # a decision's team can come from its rep (see ``validate``)
    if missing:
        shown = ", ".join(repr(c) for c in columns[:8]) + (" …" if len(columns) > 8 else "")
        hint = ""
        if len(columns) == 1 and any(sep in columns[0] for sep in ";\t|,"):
            hint = " — the header looks like one column: is the delimiter right?"
        raise MissingColumnsError(
            f"{entity}: missing required column(s) {', '.join(missing)}; "
            f"the file has {len(columns)} column(s): {shown}{hint}"
        )


def validate(
    entity: EntityName,
    raw: pl.DataFrame,
    known: Mapping[str, pl.DataFrame] | None = None,
) -> Validated:
    """Type, check and split a raw frame into valid rows and rejects with reasons.

    Args:
        entity: which canonical table the records are for.
        raw: text columns named as canonical fields (others become extra attributes) and
            ``row_number``.
        known: for entities with references, a frame per referenced entity holding its key
            column (e.g. ``{"leads": frame_with_lead_id}``); for decisions, ``"reps"`` may also
            carry ``team`` so a decision without a team takes its rep's team.

    Returns:
        The valid rows and the rejects; ``rows.height + rejects.height == raw.height``.
    """
    spec = ENTITIES[entity]
    check_columns(entity, raw.columns)
    known = known or {}
    # Row numbers may repeat (a mapping can derive two records from one source row): records
    # are tracked by position, in a column whose name no source column takes.
    position = _POSITION
    while position in raw.columns:
        position = "_" + position
    # One lazy plan, collected once: a frame of a few hundred records (an API batch) would
    # otherwise pay a few milliseconds of fixed cost per eager step.
    source = raw.lazy().with_row_index(position)
    plan = _typing_plan(entity, tuple(raw.schema.items()), position)
    texts = source.with_columns(plan.missing).select(plan.texts)
    if plan.stamps:
        # Each format is tried only where the earlier ones failed (one column at a time): a
        # coalesce would parse every value with all eleven formats.
        parse = parse_timestamp_series if raw.height > SERIES_PARSE_MIN_ROWS else _parse_timestamp_few
        eager = texts.collect(engine="in-memory")
        stamps = [parse(eager[_TEXT + name]).alias(_TEXT + name + "_ts") for name in plan.stamps]
        texts = eager.with_columns(stamps).lazy()
    typed = texts.with_columns(plan.values).select(plan.checks)
    typed = _apply_defaults(entity, typed, known)
    typed = _check_references(spec, typed, known)
    typed = typed.with_columns(
        pl.when(pl.col("_reason") == "").then(None).otherwise(pl.col("_reason")).alias("_reason")
    )
    checked = typed.collect(engine="in-memory")
    is_bad = pl.col("_reason").is_not_null()
    rows = checked.filter(~is_bad).drop("_reason", position)
    bad = checked.filter(is_bad).select(position, ROW_NUMBER, pl.col("_reason").alias("reason"))
    if bad.is_empty():  # the usual case: no join to build the rejects' source text
        return Validated(rows=rows, rejects=pl.DataFrame(schema=REJECTS_SCHEMA))
    columns = [c for c in raw.columns if c != ROW_NUMBER]
    raw_json = (
        source.join(bad.lazy().select(position), on=position, how="semi", maintain_order="left")
        .select(position, _json_object(columns, {position: pl.UInt32(), **raw.schema}).alias("raw"))
        .collect(engine="in-memory")
    )
    rejects = bad.join(raw_json, on=position, how="left", maintain_order="left").drop(position)
    return Validated(rows=rows, rejects=rejects)


@dataclass(frozen=True)
class _TypingPlan:
    """The expressions that type and check a source schema (built once per schema: building
    them costs milliseconds, as much as running them on a thousand records)."""

    missing: list[pl.Expr]
    texts: list[pl.Expr]
    stamps: list[str]
    values: list[pl.Expr]
    checks: list[pl.Expr | str]


@lru_cache(maxsize=64)
def _typing_plan(entity: EntityName, source: tuple[tuple[str, pl.DataType], ...], position: str) -> _TypingPlan:
    spec = ENTITIES[entity]
    schema = {**dict(source), **{f.name: pl.String() for f in spec.fields if f.name not in dict(source)}}
    extras = [c for c, _ in source if c not in spec.field_names and c != ROW_NUMBER]
    # Phase 1: trimmed text (empty = missing) and typed values, each computed once.
    one_value_lists = [f for f in spec.fields if f.kind != "list" and isinstance(schema[f.name], pl.List)]
    texts: list[pl.Expr] = [
        pl.col(position),
        pl.col(ROW_NUMBER).cast(pl.Int64),
        *[(pl.col(f.name).list.len() > 1).fill_null(False).alias(_MANY + f.name) for f in one_value_lists],
        *[_text(f, schema[f.name]).alias(_TEXT + f.name) for f in spec.fields],
        (_json_object(extras, {position: pl.UInt32(), **schema}) if extras else pl.lit(None, pl.String())).alias(EXTRA),
    ]
    stamps = [f.name for f in spec.fields if f.kind == "timestamp"]
    # Phase 2: what is wrong with each record, from the text and the value side by side.
    many = [
        pl.when(pl.col(_MANY + f.name)).then(pl.lit(f"{f.name}: expected one value, got a list"))
        for f in one_value_lists
    ]
    problems = [*many, *[_problem(f) for f in spec.fields]]
    return _TypingPlan(
        missing=[pl.lit(None, pl.String()).alias(f.name) for f in spec.fields if f.name not in dict(source)],
        texts=texts,
        stamps=stamps,
        values=[_value(f).alias(f.name) for f in spec.fields],
        checks=[
            position,
            ROW_NUMBER,
            *spec.field_names,
            EXTRA,
            pl.concat_str(problems, separator="; ", ignore_nulls=True).alias("_reason"),
        ],
    )


REJECTS_SCHEMA = {ROW_NUMBER: pl.Int64, "reason": pl.String, "raw": pl.String}
"""The columns of :attr:`Validated.rejects`."""

SERIES_PARSE_MIN_ROWS = 20_000
"""Above this many records timestamps are parsed format by format, the formats ordered by a
sample (:func:`parse_timestamp_series`); below, the first plain format and then every format for
what it missed (:func:`_parse_timestamp_few`: cheaper than ordering the formats)."""

_POSITION = "_position"


def raw_as_json(raw: pl.DataFrame) -> pl.Series:
    """Each record's source values as one JSON object of text (bookkeeping columns left out)."""
    columns = [c for c in raw.columns if c != ROW_NUMBER]
    return raw.select(_json_object(columns, raw.schema).alias("raw")).to_series()


def _json_object(columns: list[str], schema: Mapping[str, pl.DataType]) -> pl.Expr:
    """The ``columns`` as one JSON object of text per row (``schema``: the frame's columns, in order)."""
    order = list(schema)
    return pl.struct([_as_text(c, schema[c], order) for c in columns]).struct.json_encode()


def _as_text(name: str, dtype: pl.DataType, order: list[str]) -> pl.Expr:
    # A source column may be named "*" or "^…$", which pl.col reads as a wildcard or a regex.
    literal = name == "*" or (name.startswith("^") and name.endswith("$"))
    column = pl.nth(order.index(name)).alias(name) if literal else pl.col(name)
    if isinstance(dtype, pl.List):
        return column.cast(pl.List(pl.String()))
    return column.cast(pl.String())


_TEXT = "_text_"
_MANY = "_many_"

_PROBLEM_TEXT: dict[FieldKind, str] = {
    "timestamp": "is not an ISO 8601 timestamp",
    "bool": "is not a boolean (true/false, yes/no, 1/0)",
    "int": "is not a whole number",
    "float": "is not a finite number",
}


def _text(f: Field, dtype: pl.DataType) -> pl.Expr:
    """The field's source text, trimmed, with empty meaning missing (lists: trimmed items)."""
    if f.kind == "list":
        if isinstance(dtype, pl.List):
            items = pl.col(f.name).cast(pl.List(pl.String()))
        else:
            items = pl.col(f.name).cast(pl.String()).str.split("|")
        return items.list.eval(pl.element().str.strip_chars()).list.eval(pl.element().filter(pl.element() != ""))
    if isinstance(dtype, pl.List):  # JSON lines / Parquet: an array where one value belongs
        column = pl.col(f.name).cast(pl.List(pl.String()))
        text = pl.when(column.list.len() == 1).then(column.list.first()).str.strip_chars()
    else:
        text = pl.col(f.name).cast(pl.String()).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def _value(f: Field) -> pl.Expr:
    """The typed value from the field's text (null where it is missing or does not parse)."""
    text = pl.col(_TEXT + f.name)
    if f.kind in ("text", "list"):
        return text
    if f.kind == "timestamp":
        return pl.col(_TEXT + f.name + "_ts")
    if f.kind == "bool":
        lowered = text.str.to_lowercase()
        return pl.when(lowered.is_in(_TRUE)).then(True).when(lowered.is_in(_FALSE)).then(False)
    number = text.cast(pl.Float64, strict=False)
    if f.kind == "int":
        whole = number.is_finite() & (number == number.round(0)) & (number.abs() < 2**53)
        return pl.when(whole).then(number).cast(pl.Int64)
    return pl.when(number.is_finite()).then(number)


def _problem(f: Field) -> pl.Expr:
    """One problem text per record for this field, or null."""
    text, value = pl.col(_TEXT + f.name), pl.col(f.name)
    given = text.is_not_null()
    checks: list[pl.Expr] = [_required_problem(f, ~given)]
    if f.kind in _PROBLEM_TEXT:
        unparsed = given & value.is_null()
        checks.append(
            pl.when(unparsed).then(pl.format("{}: '{}' {}", pl.lit(f.name), text, pl.lit(_PROBLEM_TEXT[f.kind])))
        )
        checks.append(_range_problem(f, value))
    if f.choices is not None:
        allowed = ", ".join(f.choices)
        bad = given & ~text.is_in(list(f.choices))
        checks.append(pl.when(bad).then(pl.format("{}: '{}' is not one of {}", pl.lit(f.name), text, pl.lit(allowed))))
    return pl.coalesce(checks)


def _required_problem(f: Field, missing: pl.Expr) -> pl.Expr:
    if not f.required:
        return pl.lit(None, pl.String())
    return pl.when(missing).then(pl.lit(f"{f.name}: is required but missing"))


def _range_problem(f: Field, value: pl.Expr) -> pl.Expr:
    checks: list[pl.Expr] = []
    if f.minimum is not None:
        low = value <= f.minimum if f.minimum_exclusive else value < f.minimum
        relation = "above" if f.minimum_exclusive else "at least"
        checks.append(pl.when(low).then(_bound_text(f, value, f"must be {relation} {f.minimum:g}")))
    if f.maximum is not None:
        checks.append(pl.when(value > f.maximum).then(_bound_text(f, value, f"must be at most {f.maximum:g}")))
    return pl.coalesce(checks) if checks else pl.lit(None, pl.String())


def _bound_text(f: Field, value: pl.Expr, rule: str) -> pl.Expr:
    return pl.format("{}: {} {}", pl.lit(f.name), value.cast(pl.String()), pl.lit(rule))


_ZONED_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d %H:%M%z")
# Plain seconds come first: they parse several times faster than the %.f variants, which
# still catch fractional seconds (a value both parse gives the same instant either way).
_NAIVE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)


# A UTC designator is dropped before parsing: naive parsing is several times faster than %z.
_UTC_SUFFIX = r"(?:[Zz]|[+-]00:?00)$"


def parse_timestamp(text: pl.Expr) -> pl.Expr:
    """Parse ISO 8601 text to UTC; a timestamp without an offset means UTC (SPEC)."""
    return _coalesced(text.str.replace(_UTC_SUFFIX, ""))


def _coalesced(normalised: pl.Expr) -> pl.Expr:
    return pl.coalesce([_parse_with(normalised, fmt) for fmt in _ZONED_FORMATS + _NAIVE_FORMATS])


def _parse_timestamp_few(text: pl.Series) -> pl.Series:
    """:func:`parse_timestamp` for a few values (an API batch): the first plain format, then
    every format for the values it did not parse, if any. The formats exclude each other (a
    value the first one reads has no offset, which every zoned format needs), so the result is
    the same; the usual batch pays for one format, not eleven."""
    normalised = text.str.replace(_UTC_SUFFIX, "")
    parsed = normalised.str.to_datetime(_NAIVE_FORMATS[0], strict=False, time_unit="us").dt.replace_time_zone("UTC")
    pending = parsed.is_null() & normalised.is_not_null()
    if not pending.any():
        return parsed.alias(text.name)
    index = pending.arg_true()
    rest = normalised.gather(index).to_frame("t").select(_coalesced(pl.col("t"))).to_series()
    return parsed.scatter(index, rest).alias(text.name)


def parse_timestamp_series(text: pl.Series) -> pl.Series:
    """:func:`parse_timestamp` for a whole column, fast: a file uses one or two formats, so each
    format is tried only on the values no earlier format parsed (the formats exclude each other,
    so the order changes the speed, never the result)."""
    normalised = text.str.replace(_UTC_SUFFIX, "")
    result = pl.Series(text.name, [None] * len(text), pl.Datetime("us", "UTC"))
    pending = normalised.is_not_null()
    sample = normalised.filter(pending).head(200).to_frame("t")
    formats = sorted(
        _ZONED_FORMATS + _NAIVE_FORMATS,
        key=lambda fmt: -sample.select(_parse_with(pl.col("t"), fmt).is_not_null().sum()).item(),
    )
    for fmt in formats:
        if not pending.any():
            break
        index = pending.arg_true()
        parsed = normalised.gather(index).to_frame("t").select(_parse_with(pl.col("t"), fmt)).to_series()
        hit = parsed.is_not_null()
        result = result.scatter(index.filter(hit), parsed.filter(hit))
        pending = pending.scatter(index.filter(hit), False)
    return result


def _parse_with(text: pl.Expr, fmt: str) -> pl.Expr:
    parsed = text.str.to_datetime(fmt, strict=False, time_unit="us")
    if fmt.endswith("%z"):
        return parsed.dt.convert_time_zone("UTC")
    return parsed.dt.replace_time_zone("UTC")


def _apply_defaults(entity: EntityName, typed: pl.LazyFrame, known: Mapping[str, pl.DataFrame]) -> pl.LazyFrame:
    """Fill derivable fields: natural keys for events without ids, a decision's team from its rep."""
    if entity == "outcomes":
        natural = pl.format(
            "{}:{}:{}", pl.col("lead_id"), pl.col("event"), pl.col("occurred_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.6f")
        )
        return typed.with_columns(pl.coalesce("event_id", natural).alias("event_id"))
    if entity == "decisions":
        natural = pl.format("{}@{}", pl.col("lead_id"), pl.col("decided_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.6f"))
        typed = typed.with_columns(pl.coalesce("decision_id", natural).alias("decision_id"))
        reps = known.get("reps")
        if reps is not None and "team" in reps.columns:
            rep_team = reps.lazy().select(pl.col("rep_id"), pl.col("team").alias("_rep_team"))
            typed = typed.join(rep_team, on="rep_id", how="left", maintain_order="left")
            typed = typed.with_columns(pl.coalesce("team", "_rep_team").alias("team")).drop("_rep_team")
            typed = typed.with_columns(
                _drop_reason("_reason", "team: is required but missing", pl.col("team").is_not_null())
            )
    return typed


def _drop_reason(column: str, text: str, condition: pl.Expr) -> pl.Expr:
    """Remove one problem from a '; '-joined reason where ``condition`` holds."""
    parts = pl.col(column).str.split("; ").list.eval(pl.element().filter(pl.element() != text))
    cleaned = parts.list.join("; ")
    return pl.when(condition).then(cleaned).otherwise(pl.col(column)).alias(column)


def _check_references(spec: Entity, typed: pl.LazyFrame, known: Mapping[str, pl.DataFrame]) -> pl.LazyFrame:
    for column, target in spec.references.items():
        frame = known.get(target)
        if frame is None:
            continue
        target_key = ENTITIES[target].key
        keys = frame.lazy().select(pl.col(target_key).alias(column)).unique().with_columns(pl.lit(True).alias("_known"))
        typed = typed.join(keys, on=column, how="left", maintain_order="left")
        unknown = pl.col(column).is_not_null() & pl.col("_known").is_null()
        problem = pl.format("{}: '{}' is not a known {}", pl.lit(column), pl.col(column), pl.lit(target[:-1]))
        typed = typed.with_columns(
            pl.when(unknown)
            .then(pl.concat_str([pl.col("_reason"), problem], separator="; ", ignore_nulls=True).str.strip_chars("; "))
            .otherwise(pl.col("_reason"))
            .alias("_reason")
        ).drop("_known")
    return typed


# -- one record, without frames ------------------------------------------------------------------

# ``validate`` on a one-row frame costs milliseconds of fixed polars overhead; the endpoint
# validates one lead per request. ``validate_record`` is the same semantics in plain Python:
# every rule above has its per-value twin below, and wherever polars' own parsing decides
# (number and timestamp text outside the plain shapes, float formatting in messages), the value
# goes through polars itself (cached), so the two paths cannot disagree.

# polars' ``str.strip_chars()`` trims Rust's ``char::is_whitespace`` (Unicode White_Space);
# Python's ``str.strip()`` also trims U+001C–U+001F.
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z", re.ASCII)
_PLAIN_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?([+-]\d{2}:\d{2})?)?\Z", re.ASCII
)
_UTC_SUFFIX_RE = re.compile(r"(?:[Zz]|[+-]00:?00)\Z")
_TRUE_SET, _FALSE_SET = frozenset(_TRUE), frozenset(_FALSE)
_REQUIRED = {name: spec.required for name, spec in ENTITIES.items()}
_FIELD_NAMES = {name: frozenset(spec.field_names) for name, spec in ENTITIES.items()}
# Each field, and whether it is plain text (no choices): its value is its trimmed text.
_RECORD_FIELDS = {
    name: tuple((f, f.kind == "text" and f.choices is None) for f in spec.fields) for name, spec in ENTITIES.items()
}


@dataclass(frozen=True)
class KnownKeys:
    """``known`` frames of :func:`validate` as sets, for :func:`validate_record`: the keys of
    each referenced entity, and each rep's team (for a decision without a team)."""

    keys: Mapping[str, frozenset[Any]] = field(default_factory=dict)
    rep_team: Mapping[Any, Any] | None = None

    @classmethod
    def from_frames(cls, known: Mapping[str, pl.DataFrame] | None) -> KnownKeys:
        known = known or {}
        keys = {name: frozenset(frame[ENTITIES[name].key].to_list()) for name, frame in known.items()}  # type: ignore[index]
        reps = known.get("reps")
        rep_team: dict[Any, Any] | None = None
        if reps is not None and "team" in reps.columns:
            # A left join keeps the first match's team for the record (keys are unique in practice).
            rep_team = {}
            for rep, team in zip(reps["rep_id"].to_list(), reps["team"].to_list(), strict=True):
                rep_team.setdefault(rep, team)
        return cls(keys, rep_team)


_NO_KNOWN = KnownKeys()


def raw_text(value: Any) -> str | None:
    """A JSON value as the raw text validation reads (a CSV cell would hold): booleans as
    ``true``/``false``, objects and arrays as compact JSON, None as missing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def validate_record(
    entity: EntityName,
    raw: Mapping[str, Any],
    known: KnownKeys | Mapping[str, pl.DataFrame] | None = None,
    *,
    unpack_extra: bool = False,
) -> tuple[dict[str, Any] | None, str | None]:
    """:func:`validate` for one record, without frames: ``(row, None)`` or ``(None, reason)``.

    Args:
        entity: which canonical table the record is for.
        raw: source values as text (``None`` for missing; a list of text for a list field),
            keyed by source field; every key that is not a canonical field becomes an extra.
        known: as in :func:`validate` (frames, converted on each call) or prepared :class:`KnownKeys`.
        unpack_extra: give the extra attributes as keys of the row (after the canonical fields,
            which win a clash) instead of the ``extra`` JSON text.

    Returns:
        The typed row exactly as ``validate(entity, one_row_frame).rows`` holds it (canonical
        fields, then ``extra`` as JSON text, no row number), or the reject reason it would give.

    Raises:
        MissingColumnsError: a required field is not a key of ``raw`` (as for a file without it).
    """
    spec = ENTITIES[entity]
    if any(name not in raw for name in _REQUIRED[entity]):
        check_columns(entity, [k for k in raw if k != ROW_NUMBER])
    prepared = known if isinstance(known, KnownKeys) else _NO_KNOWN if known is None else KnownKeys.from_frames(known)
    row: dict[str, Any] = {}
    problems: list[str] = []
    for f, plain in _RECORD_FIELDS[entity]:
        source = raw.get(f.name)
        if source is None or plain:  # the two common cases, as the general path reads them
            text = None if source is None else str(source).strip(WHITE_SPACE) or None
            row[f.name] = text
            if text is None and f.required:
                problems.append(f"{f.name}: is required but missing")
            continue
        text = _record_text(f, source)
        value = _record_value(f, text)
        row[f.name] = value
        problem = _record_problem(f, text, value)
        if problem is not None:
            problems.append(problem)
    names = _FIELD_NAMES[entity]
    extras = {k: _record_as_text(v) for k, v in raw.items() if k not in names and k != ROW_NUMBER}
    if not unpack_extra:
        row[EXTRA] = json.dumps(extras, separators=(",", ":"), ensure_ascii=False) if extras else None
    reason: str | None = "; ".join(problems) if problems else None
    reason = _record_defaults(entity, row, reason, prepared)
    for column, target in spec.references.items():
        keys = prepared.keys.get(target)
        if keys is None or row[column] is None or row[column] in keys:
            continue
        problem = f"{column}: '{row[column]}' is not a known {target[:-1]}"
        reason = problem if reason is None else f"{reason}; {problem}".strip("; ")
    if reason:
        return None, reason
    if unpack_extra:
        for k, v in extras.items():
            row.setdefault(k, v)
    return row, None


def _record_as_text(value: Any) -> Any:
    """The ``cast(pl.String)`` of a source value (lists item by item), for the extras JSON."""
    if isinstance(value, list):
        return [None if v is None else str(v) for v in value]
    return None if value is None else str(value)


def _record_text(f: Field, value: Any) -> Any:
    if f.kind == "list":
        if value is None:
            return None
        items = value if isinstance(value, list) else str(value).split("|")
        stripped = [None if v is None else str(v).strip(WHITE_SPACE) for v in items]
        return [v for v in stripped if v]  # nulls and empty items are dropped
    if value is None:
        return None
    text = str(value).strip(WHITE_SPACE)
    return text or None


def _record_value(f: Field, text: Any) -> Any:
    if text is None or f.kind in ("text", "list"):
        return text
    if f.kind == "timestamp":
        return parse_timestamp_text(text)
    if f.kind == "bool":
        lowered = text.lower()
        return True if lowered in _TRUE_SET else False if lowered in _FALSE_SET else None
    number = _number(text)
    if number is None or not math.isfinite(number):
        return None
    if f.kind == "int":
        return int(number) if number.is_integer() and abs(number) < 2**53 else None
    return number


def _record_problem(f: Field, text: Any, value: Any) -> str | None:
    if text is None:
        return f"{f.name}: is required but missing" if f.required else None
    if f.kind in _PROBLEM_TEXT:
        if value is None:
            return f"{f.name}: '{text}' {_PROBLEM_TEXT[f.kind]}"
        if f.minimum is not None and (value <= f.minimum if f.minimum_exclusive else value < f.minimum):
            relation = "above" if f.minimum_exclusive else "at least"
            return f"{f.name}: {_value_text(value)} must be {relation} {f.minimum:g}"
        if f.maximum is not None and value > f.maximum:
            return f"{f.name}: {_value_text(value)} must be at most {f.maximum:g}"
    if f.choices is not None and text not in f.choices:
        return f"{f.name}: '{text}' is not one of {', '.join(f.choices)}"
    return None


def _record_defaults(entity: EntityName, row: dict[str, Any], reason: str | None, known: KnownKeys) -> str | None:
    if entity == "outcomes" and row["event_id"] is None:
        parts = (row["lead_id"], row["event"], row["occurred_at"])
        row["event_id"] = None if None in parts else f"{parts[0]}:{parts[1]}:{_stamp_text(parts[2])}"
    if entity == "decisions":
        if row["decision_id"] is None and row["lead_id"] is not None and row["decided_at"] is not None:
            row["decision_id"] = f"{row['lead_id']}@{_stamp_text(row['decided_at'])}"
        if known.rep_team is not None:
            if row["team"] is None:
                row["team"] = known.rep_team.get(row["rep_id"]) if row["rep_id"] is not None else None
            if row["team"] is not None and reason is not None:
                reason = "; ".join(p for p in reason.split("; ") if p != "team: is required but missing")
    return reason


def _stamp_text(value: datetime) -> str:
    """``dt.to_string("%Y-%m-%dT%H:%M:%S%.6f")`` of a UTC timestamp."""
    return f"{value.year:04d}-{value:%m-%dT%H:%M:%S}.{value.microsecond:06d}"


def _number(text: str) -> float | None:
    """``cast(pl.Float64, strict=False)`` of trimmed text."""
    if _PLAIN_NUMBER.match(text):
        return float(text)
    return _polars_number(text)


@lru_cache(maxsize=4096)
def _polars_number(text: str) -> float | None:
    value = pl.Series([text], dtype=pl.String).cast(pl.Float64, strict=False)[0]
    return None if value is None else float(value)


def _value_text(value: float | int) -> str:
    """``cast(pl.String)`` of a typed value (polars formats floats its own way: ``1e+20``)."""
    if isinstance(value, int):
        return str(value)
    return str(pl.Series([value], dtype=pl.Float64).cast(pl.String)[0])


def parse_timestamp_text(text: str) -> datetime | None:
    """:func:`parse_timestamp_series` for one trimmed text value: the plain ISO 8601 shapes in
    Python, anything else through polars (cached)."""
    normalised = _UTC_SUFFIX_RE.sub("", text, count=1)
    match = _PLAIN_TIMESTAMP.match(normalised)
    if match is not None:
        year, month, day, hour, minute, second, fraction, offset = match.groups()
        try:
            zone = UTC
            if offset:
                sign = -1 if offset[0] == "-" else 1
                zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
            stamp = datetime(
                int(year),
                int(month),
                int(day),
                int(hour or 0),
                int(minute or 0),
                int(second or 0),
                int((fraction or "").ljust(6, "0")),
                tzinfo=zone,
            )
        except ValueError:
            pass  # out of range here (a leap second, a 24:00 offset, year 0): polars decides
        else:
            return stamp.astimezone(UTC)
    return _polars_timestamp(text)


@lru_cache(maxsize=4096)
def _polars_timestamp(text: str) -> datetime | None:
    value = parse_timestamp_series(pl.Series([text], dtype=pl.String))[0]
    return value if isinstance(value, datetime) else None
