"""The company as a CRM would export it: every column text, plus realistic bad rows.

An importer test feeds these frames (or CSV files written from them) to the ingest path and
checks its rejects against ``expected_rejects``. Messy rows are *added* between clean rows,
never in place of one, so everything clean still loads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from models.simulation.config import streams

if TYPE_CHECKING:
    from models.simulation.company import SimulatedCompany

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"
"""ISO 8601 in UTC; fractional seconds only when there are any (``…:22Z``, ``…:29.870Z``)."""

EXPORTED: tuple[str, ...] = ("reps", "accounts", "leads", "decisions", "outcomes")

# A messy row: (kind, why a correct importer rejects it or None if it must load, how to make it).
Mess = tuple[str, str | None, Callable[[dict[str, str | None], str], dict[str, str | None]]]


def _set(**changes: str | None) -> Callable[[dict[str, str | None], str], dict[str, str | None]]:
    """A row maker: copy the row, give it the fresh id, then apply ``changes``."""

    def make(row: dict[str, str | None], fresh: str) -> dict[str, str | None]:
        return {**row, **{k: (fresh if v == "{fresh}" else v) for k, v in changes.items()}}

    return make


def _keep() -> Callable[[dict[str, str | None], str], dict[str, str | None]]:
    return lambda row, fresh: dict(row)


def _messes() -> dict[str, tuple[str, list[Mess]]]:
    """Per entity: its key column and the kinds of bad rows added to it, used in turn."""
    return {
        "leads": (
            "lead_id",
            [
                ("bad-created-at", "created_at: '31/13/2025' is not an ISO 8601 timestamp",
                 _set(lead_id="{fresh}", created_at="31/13/2025")),
                ("missing-lead-id", "lead_id: is required but missing", _set(lead_id=None)),
                ("employees-not-a-number", "employees: 'n/a' is not a whole number",
                 _set(lead_id="{fresh}", employees="n/a")),
                ("negative-employees", "employees: -50 must be at least 0",
                 _set(lead_id="{fresh}", employees="-50")),
                ("exact-duplicate", None, _keep()),
            ],
        ),
        "outcomes": (
            "event_id",
            [
                ("unknown-lead", "lead_id: not a known lead", _set(event_id="{fresh}", lead_id="<unknown>")),
                ("event-not-in-enum", "event: 'won' is not one of contacted, meeting, qualified, converted, lost",
                 _set(event_id="{fresh}", event="won")),
                ("negative-value", "value: -1500 must be at least 0",
                 _set(event_id="{fresh}", event="converted", value="-1500")),
            ],
        ),
        "decisions": (
            "decision_id",
            [
                ("unknown-lead", "lead_id: not a known lead", _set(decision_id="{fresh}", lead_id="<unknown>")),
                ("propensity-out-of-range", "propensity: 1.5 must be at most 1",
                 _set(decision_id="{fresh}", propensity="1.5")),
            ],
        ),
        "reps": ("rep_id", [("active-not-boolean", "active: 'maybe' is not a boolean",
                             _set(rep_id="{fresh}", active="maybe"))]),
        "accounts": ("account_id", [("missing-name", "name: is required but missing",
                                     _set(account_id="{fresh}", name=None))]),
    }  # fmt: skip


def as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text, the way a CSV export spells it.

    Timestamps ISO 8601 UTC (``Z``), dates ``YYYY-MM-DD``, lists ``|``-joined, booleans
    ``true``/``false``, numbers in plain decimal; missing values stay null (an empty CSV cell).
    """
    columns: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            text = column.dt.convert_time_zone("UTC").dt.to_string(TIMESTAMP_FORMAT)
        elif isinstance(dtype, pl.Date):
            text = column.dt.to_string("%Y-%m-%d")
        elif isinstance(dtype, pl.List):
            text = column.cast(pl.List(pl.String)).list.join("|")
        elif dtype == pl.Boolean:
            text = pl.when(column).then(pl.lit("true")).when(column.not_()).then(pl.lit("false"))
        else:
            text = column.cast(pl.String)
        columns.append(text.cast(pl.String).alias(name))
    return frame.select(columns)


def export_files(
    company: SimulatedCompany, messy_share: float = 0.01, seed: int | None = None
) -> dict[str, pl.DataFrame]:
    """The company's reps, accounts, leads, decisions and outcomes as text frames, with bad rows.

    Args:
        company: the simulated company.
        messy_share: bad rows added per entity, as a share of its clean rows (at least one of
            each kind when positive; none at all when 0).
        seed: seed for where the bad rows go and which rows they copy; ``None`` uses the
            company's own export stream, so the export is deterministic either way.

    Returns:
        ``"reps"``, ``"accounts"``, ``"leads"``, ``"decisions"``, ``"outcomes"`` (all ``Utf8``)
        and ``"expected_rejects"`` (``entity``, ``id``, ``why``): every added row a correct
        importer must reject, with the key it carries (null when the key itself is missing).
        Each bad row has a fresh key, except the exact duplicate of a lead, which is *not* a
        reject: importing it again updates nothing (idempotent by id).
    """
    if not 0.0 <= messy_share <= 1.0:
        raise ValueError(f"messy_share: must be within [0, 1], got {messy_share}")
    rng = (
        streams(company.config.seed)["export"] if seed is None else np.random.default_rng(np.random.SeedSequence(seed))
    )
    clean = {name: as_text(getattr(company, name)) for name in EXPORTED}
    n_leads = company.leads.height
    plan = _messes()
    fresh_counter = {"leads": n_leads, "outcomes": company.outcomes.height, "decisions": company.decisions.height,
                     "reps": company.reps.height, "accounts": company.accounts.height}  # fmt: skip
    prefixes = {"leads": ("L", 7), "outcomes": ("E", 8), "decisions": ("D", 7), "reps": ("R", 3), "accounts": ("A", 4)}
    out: dict[str, pl.DataFrame] = {}
    rejects: list[tuple[str, str | None, str]] = []
    unknown = 0
    for name in EXPORTED:
        frame = clean[name]
        key, messes = plan[name]
        count = 0 if messy_share == 0 or frame.height == 0 else max(len(messes), round(messy_share * frame.height))
        rows: list[dict[str, str | None]] = []
        for i in range(count):
            _kind, why, make = messes[i % len(messes)]
            source = frame.row(int(rng.integers(0, frame.height)), named=True)
            fresh_counter[name] += 1
            prefix, width = prefixes[name]
            row = make(source, f"{prefix}{fresh_counter[name]:0{width}d}")
            if row.get("lead_id") == "<unknown>":
                unknown += 1
                row["lead_id"] = f"L{n_leads + 1_000_000 + unknown:07d}"
            rows.append(row)
            if why is not None:
                rejects.append((name, row[key], why))
        messy = pl.DataFrame(rows, schema=frame.schema, orient="row") if rows else frame.clear()
        # Scatter bad rows between clean ones, keeping the clean rows' order.
        position = np.concatenate(
            [np.arange(frame.height, dtype=np.float64), rng.uniform(-0.5, frame.height, messy.height)]
        )
        out[name] = pl.concat([frame, messy]).select(pl.all().gather(np.argsort(position, kind="stable")))
    out["expected_rejects"] = pl.DataFrame(
        rejects, schema={"entity": pl.String, "id": pl.String, "why": pl.String}, orient="row"
    )
    return out
