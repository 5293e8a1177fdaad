"""Reading import files (CSV, Parquet, JSON lines) into raw text frames.

A reader never guesses types: every value arrives as text (lists as lists of text) so that
validation has one semantics whatever the format, and extra attributes are kept exactly as
given. Records a reader cannot even split into fields (a CSV line with too many columns, a
JSON line that does not parse) become *structural rejects* with their line and raw text; a
file that cannot be read at all raises :class:`SourceError` with one line of cause.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import polars as pl

from models.canonical import ROW_NUMBER

SourceFormat = Literal["csv", "parquet", "jsonl"]

_SUFFIXES: dict[str, SourceFormat] = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}

REJECT_COLUMNS = {ROW_NUMBER: pl.Int64(), "reason": pl.String(), "raw": pl.String()}


class SourceError(ValueError):
    """The file as a whole cannot be read; nothing from it is loaded."""


@dataclass(frozen=True)
class RawSource:
    """What a reader produced.

    Attributes:
        records: one row per record, text columns named as in the file, plus ``row_number``.
        rejects: records that could not be split into fields (``row_number``, ``reason``, ``raw``).
        columns: the file's column names, in order.
        format: the format that was read.
    """

    records: pl.DataFrame
    rejects: pl.DataFrame
    columns: list[str]
    format: SourceFormat

    @property
    def read(self) -> int:
        return self.records.height + self.rejects.height


def detect_format(path: Path, declared: SourceFormat | None = None) -> SourceFormat:
    if declared is not None:
        return declared
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(
            f"{path.name}: cannot tell the format from the extension '{path.suffix}'"
            " (use .csv, .parquet or .jsonl, or set `format` in a mapping file)"
        )
    return fmt


def read_source(
    path: Path,
    fmt: SourceFormat | None = None,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
) -> RawSource:
    """Read a whole import file as text records plus structural rejects."""
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if not path.is_file():
        raise SourceError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise SourceError(f"{path.name}: the file is empty")
    resolved = detect_format(path, fmt)
    if resolved == "csv":
        return _read_csv(path, delimiter=delimiter, encoding=encoding)
    if resolved == "parquet":
        return _read_parquet(path)
    return _read_jsonl(path, encoding=encoding)


def _read_csv(path: Path, *, delimiter: str | None, encoding: str | None) -> RawSource:
    options = ["header = true", "all_varchar = true", "store_rejects = true", "strict_mode = true"]
    params: list[object] = [str(path)]
    if delimiter is not None:
        options.append("delim = ?")
        params.append(delimiter)
    if encoding is not None:
        options.append("encoding = ?")
        params.append(encoding)
    # A private in-memory database: parsing never touches (or waits for) the warehouse.
    with duckdb.connect(":memory:") as con:
        try:
            records = con.sql(f"SELECT * FROM read_csv(?, {', '.join(options)})", params=params).pl()
            errors = con.sql("SELECT line, error_type, error_message, csv_line FROM reject_errors ORDER BY line").pl()
        except duckdb.Error as exc:
            raise SourceError(f"{path.name}: cannot read as CSV: {_first_line(exc)}") from exc
    columns = [c.strip().lstrip("\ufeff") for c in records.columns]
    _refuse_reserved(path, columns)
    records = records.rename(dict(zip(records.columns, columns, strict=True)))
    # One rejected record may produce several errors; keep one line per record.
    errors = errors.group_by("line", maintain_order=True).agg(
        pl.col("error_message").str.join("; "), pl.col("csv_line").first()
    )
    rejected_lines = errors["line"].cast(pl.Int64).to_numpy()
    records = records.with_columns(
        pl.Series(ROW_NUMBER, _csv_line_numbers(path, records.height, rejected_lines), pl.Int64)
    )
    rejects = errors.select(
        pl.col("line").cast(pl.Int64).alias(ROW_NUMBER),
        pl.format("unreadable CSV record: {}", pl.col("error_message")).alias("reason"),
        pl.col("csv_line").alias("raw"),
    )
    return RawSource(records=records, rejects=rejects, columns=columns, format="csv")


def _csv_line_numbers(path: Path, n_records: int, rejected_lines: np.ndarray) -> np.ndarray:
    """The file line of each parsed record (header is line 1).

    Exact when no record spans lines (the common case, checked by counting newlines); with
    multi-line quoted fields it is the record's ordinal position instead.
    """
    total = n_records + len(rejected_lines)
    candidates = np.arange(2, total + 2, dtype=np.int64)
    keep = ~np.isin(candidates, rejected_lines)
    lines = candidates[keep]
    if lines.size != n_records:  # rejected lines beyond the record count: multi-line records
        lines = np.arange(2, n_records + 2, dtype=np.int64)
    return lines


def _read_parquet(path: Path) -> RawSource:
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a corrupt file
        raise SourceError(f"{path.name}: cannot read as Parquet: {_first_line(exc)}") from exc
    _refuse_reserved(path, frame.columns)
    text = frame.select([_to_text(name, dtype) for name, dtype in frame.schema.items()])
    text = text.with_row_index(ROW_NUMBER, offset=1).with_columns(pl.col(ROW_NUMBER).cast(pl.Int64))
    return RawSource(records=text, rejects=pl.DataFrame(schema=REJECT_COLUMNS), columns=frame.columns, format="parquet")


def _to_text(name: str, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.List | pl.Array):
        return pl.col(name).cast(pl.List(pl.String())).alias(name)
    if isinstance(dtype, pl.Struct):
        return pl.col(name).struct.json_encode().alias(name)
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return pl.col(name).dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%dT%H:%M:%S%.f+00:00").alias(name)
    if isinstance(dtype, pl.Boolean):
        return pl.col(name).cast(pl.String()).str.to_lowercase().alias(name)
    return pl.col(name).cast(pl.String()).alias(name)


def _read_jsonl(path: Path, *, encoding: str | None) -> RawSource:
    try:
        text = path.read_text(encoding=encoding or "utf-8")
    except (UnicodeDecodeError, LookupError) as exc:
        raise SourceError(f"{path.name}: cannot decode as {encoding or 'utf-8'}: {exc}") from exc
    records: list[dict[str, object]] = []
    numbers: list[int] = []
    rejects: list[tuple[int, str, str]] = []
    columns: dict[str, None] = {}
    list_columns: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            rejects.append((number, f"unreadable JSON line: {exc.msg} at column {exc.colno}", line))
            continue
        except RecursionError:
            rejects.append((number, "unreadable JSON line: nested too deeply", line[:1000]))
            continue
        if not _encodable(value):
            rejects.append((number, "unreadable JSON line: a string is not valid Unicode (a lone surrogate)", ""))
            continue
        if not isinstance(value, dict):
            rejects.append((number, f"unreadable JSON line: expected an object, got {type(value).__name__}", line))
            continue
        record: dict[str, object] = {}
        for key, item in value.items():
            name = str(key)
            columns.setdefault(name, None)
            if isinstance(item, list) and all(not isinstance(x, dict | list) for x in item):
                list_columns.add(name)
                record[name] = [_json_text(x) for x in item]
            else:
                record[name] = _json_text(item)
        records.append(record)
        numbers.append(number)
    if not records and not rejects:
        raise SourceError(f"{path.name}: no JSON records in the file")
    if records and not columns:
        raise SourceError(f"{path.name}: no fields in any JSON record")
    names = list(columns)
    _refuse_reserved(path, names)
    data: dict[str, list[object]] = {name: [] for name in names}
    for record in records:
        for name in names:
            item = record.get(name)
            if name in list_columns and isinstance(item, str):
                item = [item]  # a scalar where others have lists: a one-element list
            data[name].append(item)
    schema = {name: pl.List(pl.String()) if name in list_columns else pl.String() for name in names}
    frame = pl.DataFrame(data, schema=schema).with_columns(pl.Series(ROW_NUMBER, numbers, pl.Int64))
    reject_frame = pl.DataFrame(
        {ROW_NUMBER: [r[0] for r in rejects], "reason": [r[1] for r in rejects], "raw": [r[2] for r in rejects]},
        schema=REJECT_COLUMNS,
    )
    return RawSource(records=frame, rejects=reject_frame, columns=names, format="jsonl")


def _encodable(value: object) -> bool:
    """False when a key or string holds a lone surrogate (valid JSON escapes, not valid UTF-8)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


def _json_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _refuse_reserved(path: Path, columns: list[str]) -> None:
    if ROW_NUMBER in columns:
        raise SourceError(f"{path.name}: the column name {ROW_NUMBER!r} is reserved; rename it (e.g. with a mapping)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
