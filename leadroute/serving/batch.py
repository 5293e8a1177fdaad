"""Batches as frames: a ``POST /v1/route/batch`` request decided with one replay of the policy.

Routing lead by lead costs ~100 µs a lead once validation and encoding are counted
(``Policy.route_one`` alone is ~40 µs). A batch instead takes the frame side of every step:
one validation of all its leads (:func:`models.canonical.validate`, as ingest does),
:meth:`models.policy.Policy.replay` over them (the vectorised router the workbench compares
strategies with), and the log lines and the answer encoded by polars.

What a batch means:

* its leads are routed in time order (``created_at``, ties in the order sent) — the order
  replay routes history in — and answered in the order sent;
* random draws (exploration, random assignment) come from one generator per arm, seeded with a
  fresh 63-bit ``replay_seed`` that each of the arm's decisions carries in the log. The arm's
  records are written consecutively, in routing order, so the restart rebuild replays them as
  one group with the same seed and gets the same decisions and state
  (:meth:`leadroute.serving.router.RoutingService.rebuild`).

:func:`parse_batch` only accepts what the request schema (``BatchIn``) accepts; anything else
goes the normal way, which answers with the field-by-field errors.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pydantic_core

from leadroute.serving.records import Rejected, reserved_names
from leadroute.serving.schemas import MAX_BATCH
from models.canonical import ENTITIES, EXTRA, ROW_NUMBER, raw_text, validate

_LEAD_FIELDS = ENTITIES["leads"].field_names
_TEXT_TYPES: frozenset[type] = frozenset({str, type(None)})
_NUMBER_TYPES: frozenset[type] = frozenset({str, int, float, type(None)})
# The request schema's optional fields (LeadIn) and the JSON types each takes as it is: text, or
# text or a number; lead_id and created_at (required text) are checked on their own.
_TYPES: dict[str, frozenset[type]] = {
    **dict.fromkeys(
        ("email", "company", "account_id", "industry", "country", "region", "source", "title", "seniority",
         "product_interest"),
        _TEXT_TYPES,
    ),
    **dict.fromkeys(("employees", "annual_revenue", "score"), _NUMBER_TYPES),
}  # fmt: skip
_MAX_LEAD_ID = 200


@dataclass(frozen=True)
class Batch:
    """The leads of a request and the same values column by column (each column as long as the
    batch, ``None`` where a lead lacks the field)."""

    leads: list[dict[str, Any]]
    columns: dict[str, list[Any]]

    @classmethod
    def of(cls, leads: list[dict[str, Any]]) -> Batch:
        names = dict.fromkeys(itertools.chain.from_iterable(leads))  # first-seen order, at C speed
        return cls(leads, {name: [lead.get(name) for lead in leads] for name in names})


def parse_lead(body: bytes) -> dict[str, Any] | None:
    """The lead of a ``POST /v1/route`` body, or None when it is anything ``LeadIn`` might
    refuse or read differently."""
    try:
        lead = pydantic_core.from_json(body, allow_inf_nan=False, cache_strings="keys")
    except ValueError:
        return None
    if type(lead) is not dict or not _plainly_valid_one(lead):
        return None
    return lead


def _plainly_valid_one(lead: dict[str, Any]) -> bool:
    """:func:`_plainly_valid` for one lead, without building columns."""
    lead_id = lead.get("lead_id")
    if type(lead_id) is not str or not 1 <= len(lead_id) <= _MAX_LEAD_ID or type(lead.get("created_at")) is not str:
        return False
    if _RESERVED & lead.keys():
        return False
    return all(type(lead[name]) in _TYPES[name] for name in lead.keys() & _TYPES.keys())


def parse_batch(body: bytes, max_leads: int = MAX_BATCH) -> Batch | None:
    """The leads of a batch body, or None when it is anything ``BatchIn`` might refuse or read
    differently (not JSON, no ``leads`` list, too many, a field of the wrong type, a reserved name)."""
    try:  # keys only: values (ids, timestamps) are mostly unique, and caching them costs time
        parsed = pydantic_core.from_json(body, allow_inf_nan=False, cache_strings="keys")
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    leads = parsed.get("leads")
    if not isinstance(leads, list) or not 1 <= len(leads) <= max_leads:
        return None
    if not all(type(lead) is dict for lead in leads):
        return None
    batch = Batch.of(leads)
    return batch if _plainly_valid(batch.columns) else None


def _plainly_valid(columns: Mapping[str, list[Any]]) -> bool:
    """Whether every lead's fields have the types the request schema takes as they are (checked
    a column at a time: the set of types in it)."""
    if _RESERVED & columns.keys():
        return False
    lead_ids, created = columns.get("lead_id"), columns.get("created_at")
    if lead_ids is None or created is None or set(map(type, lead_ids)) != {str} or set(map(type, created)) != {str}:
        return False  # a numeric id is fine too, but rare: the normal path converts it
    if min(map(len, lead_ids)) < 1 or max(map(len, lead_ids)) > _MAX_LEAD_ID:
        return False
    return all(set(map(type, columns[name])) <= _TYPES[name] for name in columns.keys() & _TYPES.keys())


_RESERVED = frozenset({ROW_NUMBER, EXTRA})


def typed_leads(leads: Sequence[Mapping[str, Any]] | Batch) -> tuple[pl.DataFrame, list[Rejected]]:
    """Validate ``leads`` as one frame, exactly as ingest would: the typed leads in input order
    (extra attributes as text columns, the way replay reads them), and the rejects."""
    batch = leads if isinstance(leads, Batch) else Batch.of([dict(lead) for lead in leads])
    reserved = reserved_names(batch.leads)
    if reserved:
        return pl.DataFrame(), reserved
    columns = list(batch.columns)
    raw = pl.DataFrame(
        {c: _text_column(values) for c, values in batch.columns.items()} | {ROW_NUMBER: range(len(batch.leads))},
        schema={c: pl.String for c in columns} | {ROW_NUMBER: pl.Int64},
    )
    checked = validate("leads", raw)
    rejects = [Rejected(int(r[ROW_NUMBER]), str(r["reason"])) for r in checked.rejects.iter_rows(named=True)]
    extras = [c for c in columns if c not in _LEAD_FIELDS]
    rows = checked.rows.drop(EXTRA)
    if extras:
        # validate keeps extras as the raw text they came as: the same columns, for the rows kept.
        # (by name, not pl.col: an extra may be called "*")
        rows = rows.with_columns(raw.get_column(c).gather(rows[ROW_NUMBER]) for c in extras)
    return rows.drop(ROW_NUMBER), sorted(rejects, key=lambda r: r.index)


def _text_column(values: list[Any]) -> list[Any]:
    types = set(map(type, values))
    if types <= _TEXT_TYPES:
        return values
    if types == {int} or types == {float}:  # a number column: its text is str() of each (raw_text's)
        return list(map(str, values))
    return [raw_text(v) for v in values]


def decision_ids(n: int) -> pl.Series:
    """``n`` random (version 4) UUIDs as text, built as one byte array (no Python call per id)."""
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2], nibbles[:, 1::2] = raw >> 4, raw & 0x0F
    digits = _HEX[nibbles]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for start, (a, b) in zip((0, 9, 14, 19, 24), ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32)), strict=True):
        text[:, start : start + b - a] = digits[:, a:b]
    return pl.Series("decision_id", text.view("S36").ravel()).cast(pl.String)


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def iso_text(column: str) -> pl.Expr:
    """A UTC timestamp as Python's ``datetime.isoformat()`` writes it (microseconds only when set)."""
    t = pl.col(column)
    return (
        pl.when(t.dt.microsecond() == 0)
        .then(t.dt.to_string("%Y-%m-%dT%H:%M:%S+00:00"))
        .otherwise(t.dt.to_string("%Y-%m-%dT%H:%M:%S%.6f+00:00"))
        .alias(column)
    )


