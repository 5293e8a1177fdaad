"""Decision-time lead fields as numpy arrays: what the ground truth and the logging policy read.

Only fields known when a lead is created are used; categories become integer codes (``-1`` for
missing or unknown) so every later computation is plain vectorised arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from models.simulation.calendar import day_number
from models.simulation.catalog import (
    FREE_MAIL,
    INDUSTRIES,
    LANGUAGES,
    PRODUCTS,
    REGIONS,
    SENIORITIES,
    SOURCES,
)

REQUIRED_LEAD_COLUMNS: tuple[str, ...] = (
    "lead_id", "created_at", "email", "account_id", "industry", "employees", "country", "region",
    "source", "seniority", "product_interest", "web_visits", "email_opens", "pricing_page_views",
    "demo_requested", "language",
)  # fmt: skip


@dataclass(frozen=True)
class LeadView:
    """One array per decision-time field, aligned with the rows of the leads frame."""

    lead_id: pl.Series  # String
    created_us: np.ndarray  # int64 µs since epoch, UTC
    day: np.ndarray  # UTC calendar day number
    industry: np.ndarray  # code into INDUSTRIES, -1 missing
    employees: np.ndarray  # float, NaN missing
    country_missing: np.ndarray
    region: np.ndarray  # code into REGIONS, -1 missing
    source: np.ndarray
    seniority: np.ndarray
    product: np.ndarray
    language: np.ndarray
    account_id: pl.Series  # String, null without a known account
    has_account: np.ndarray
    free_mail: np.ndarray
    web_visits: np.ndarray
    email_opens: np.ndarray
    pricing_page_views: np.ndarray
    demo_requested: np.ndarray

    def subset(self, at: np.ndarray) -> LeadView:
        """The same fields for the rows at positions ``at``."""
        fields: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            fields[name] = value.gather(at) if isinstance(value, pl.Series) else value[at]
        return LeadView(**fields)

    @property
    def size(self) -> int:
        return int(self.lead_id.len())


def lead_view(leads: pl.DataFrame) -> LeadView:
    """Read the decision-time fields of ``leads`` (columns :data:`REQUIRED_LEAD_COLUMNS`).

    Raises:
        ValueError: a required column is absent, or ``created_at`` has nulls.
    """
    missing = [c for c in REQUIRED_LEAD_COLUMNS if c not in leads.columns]
    if missing:
        raise ValueError(f"leads: missing column(s) {', '.join(missing)} needed by the simulation's truth")
    created = leads["created_at"]
    if not isinstance(created.dtype, pl.Datetime):
        raise ValueError(f"leads: created_at must be a datetime column, got {created.dtype}")
    if created.dtype.time_zone is None:
        created = created.dt.replace_time_zone("UTC")  # without an offset a timestamp means UTC
    created = created.dt.convert_time_zone("UTC").cast(pl.Datetime("us", "UTC"))
    if created.null_count():
        raise ValueError("leads: created_at has missing values")
    created_us = created.dt.epoch("us").to_numpy().astype(np.int64)
    domain = leads["email"].cast(pl.String).str.split("@").list.last().str.to_lowercase()
    frame = leads.select(
        _code("industry", INDUSTRIES),
        _code("region", REGIONS),
        _code("source", SOURCES),
        _code("seniority", SENIORITIES),
        _code("product_interest", PRODUCTS),
        _code("language", LANGUAGES),
        pl.col("employees").cast(pl.Float64, strict=False),
        pl.col("country").is_null().alias("country_missing"),
        pl.col("account_id").cast(pl.String),
        *[
            pl.col(c).cast(pl.Int64, strict=False).fill_null(0).clip(0)
            for c in ("web_visits", "email_opens", "pricing_page_views")
        ],
        _flag("demo_requested"),
    ).with_columns(domain.is_in(list(FREE_MAIL)).fill_null(False).alias("free_mail"))
    return LeadView(
        lead_id=leads["lead_id"].cast(pl.String),
        created_us=created_us,
        day=day_number(created_us),
        industry=frame["industry"].to_numpy(),
        employees=frame["employees"].to_numpy().astype(np.float64),
        country_missing=frame["country_missing"].to_numpy(),
        region=frame["region"].to_numpy(),
        source=frame["source"].to_numpy(),
        seniority=frame["seniority"].to_numpy(),
        product=frame["product_interest"].to_numpy(),
        language=frame["language"].to_numpy(),
        account_id=frame["account_id"],
        has_account=frame["account_id"].is_not_null().to_numpy(),
        free_mail=frame["free_mail"].to_numpy(),
        web_visits=frame["web_visits"].to_numpy(),
        email_opens=frame["email_opens"].to_numpy(),
        pricing_page_views=frame["pricing_page_views"].to_numpy(),
        demo_requested=frame["demo_requested"].to_numpy(),
    )


def _code(column: str, labels: tuple[str, ...]) -> pl.Expr:
    mapping = {label: i for i, label in enumerate(labels)}
    return (
        pl.col(column)
        .cast(pl.String)
        .str.strip_chars()
        .replace_strict(mapping, default=-1, return_dtype=pl.Int64)
        .alias(column)
    )


def _flag(column: str) -> pl.Expr:
    """A boolean that may have arrived as text (``"true"``/``"yes"``/``"1"``) after an import."""
    text = pl.col(column).cast(pl.String).str.to_lowercase()
    return text.is_in(["true", "yes", "1", "y", "t"]).fill_null(False).alias(column)
