"""Completeness and validity flags for leads: what is missing, what cannot be true.

Rules can test a flag (``flag_bad_email``), the app's Data page can trend them, and a lead's
``quality_flags`` list says in words what is wrong. One vectorised function serves a batch and
one lead (a one-row frame).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from models.quality.normalise import (
    DISPOSABLE_MAIL_DOMAINS,
    company_compact,
    country_code,
    email_domain,
    is_free_mail,
    is_valid_email,
)

MAX_EMPLOYEES = 3_000_000
"""More than the largest employer on earth has: a typo or a unit error."""
MAX_REVENUE = 1.0e12
MAX_REVENUE_PER_EMPLOYEE = 50.0e6
"""Revenue per head above this is almost always revenue typed in the wrong unit."""

COMPLETENESS_FIELDS: tuple[str, ...] = (
    "email",
    "company",
    "country",
    "industry",
    "employees",
    "annual_revenue",
    "title",
)
"""Fields whose presence makes up ``completeness`` (the share present, 0–1)."""

_PLACEHOLDERS = ("test", "testing", "na", "n a", "none", "null", "unknown", "asdf", "xxx", "company", "self",
                 "private", "individual", "student", "personal", "select", "abc", "aaa")  # fmt: skip

FLAGS: tuple[str, ...] = (
    "missing_email",
    "bad_email",
    "free_mail",
    "disposable_email",
    "missing_company",
    "placeholder_company",
    "missing_country",
    "unknown_country",
    "missing_industry",
    "missing_size",
    "impossible_size",
    "impossible_revenue",
    "implausible_revenue_per_employee",
    "future_created_at",
)
"""Every flag, in the order ``quality_flags`` lists them; the frame gets one ``flag_<name>`` each."""


@dataclass(frozen=True)
class QualityReport:
    """One lead's flags (names from :data:`FLAGS`, in that order) and completeness (0–1)."""

    flags: tuple[str, ...]
    completeness: float


def quality_flags(leads: pl.DataFrame, *, now: datetime | None = None) -> pl.DataFrame:
    """``leads`` plus ``flag_<name>`` booleans, ``quality_flags`` (list of names) and
    ``completeness``. Missing columns count as missing values; ``now`` (UTC) enables the
    future-timestamp check (the core never reads the clock itself)."""
    frame = leads.with_columns(
        [pl.lit(None, pl.String()).alias(c) for c in (*COMPLETENESS_FIELDS, "created_at") if c not in leads.columns]
    )
    text = {c: _text(c) for c in ("email", "company", "country", "industry", "title")}
    employees = pl.col("employees").cast(pl.Float64, strict=False)
    revenue = pl.col("annual_revenue").cast(pl.Float64, strict=False)
    domain = email_domain(text["email"])
    company = company_compact(text["company"])
    checks: dict[str, pl.Expr] = {
        "missing_email": text["email"].is_null(),
        "bad_email": text["email"].is_not_null() & ~is_valid_email(text["email"]).fill_null(False),
        "free_mail": is_free_mail(domain).fill_null(False),
        "disposable_email": domain.is_in(sorted(DISPOSABLE_MAIL_DOMAINS)).fill_null(False),
        "missing_company": text["company"].is_null(),
        "placeholder_company": text["company"].is_not_null()
        & (company.is_null() | company.is_in([p.replace(" ", "") for p in _PLACEHOLDERS])),
        "missing_country": text["country"].is_null(),
        "unknown_country": text["country"].is_not_null() & country_code(text["country"]).is_null(),
        "missing_industry": text["industry"].is_null(),
        "missing_size": employees.is_null() & revenue.is_null(),
        "impossible_size": (employees <= 0) | (employees > MAX_EMPLOYEES),
        "impossible_revenue": (revenue < 0) | (revenue > MAX_REVENUE),
        "implausible_revenue_per_employee": (employees > 0) & (revenue / employees > MAX_REVENUE_PER_EMPLOYEE),
        "future_created_at": _in_future(frame.schema["created_at"], now),
    }
    flagged = frame.with_columns(expr.fill_null(False).alias(f"flag_{name}") for name, expr in checks.items())
    present = [
        pl.col(c).cast(pl.String).str.strip_chars().str.len_chars().fill_null(0) > 0 for c in COMPLETENESS_FIELDS
    ]
    return flagged.with_columns(
        pl.concat_list([pl.when(pl.col(f"flag_{n}")).then(pl.lit(n)) for n in FLAGS])
        .list.drop_nulls()
        .alias("quality_flags"),
        (pl.sum_horizontal(present) / len(COMPLETENESS_FIELDS)).round(4).alias("completeness"),
    )


def check_lead(lead: Mapping[str, object], *, now: datetime | None = None) -> QualityReport:
    """:func:`quality_flags` for one lead given as a mapping of field → value."""
    columns = {*COMPLETENESS_FIELDS, "created_at", *lead}
    frame = pl.DataFrame({c: [lead.get(c)] for c in sorted(columns)}, strict=False)
    row = quality_flags(frame, now=now).row(0, named=True)
    return QualityReport(flags=tuple(row["quality_flags"]), completeness=float(row["completeness"]))


def _text(column: str) -> pl.Expr:
    value = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(value.str.len_chars() > 0).then(value)


def _in_future(dtype: pl.DataType, now: datetime | None) -> pl.Expr:
    if now is None or not isinstance(dtype, pl.Datetime):
        return pl.lit(False)
    return pl.col("created_at") > pl.lit(now).dt.convert_time_zone(dtype.time_zone or "UTC")