def json_object(columns: Sequence[str], raw: Mapping[str, str]) -> pl.Expr:
    """One JSON object per row: ``columns`` encoded by polars, then each ``raw`` key with the
    row's text of that column spliced in as JSON that is already encoded."""
    encoded = pl.struct(list(columns)).struct.json_encode()
    parts: list[pl.Expr | str] = [encoded.str.head(-1)]
    for key, column in raw.items():
        parts += [pl.lit(f',"{key}":'), pl.col(column)]
    parts.append(pl.lit("}"))
    return pl.concat_str(parts)


def lead_object(schema: pl.Schema) -> pl.Expr:
    """Each typed lead (a frame of ``schema``) as the JSON object the decision log keeps
    (timestamps as ISO text)."""
    stamps = {c for c, dtype in schema.items() if isinstance(dtype, pl.Datetime)}
    return pl.struct([iso_text(c) if c in stamps else pl.col(c) for c in schema]).struct.json_encode()


#: What the answer says of each decision (``reasons`` follows, as an object).
ANSWER_FIELDS = (
    "decision_id", "lead_id", "team", "rep_id", "action", "score", "policy", "policy_version", "experiment", "arm",
    "propensity",
)  # fmt: skip


def batch_answer(records: pl.DataFrame) -> bytes:
    """The ``BatchOut`` body for decided records (in the order given)."""
    objects = records.select(json_object(ANSWER_FIELDS, {"reasons": "reasons"})).to_series()
    joined: str = objects.str.join(",").item()
    return b'{"decisions":[' + joined.encode() + b"]}"


def decision_json(record: Mapping[str, Any]) -> bytes:
    """The ``DecisionOut`` body of one decided record."""
    head = pydantic_core.to_json({k: record[k] for k in ANSWER_FIELDS})
    return b'%s,"reasons":%s}' % (head[:-1], record["reasons"].encode())
