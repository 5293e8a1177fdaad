"""The canonical data model and its validation: one semantics for every way data arrives.

Every import (CSV, Parquet, JSON lines, a mapped foreign export) and, later, every lead the
endpoint receives is turned into a *raw frame* of text columns and validated here into typed
canonical rows plus rejected rows with a reason. Pure polars: no I/O, no database.

A raw frame has one ``Utf8`` column per source field (``List(Utf8)`` is accepted for list
fields) and a ``row_number`` column (``Int64``) that says where the record sits in its source
file, so a rejected row can be found again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

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
    extras = [c for c in raw.columns if c not in spec.field_names and c != ROW_NUMBER]
    # Row numbers may repeat (a mapping can derive two records from one source row): records
    # are tracked by position, in a column whose name no source column takes.
    position = _POSITION
    while position in raw.columns:
        position = "_" + position
    raw = raw.with_row_index(position)
    frame = raw.with_columns(
        [pl.lit(None, pl.String()).alias(f.name) for f in spec.fields if f.name not in raw.columns]
    )
    # Phase 1: trimmed text (empty = missing) and typed values, each computed once.
    texts = frame.select(
        position,
        pl.col(ROW_NUMBER).cast(pl.Int64),
        *[_text(f, frame.schema[f.name]).alias(_TEXT + f.name) for f in spec.fields],
        (
            pl.struct([_as_text(c, frame.schema[c]) for c in extras]).struct.json_encode()
            if extras
            else pl.lit(None, pl.String())
        ).alias(EXTRA),
    )
    texts = texts.with_columns(
        parse_timestamp_series(texts[_TEXT + f.name]).alias(_TEXT + f.name + "_ts")
        for f in spec.fields
        if f.kind == "timestamp"
    )
    typed = texts.with_columns(_value(f).alias(f.name) for f in spec.fields)
    # Phase 2: what is wrong with each record, from the text and the value side by side.
    typed = typed.select(
        position,
        ROW_NUMBER,
        *spec.field_names,
        EXTRA,
        pl.concat_str([_problem(f) for f in spec.fields], separator="; ", ignore_nulls=True).alias("_reason"),
    )
    typed = _apply_defaults(entity, typed, known)
    typed = _check_references(spec, typed, known)
    typed = typed.with_columns(
        pl.when(pl.col("_reason") == "").then(None).otherwise(pl.col("_reason")).alias("_reason")
    )
    is_bad = pl.col("_reason").is_not_null()
    rows = typed.filter(~is_bad).drop("_reason", position)
    bad = typed.filter(is_bad).select(position, ROW_NUMBER, pl.col("_reason").alias("reason"))
    source = raw.join(bad.select(position), on=position, how="semi", maintain_order="left")
    raw_json = source.select(position, raw_as_json(source.drop(position)))
    rejects = bad.join(raw_json, on=position, how="left", maintain_order="left").drop(position)
    return Validated(rows=rows, rejects=rejects)


_POSITION = "_position"


def raw_as_json(raw: pl.DataFrame) -> pl.Series:
    """Each record's source values as one JSON object of text (bookkeeping columns left out)."""
    columns = [c for c in raw.columns if c != ROW_NUMBER]
    return raw.select(
        pl.struct([_as_text(c, raw.schema[c]) for c in columns]).struct.json_encode().alias("raw")
    ).to_series()


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.List):
        return pl.col(name).cast(pl.List(pl.String()))
    return pl.col(name).cast(pl.String())


_TEXT = "_text_"

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
    normalised = text.str.replace(_UTC_SUFFIX, "")
    candidates = [_parse_with(normalised, fmt) for fmt in _ZONED_FORMATS + _NAIVE_FORMATS]
    return pl.coalesce(candidates)


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


def _apply_defaults(entity: EntityName, typed: pl.DataFrame, known: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
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
            rep_team = reps.select(pl.col("rep_id"), pl.col("team").alias("_rep_team"))
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


def _check_references(spec: Entity, typed: pl.DataFrame, known: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    for column, target in spec.references.items():
        frame = known.get(target)
        if frame is None:
            continue
        target_key = ENTITIES[target].key
        keys = frame.select(pl.col(target_key).alias(column)).unique().with_columns(pl.lit(True).alias("_known"))
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
