"""Duplicate leads: the same person or company came in again recently.

A lead is a duplicate of the most recent earlier lead (in the history or earlier in the same
batch, within ``window_days``) that shares one of its keys:

- ``email`` — the same mailbox (case, ``+tags`` and Gmail dots ignored);
- ``phone`` — the same number (its last nine digits: formatting and country prefixes ignored);
- ``name_company`` — the same person's name at the same normalised company.

The result names that earlier lead and, when it was routed, its owner (``previous_rep_id``,
``previous_team``; passed down a chain of duplicates), so a policy can route "sticky" instead
of starting a new round-robin turn. One function serves a batch and one lead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import polars as pl

from models.quality.normalise import company_key, email_key, person_key, phone_key

DuplicateKey = Literal["email", "phone", "name_company"]
KEYS: tuple[DuplicateKey, ...] = ("email", "phone", "name_company")
"""In order of strength: an e-mail match wins a tie with a phone match."""

MAX_ROWS = 20_000_000

RESULT_SCHEMA: dict[str, pl.DataType] = {
    "duplicate_of": pl.String(),
    "duplicate_key": pl.String(),
    "previous_rep_id": pl.String(),
    "previous_team": pl.String(),
    "days_since_previous": pl.Float64(),
}
"""Columns :func:`find_duplicates` appends to the leads."""

_CHAIN_STEPS = 8  # how far an owner is passed down a chain of duplicates within one batch


@dataclass(frozen=True)
class DuplicateConfig:
    window_days: float = 30.0
    """How recent an earlier lead must be to count: older contacts start a fresh assignment."""


@dataclass(frozen=True)
class DuplicateMatch:
    """One lead's duplicate finding (``duplicate_of`` is None when it is new)."""

    duplicate_of: str | None
    key: DuplicateKey | None
    previous_rep_id: str | None
    previous_team: str | None
    days_since_previous: float | None


def duplicate_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """``lead_id``, ``created_at`` and the three normalised keys of each lead. Person names
    come from ``name`` or ``first_name`` + ``last_name``, phones from ``phone`` (extras)."""
    cols = set(frame.columns)

    def text(name: str) -> pl.Expr:
        return pl.col(name).cast(pl.String) if name in cols else pl.lit(None, pl.String())

    person = pl.coalesce(text("name"), pl.concat_str([text("first_name"), text("last_name")], separator=" "))
    company = company_key(text("company"))
    who = person_key(person)
    created = pl.col("created_at")
    dtype = frame.schema["created_at"]
    if not isinstance(dtype, pl.Datetime):
        raise TypeError(f"created_at: expected a datetime column, got {dtype}")
    created = created.dt.convert_time_zone("UTC") if dtype.time_zone else created.dt.replace_time_zone("UTC")
    return frame.select(
        pl.col("lead_id").cast(pl.String),
        created.cast(pl.Datetime("us", "UTC")).alias("created_at"),
        email_key(text("email")).alias("email"),
        phone_key(text("phone")).alias("phone"),
        pl.when(who.is_not_null() & company.is_not_null()).then(pl.format("{}|{}", who, company)).alias("name_company"),
    )


