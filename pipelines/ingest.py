"""The ingest stage: read a file → map → validate → upsert, all or nothing.

Records are applied as upserts in file order: the first record of a new key is *loaded*, every
further record of a key that exists (in the warehouse or earlier in the file) *updates* it, and
an update whose values equal what is stored is counted as *unchanged* (and not rewritten). So
``read = loaded + updated + rejected`` always holds and importing the same file twice changes
nothing. Rejected records are stored with their position, raw values and reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from models.canonical import (
    ENTITIES,
    EXTRA,
    ROW_NUMBER,
    EntityName,
    MissingColumnsError,
    Validated,
    check_columns,
    validate,
)
from pipelines.mapping import Mapping, MappingError, apply_mapping, derive_records, drop_columns, load_mapping
from pipelines.sources import SourceError, read_source
from pipelines.warehouse import Warehouse, query_frame, scalar

# One import writes at a time in this process (DuckDB's file lock already serialises processes):
# keys of the history tables stay unique by construction, not by an index (see migrations).
_WRITE_LOCK = threading.RLock()


class IngestError(ValueError):
    """The whole file was refused; nothing from it was loaded. The message is one line."""


@dataclass(frozen=True)
class EntityCounts:
    entity: EntityName
    read: int
    loaded: int
    updated: int
    rejected: int
    unchanged: int

    def __post_init__(self) -> None:
        if self.read != self.loaded + self.updated + self.rejected:  # a bug, never user error
            raise AssertionError(f"{self.entity}: counts do not add up: {self}")


@dataclass(frozen=True)
class IngestSummary:
    """What one import did; ``derived`` holds the counts of entities a mapping derived."""

    entity: EntityName
    source_file: str
    import_id: int
    counts: EntityCounts
    derived: dict[str, EntityCounts] = field(default_factory=dict)
    reject_reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        counts = asdict(self.counts)
        counts.pop("entity")
        return {
            **counts,
            "entity": self.entity,
            "file": self.source_file,
            "import_id": self.import_id,
            "derived": {
                name: {k: v for k, v in asdict(c).items() if k != "entity"} for name, c in self.derived.items()
            },
            "reject_reasons": self.reject_reasons,
            "seconds": round(self.seconds, 3),
        }


def ingest_file(
    warehouse: Warehouse,
    entity: EntityName,
    path: Path,
    mapping_path: Path | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> IngestSummary:
    """Import one file into the warehouse (see the module docstring for the semantics)."""
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    say(f"reading {path.name} …")
    try:
        mapping = load_mapping(mapping_path) if mapping_path is not None else Mapping()
        if mapping.entity is not None and mapping.entity != entity:
            raise MappingError(f"mapping {mapping_path}: written for {mapping.entity}, not {entity}")
        source = read_source(path, mapping.format, delimiter=mapping.delimiter, encoding=mapping.encoding)
        frame = apply_mapping(mapping, source.records)
        derived_raw = derive_records(mapping, frame, entity)
        frame = drop_columns(mapping, frame)
        check_columns(entity, frame.columns)
    except (SourceError, MappingError, MissingColumnsError) as exc:
        raise IngestError(f"{path.name}: {exc}" if not str(exc).startswith(path.name) else str(exc)) from None

    say(f"validating {source.read:,} {entity} records …")
    with _WRITE_LOCK, warehouse.connect() as con:
        known = _known_keys(con, entity, derived_raw)
        primary = validate(entity, frame, known)
        if entity == "leads" and mapping.lookup_accounts:
            primary = Validated(_fill_from_accounts(con, primary.rows), primary.rejects)
        if entity == "leads":
            known["leads"] = (
                pl.concat([known["leads"], primary.rows.select("lead_id")])
                if "leads" in known
                else primary.rows.select("lead_id")
            )
        derived = {name: validate(name, raw, known) for name, raw in derived_raw.items()}

        say("writing …")
        con.begin()
        try:
            import_id = int(scalar(con, "SELECT nextval('import_ids')"))
            primary_counts = _upsert(con, entity, primary, import_id, extra_rejects=source.rejects)
            derived_counts = {name: _upsert(con, name, result, import_id) for name, result in derived.items()}
            if entity == "reps":
                _register_teams(con, primary.rows)
            for counts in [primary_counts, *derived_counts.values()]:
                con.execute(
                    "INSERT INTO imports VALUES (?, ?, ?, ?, now() - to_microseconds(?), now(), ?, ?, ?, ?, ?)",
                    [
                        import_id,
                        counts.entity,
                        str(path),
                        None if mapping_path is None else str(mapping_path),
                        int((time.perf_counter() - started) * 1e6),
                        counts.read,
                        counts.loaded,
                        counts.updated,
                        counts.rejected,
                        counts.unchanged,
                    ],
                )
            reasons = _reason_counts(con, import_id)
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return IngestSummary(
        entity=entity,
        source_file=str(path),
        import_id=import_id,
        counts=primary_counts,
        derived={str(k): v for k, v in derived_counts.items()},
        reject_reasons=reasons,
        seconds=time.perf_counter() - started,
    )


def ingest_frame(warehouse: Warehouse, entity: EntityName, frame: pl.DataFrame, *, label: str) -> EntityCounts:
    """Import an in-memory raw text frame (no ``row_number`` needed) with the same semantics."""
    raw = frame if ROW_NUMBER in frame.columns else frame.with_row_index(ROW_NUMBER, offset=1)
    raw = raw.with_columns(pl.col(ROW_NUMBER).cast(pl.Int64))
    with _WRITE_LOCK, warehouse.connect() as con:
        result = validate(entity, raw, _known_keys(con, entity, {}))
        con.begin()
        try:
            import_id = int(scalar(con, "SELECT nextval('import_ids')"))
            counts = _upsert(con, entity, result, import_id)
            if entity == "reps":
                _register_teams(con, result.rows)
            con.execute(
                "INSERT INTO imports VALUES (?, ?, ?, NULL, now(), now(), ?, ?, ?, ?, ?)",
                [
                    import_id,
                    entity,
                    label,
                    counts.read,
                    counts.loaded,
                    counts.updated,
                    counts.rejected,
                    counts.unchanged,
                ],
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return counts


def _known_keys(
    con: duckdb.DuckDBPyConnection, entity: EntityName, derived: dict[EntityName, pl.DataFrame]
) -> dict[str, pl.DataFrame]:
    needed: set[str] = set(ENTITIES[entity].references.values())
    for name in derived:
        needed |= set(ENTITIES[name].references.values())
    known: dict[str, pl.DataFrame] = {}
    if "leads" in needed:
        known["leads"] = query_frame(con, "SELECT lead_id FROM leads")
    if "reps" in needed:
        known["reps"] = query_frame(con, "SELECT rep_id, team FROM reps")
    return known


def _upsert(
    con: duckdb.DuckDBPyConnection,
    entity: EntityName,
    result: Validated,
    import_id: int,
    *,
    extra_rejects: pl.DataFrame | None = None,
) -> EntityCounts:
    spec = ENTITIES[entity]
    columns = [*spec.field_names, EXTRA]
    key = spec.key
    # Later records of a key win, as if the file were applied row by row.
    staged = result.rows.unique(subset=[key], keep="last", maintain_order=True).select(columns)
    con.register("staged_rows", staged.to_arrow())
    try:
        quoted = [f'"{c}"' for c in columns]
        differs = " OR ".join(
            f's."{c}"::VARCHAR IS DISTINCT FROM t."{c}"::VARCHAR' if c == EXTRA else f's."{c}" IS DISTINCT FROM t."{c}"'
            for c in columns
            if c != key
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE staged_changes AS
                SELECT s.*, t."{key}" IS NULL AS is_new FROM staged_rows s
                LEFT JOIN "{entity}" t ON s."{key}" = t."{key}"
                WHERE t."{key}" IS NULL OR {differs}"""
        )
        loaded, changed = con.execute("SELECT count(*) FILTER (is_new), count(*) FROM staged_changes").fetchall()[0]
        # Replace changed records (delete, then insert): plain inserts, no per-row conflict handling.
        if loaded < changed:
            con.execute(
                f'DELETE FROM "{entity}" WHERE "{key}" IN (SELECT "{key}" FROM staged_changes WHERE NOT is_new)'
            )
        con.execute(
            f"""INSERT INTO "{entity}" ({", ".join(quoted)}, import_id, updated_at)
                SELECT {", ".join(quoted)}, ?, now() FROM staged_changes""",
            [import_id],
        )
        con.execute("DROP TABLE staged_changes")
    finally:
        con.unregister("staged_rows")
    rejects = result.rejects if extra_rejects is None else pl.concat([extra_rejects, result.rejects]).sort(ROW_NUMBER)
    if rejects.height:
        stored = rejects.select(
            pl.lit(import_id, pl.Int64).alias("import_id"),
            pl.lit(entity).alias("entity"),
            pl.col(ROW_NUMBER),
            pl.col("reason"),
            pl.col("raw"),
        )
        con.register("staged_rejects", stored.to_arrow())
        try:
            con.execute("INSERT INTO rejects SELECT * FROM staged_rejects")
        finally:
            con.unregister("staged_rejects")
    valid = result.rows.height
    return EntityCounts(
        entity=entity,
        read=valid + rejects.height,
        loaded=loaded,
        updated=valid - loaded,
        rejected=rejects.height,
        unchanged=staged.height - changed,
    )


