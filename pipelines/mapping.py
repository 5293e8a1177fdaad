"""Mapping files: import a foreign export (Salesforce, HubSpot, a spreadsheet) as canonical data.

A mapping is YAML, validated strictly (an unknown key is an error, not a silent no-op). It is
applied to a raw text frame in a fixed order, so its effect is predictable:

1. ``missing_values``: tokens (after trimming) that mean *missing* in every column, e.g. ``Select``;
2. ``templates``: new columns built from source columns, e.g. ``"bank-{__row__}"``;
3. ``rename``: source column → canonical field;
4. ``values``: per column (after rename), value → value (``null`` = missing);
5. ``scale``: multiply a numeric column (e.g. revenue given in millions);
6. ``constants``: fill a column where it is missing;
7. ``sequence_time``: a file in time order without timestamps gets evenly spaced ones;
8. ``derive``: further entities made from each record (outcomes from a status column, historical
   decisions from an owner column), referring to columns as they are after steps 1–7;
9. ``drop``: columns (named as after step 3) left out of the imported records, e.g. a status
   column that only served to derive outcomes and would leak them as a lead attribute.

Nothing here evaluates user text as code or SQL: templates only substitute column values.
"""

from __future__ import annotations

import re
import string
from datetime import datetime
from pathlib import Path
from typing import Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.canonical import ENTITIES, ROW_NUMBER, EntityName, parse_timestamp
from pipelines.sources import SourceFormat

ROW_TOKEN = "__row__"  # noqa: S105 (a template placeholder, not a secret)
_MAX_MAPPING_BYTES = 256 * 1024


class MappingError(ValueError):
    """A mapping file is unreadable or invalid; the message names the key and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    """Which records a derivation applies to: ``column`` is in ``in`` (or not, with ``not_in``)."""

    column: str
    in_: list[str] | None = Field(default=None, alias="in")
    not_in: list[str] | None = None
    present: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        given = [x is not None for x in (self.in_, self.not_in, self.present)]
        if sum(given) != 1:
            raise ValueError("a condition needs exactly one of `in`, `not_in`, `present`")
        return self

    def expr(self) -> pl.Expr:
        col = pl.col(self.column)
        if self.in_ is not None:
            return col.is_in(self.in_).fill_null(False)
        if self.not_in is not None:
            return (~col.is_in(self.not_in)).fill_null(True)
        return col.is_not_null() if self.present else col.is_null()


class Derivation(_Strict):
    """One derived record per matching source record.

    ``columns`` maps a field of the derived entity to a column of the mapped frame; ``constants``
    gives fixed values. The derived record always carries the source record's ``lead_id`` unless
    ``columns`` says otherwise.
    """

    when: Condition | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    constants: dict[str, str | int | float | bool] = Field(default_factory=dict)


class SequenceTime(_Strict):
    column: str
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> SequenceTime:
        if self.end <= self.start:
            raise ValueError("sequence_time: `end` must be after `start`")
        return self


class Mapping(_Strict):
    """A validated mapping file."""

    description: str = ""
    entity: EntityName | None = None
    format: SourceFormat | None = None
    delimiter: str | None = None
    encoding: str | None = None
    drop: list[str] = Field(default_factory=list)
    missing_values: list[str] = Field(default_factory=list)
    templates: dict[str, str] = Field(default_factory=dict)
    rename: dict[str, str] = Field(default_factory=dict)
    values: dict[str, dict[str, str | None]] = Field(default_factory=dict)
    scale: dict[str, float] = Field(default_factory=dict)
    constants: dict[str, str | int | float | bool] = Field(default_factory=dict)
    sequence_time: SequenceTime | None = None
    lookup_accounts: bool = False
    derive: dict[Literal["outcomes", "decisions"], list[Derivation]] = Field(default_factory=dict)

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError("delimiter must be a single character")
        return value

    @field_validator("templates")
    @classmethod
    def _plain_templates(cls, value: dict[str, str]) -> dict[str, str]:
        for name, template in value.items():
            for _, field_name, spec, conversion in string.Formatter().parse(template):
                if field_name is None:
                    continue
                if spec or conversion or not re.fullmatch(r"[^{}\[\].!:]+", field_name):
                    raise ValueError(f"templates.{name}: only plain {{column}} placeholders are allowed")
        return value


def load_mapping(path: Path) -> Mapping:
    """Read and validate a mapping file."""
    if not path.is_file():
        raise MappingError(f"mapping {path}: no such file")
    if path.stat().st_size > _MAX_MAPPING_BYTES:
        raise MappingError(f"mapping {path.name}: larger than {_MAX_MAPPING_BYTES // 1024} KiB")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise MappingError(f"mapping {path.name}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    return parse_mapping(document, name=path.name)


def parse_mapping(document: object, *, name: str = "mapping") -> Mapping:
    if not isinstance(document, dict):
        raise MappingError(f"mapping {name}: expected a YAML mapping at the top level")
    try:
        return Mapping.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise MappingError(f"mapping {name}: {where}: {first['msg']}") from exc


def apply_mapping(mapping: Mapping, records: pl.DataFrame) -> pl.DataFrame:
    """Steps 1–7: turn source records into records named and valued as canonical fields."""
    frame = records
    _require_columns(frame, [c for c in mapping.rename], "rename")
    if mapping.missing_values:
        tokens = list(mapping.missing_values)
        frame = frame.with_columns(
            pl.when(pl.col(c).str.strip_chars().is_in(tokens)).then(None).otherwise(pl.col(c)).alias(c)
            for c, dtype in frame.schema.items()
            if c != ROW_NUMBER and dtype == pl.String()
        )
    if mapping.templates:
        frame = frame.with_columns(_template(t, frame.columns).alias(n) for n, t in mapping.templates.items())
    renamed = [mapping.rename.get(c, c) for c in frame.columns]
    clashes = sorted({n for n in renamed if renamed.count(n) > 1})
    if clashes:
        raise MappingError(
            f"mapping rename: more than one column would be named {', '.join(clashes)}"
            " (drop or rename the existing column first)"
        )
    frame = frame.rename(mapping.rename)
    _require_columns(frame, list(mapping.values) + list(mapping.scale), "values/scale")
    for column, replacements in mapping.values.items():
        frame = frame.with_columns(
            pl.col(column).replace_strict(
                list(replacements), list(replacements.values()), default=pl.col(column), return_dtype=pl.String()
            )
        )
    for column, factor in mapping.scale.items():
        number = pl.col(column).str.strip_chars().cast(pl.Float64, strict=False)
        scaled = (number * factor).map_batches(_float_text, return_dtype=pl.String())
        frame = frame.with_columns(pl.when(number.is_not_null()).then(scaled).otherwise(pl.col(column)).alias(column))
    for column, constant in mapping.constants.items():
        text = _constant_text(constant)
        current = pl.col(column) if column in frame.columns else pl.lit(None, pl.String())
        frame = frame.with_columns(pl.coalesce(current, pl.lit(text)).alias(column))
    if mapping.sequence_time is not None:
        frame = frame.with_columns(_sequence(mapping.sequence_time, frame.height))
    return frame


def drop_columns(mapping: Mapping, frame: pl.DataFrame) -> pl.DataFrame:
    """Step 9: leave the mapping's ``drop`` columns out of the imported records."""
    _require_columns(frame, mapping.drop, "drop")
    return frame.drop(mapping.drop)