def find_duplicates(
    leads: pl.DataFrame, history: pl.DataFrame | None = None, config: DuplicateConfig | None = None
) -> pl.DataFrame:
    """``leads`` with :data:`RESULT_SCHEMA` columns appended (same order).

    Args:
        leads: ``lead_id``, ``created_at`` (UTC datetime) and any of ``email``, ``phone``,
            ``company``, ``name`` / ``first_name`` + ``last_name``.
        history: earlier leads with the same columns plus, when known, ``rep_id`` and ``team``
            of the decision that routed them. A lead present in both counts as in ``leads``.
        config: the recency window.
    """
    cfg = config or DuplicateConfig()
    history = history if history is not None else leads.clear()
    if leads.height + history.height > MAX_ROWS:
        raise ValueError(f"duplicates: more than {MAX_ROWS:,} leads and history rows")
    batch = duplicate_keys(leads).with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"))
    owners = _owners(history)
    past = (
        duplicate_keys(history)
        .join(batch.select("lead_id"), on="lead_id", how="anti")
        .join(owners, on="lead_id", how="left")
        .with_columns(pl.lit(None, pl.Int64).alias("_row"))
    )
    everything = pl.concat([past, batch.with_columns(*_none("rep_id", "team"))], how="diagonal_relaxed")
    # One total order: time, then id, so leads created in the same instant still have a "before".
    everything = everything.sort("created_at", "lead_id").with_columns(pl.int_range(pl.len()).alias("_seq"))
    window = pl.duration(microseconds=int(cfg.window_days * 86_400 * 1e6))
    found = []
    for rank, key in enumerate(KEYS):
        keyed = everything.filter(pl.col(key).is_not_null()).sort("_seq")
        previous = keyed.with_columns(
            pl.col(c).shift(1).over(key).alias(f"_prev_{c}") for c in ("lead_id", "created_at", "rep_id", "team")
        ).filter(
            pl.col("_row").is_not_null()
            & pl.col("_prev_lead_id").is_not_null()
            & (pl.col("created_at") - pl.col("_prev_created_at") <= window)
        )
        found.append(previous.select("_row", "_prev_lead_id", "_prev_created_at", "_prev_rep_id", "_prev_team",
                                     pl.lit(key).alias("_key"), pl.lit(rank).alias("_rank")))  # fmt: skip
    # The most recent earlier lead over all keys; a stronger key breaks a tie.
    best = (
        pl.concat(found)
        .sort(["_row", "_prev_created_at", "_rank"], descending=[False, True, False])
        .unique(subset=["_row"], keep="first", maintain_order=True)
    )
    result = batch.join(best, on="_row", how="left", maintain_order="left").select(
        pl.col("lead_id"),
        pl.col("_prev_lead_id").alias("duplicate_of"),
        pl.col("_key").alias("duplicate_key"),
        pl.col("_prev_rep_id").alias("previous_rep_id"),
        pl.col("_prev_team").alias("previous_team"),
        ((pl.col("created_at") - pl.col("_prev_created_at")).dt.total_microseconds() / 86_400e6)
        .round(4)
        .alias("days_since_previous"),
    )
    result = _pass_owners_down(result)
    return pl.concat([leads, result.drop("lead_id").cast(RESULT_SCHEMA)], how="horizontal")  # type: ignore[arg-type]


def find_duplicate(
    lead: Mapping[str, object], history: pl.DataFrame | None = None, config: DuplicateConfig | None = None
) -> DuplicateMatch:
    """:func:`find_duplicates` for one lead (``created_at`` a timezone-aware datetime)."""
    created = lead.get("created_at")
    if not isinstance(created, datetime):
        raise TypeError("created_at: a datetime is needed to compare with earlier leads")
    columns = ("lead_id", "email", "phone", "company", "name", "first_name", "last_name")
    frame = pl.DataFrame(
        {c: [None if lead.get(c) is None else str(lead.get(c))] for c in columns},
        schema=dict.fromkeys(columns, pl.String()),
    ).with_columns(pl.lit(created).dt.convert_time_zone("UTC").alias("created_at"))
    row = find_duplicates(frame, history, config).row(0, named=True)
    return DuplicateMatch(
        duplicate_of=row["duplicate_of"],
        key=row["duplicate_key"],
        previous_rep_id=row["previous_rep_id"],
        previous_team=row["previous_team"],
        days_since_previous=row["days_since_previous"],
    )


def _owners(history: pl.DataFrame) -> pl.DataFrame:
    cols = [
        pl.col(c).cast(pl.String) if c in history.columns else pl.lit(None, pl.String()).alias(c)
        for c in ("rep_id", "team")
    ]
    return history.select(pl.col("lead_id").cast(pl.String), *cols).unique(subset=["lead_id"], keep="last")


def _none(*names: str) -> list[pl.Expr]:
    return [pl.lit(None, pl.String()).alias(n) for n in names]


def _pass_owners_down(result: pl.DataFrame) -> pl.DataFrame:
    """A duplicate of an unrouted duplicate (same batch) inherits the owner further up the chain."""
    for _ in range(_CHAIN_STEPS):
        parent = result.select(
            pl.col("lead_id").alias("duplicate_of"),
            pl.col("previous_rep_id").alias("_up_rep"),
            pl.col("previous_team").alias("_up_team"),
        )
        step = result.join(parent, on="duplicate_of", how="left", maintain_order="left")
        unresolved = pl.col("previous_rep_id").is_null() & pl.col("previous_team").is_null()
        step = step.with_columns(
            pl.when(unresolved).then(pl.col("_up_rep")).otherwise(pl.col("previous_rep_id")).alias("previous_rep_id"),
            pl.when(unresolved).then(pl.col("_up_team")).otherwise(pl.col("previous_team")).alias("previous_team"),
        ).drop("_up_rep", "_up_team")
        if step.equals(result):
            break
        result = step
    return result