def _register_teams(con: duckdb.DuckDBPyConnection, reps: pl.DataFrame) -> None:
    teams = reps.select(pl.col("team").unique().sort())
    con.register("staged_teams", teams.to_arrow())
    try:
        con.execute("INSERT INTO teams (team) SELECT team FROM staged_teams WHERE team NOT IN (SELECT team FROM teams)")
    finally:
        con.unregister("staged_teams")


_ACCOUNT_FIRMOGRAPHICS = ("industry", "employees", "annual_revenue", "country")


def _fill_from_accounts(con: duckdb.DuckDBPyConnection, leads: pl.DataFrame) -> pl.DataFrame:
    """Fill a lead's missing firmographics from its account (the mapping's ``lookup_accounts``)."""
    accounts = query_frame(con, "SELECT account_id, industry, employees, annual_revenue, country FROM accounts").rename(
        {c: f"_account_{c}" for c in _ACCOUNT_FIRMOGRAPHICS}
    )
    joined = leads.join(accounts, on="account_id", how="left", maintain_order="left")
    return joined.with_columns(
        pl.coalesce(pl.col(c), pl.col(f"_account_{c}").cast(leads.schema[c])).alias(c) for c in _ACCOUNT_FIRMOGRAPHICS
    ).drop([f"_account_{c}" for c in _ACCOUNT_FIRMOGRAPHICS])


def _reason_counts(con: duckdb.DuckDBPyConnection, import_id: int) -> dict[str, int]:
    """How many rejects per kind of problem (the field and problem, without the value)."""
    rows = con.execute(
        """SELECT entity || ': ' || regexp_replace(split_part(reason, '; ', 1), '''[^'']*''', '…', 'g') AS kind,
                  count(*) AS n
           FROM rejects WHERE import_id = ? GROUP BY kind ORDER BY n DESC, kind LIMIT 20""",
        [import_id],
    ).fetchall()
    return {str(kind): int(n) for kind, n in rows}