def derive_records(mapping: Mapping, frame: pl.DataFrame, primary: EntityName) -> dict[EntityName, pl.DataFrame]:
    """Step 8: the derived records per entity, as raw text frames with the source's row numbers."""
    derived: dict[EntityName, pl.DataFrame] = {}
    for entity, rules in mapping.derive.items():
        if entity == primary:
            raise MappingError(f"derive.{entity}: cannot derive the entity being imported")
        parts = []
        for index, rule in enumerate(rules):
            _require_columns(
                frame,
                list(rule.columns.values()) + ([rule.when.column] if rule.when else []),
                f"derive.{entity}[{index}]",
            )
            unknown = [f for f in [*rule.columns, *rule.constants] if f not in ENTITIES[entity].field_names]
            if unknown:
                raise MappingError(f"derive.{entity}[{index}]: unknown {entity} field(s) {', '.join(unknown)}")
            selected = frame.filter(rule.when.expr()) if rule.when else frame
            columns: dict[str, str] = {"lead_id": "lead_id", **rule.columns}
            parts.append(
                selected.select(
                    pl.col(ROW_NUMBER),
                    *[pl.col(source).cast(pl.String()).alias(target) for target, source in columns.items()],
                    *[pl.lit(_constant_text(v)).alias(k) for k, v in rule.constants.items()],
                )
            )
        if parts:
            derived[entity] = pl.concat(parts, how="diagonal").sort(ROW_NUMBER, maintain_order=True)
    return derived


def _require_columns(frame: pl.DataFrame, wanted: list[str], step: str) -> None:
    missing = sorted({c for c in wanted if c not in frame.columns})
    if missing:
        raise MappingError(f"mapping {step}: the file has no column(s) {', '.join(missing)}")


def _template(template: str, columns: list[str]) -> pl.Expr:
    parts: list[pl.Expr] = []
    for literal, field_name, _, _ in string.Formatter().parse(template):
        if literal:
            parts.append(pl.lit(literal))
        if field_name is None:
            continue
        if field_name == ROW_TOKEN:
            parts.append(pl.col(ROW_NUMBER).cast(pl.String()))
        elif field_name in columns:
            parts.append(pl.col(field_name).cast(pl.String()))
        else:
            raise MappingError(f"mapping templates: the file has no column {field_name!r}")
    return pl.concat_str(parts) if parts else pl.lit("")


def _sequence(spec: SequenceTime, n: int) -> pl.Expr:
    start = spec.start if spec.start.tzinfo else spec.start.replace(tzinfo=None)
    end = spec.end if spec.end.tzinfo else spec.end.replace(tzinfo=None)
    span = (end - start).total_seconds()
    step_us = int(span * 1e6 / max(n, 1))
    origin = parse_timestamp(pl.lit(start.isoformat()))
    offsets = pl.int_range(0, pl.len(), dtype=pl.Int64) * step_us
    stamped = origin + pl.duration(microseconds=offsets)
    return stamped.dt.to_string("%Y-%m-%dT%H:%M:%S%.6f+00:00").alias(spec.column)


def _constant_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _float_text(series: pl.Series) -> pl.Series:
    return series.cast(pl.String())
