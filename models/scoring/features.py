"""Model features from lead frames: canonical fields, extra attributes, engagement, history.

Every feature is known when the lead is created. The only feature that reads other records
(``account_prior_conversions``) is an as-of join that counts conversions strictly before the
lead's ``created_at``; nothing here reads the lead's own outcomes or routing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from models.quality.normalise import FREE_MAIL_DOMAINS

FeatureKind = Literal["numeric", "categorical"]

MISSING = "(missing)"
"""Category given to a missing categorical value: "unknown industry" is informative in itself."""

# One list of consumer mailboxes for the whole project: a lead writing from one is usually not
# buying for a company (the quality stage ignores those domains when matching accounts).


CANONICAL_CATEGORICAL: tuple[str, ...] = (
    "industry", "country", "region", "source", "seniority", "product_interest",
)  # fmt: skip
CANONICAL_NUMERIC: tuple[str, ...] = (
    "employees", "annual_revenue", "score", "has_account", "free_mail", "created_hour", "created_weekday",
    "account_prior_conversions", "leads_last_24h", "local_hour", "local_weekday",
)  # fmt: skip
"""Derived from canonical fields; ``score`` is an externally supplied score, if any."""

RESERVED: frozenset[str] = frozenset(
    {"lead_id", "created_at", "email", "company", "account_id", "title", "extra", "import_id", "updated_at",
     "converted", "revenue", "account_owner_rep_id", *CANONICAL_CATEGORICAL, *CANONICAL_NUMERIC}
)  # fmt: skip
"""Names an extra attribute cannot take as a feature (they are canonical or derived here)."""

COUNTRY_TIMEZONES: dict[str, str] = {
    "US": "America/Chicago", "CA": "America/Toronto", "MX": "America/Mexico_City", "BR": "America/Sao_Paulo",
    "AR": "America/Argentina/Buenos_Aires", "CO": "America/Bogota", "CL": "America/Santiago", "PE": "America/Lima",
    "GB": "Europe/London", "IE": "Europe/Dublin", "PT": "Europe/Lisbon", "ES": "Europe/Madrid", "FR": "Europe/Paris",
    "DE": "Europe/Berlin", "NL": "Europe/Amsterdam", "BE": "Europe/Brussels", "CH": "Europe/Zurich",
    "AT": "Europe/Vienna", "IT": "Europe/Rome", "SE": "Europe/Stockholm", "NO": "Europe/Oslo",
    "DK": "Europe/Copenhagen", "FI": "Europe/Helsinki", "PL": "Europe/Warsaw", "CZ": "Europe/Prague",
    "GR": "Europe/Athens", "TR": "Europe/Istanbul", "IL": "Asia/Jerusalem", "AE": "Asia/Dubai",
    "SA": "Asia/Riyadh", "ZA": "Africa/Johannesburg", "NG": "Africa/Lagos", "EG": "Africa/Cairo",
    "KE": "Africa/Nairobi", "IN": "Asia/Kolkata", "SG": "Asia/Singapore", "MY": "Asia/Kuala_Lumpur",
    "ID": "Asia/Jakarta", "TH": "Asia/Bangkok", "VN": "Asia/Ho_Chi_Minh", "PH": "Asia/Manila",
    "CN": "Asia/Shanghai", "HK": "Asia/Hong_Kong", "TW": "Asia/Taipei", "KR": "Asia/Seoul", "JP": "Asia/Tokyo",
    "AU": "Australia/Sydney", "NZ": "Pacific/Auckland",
}  # fmt: skip
"""A representative time zone per country (ISO 3166 alpha-2): when the lead arrived *for them*."""

_BOOLEAN_TEXT = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0, "t": 1.0, "f": 0.0, "y": 1.0, "n": 0.0}


@dataclass(frozen=True)
class ExtraFeature:
    """An extra attribute used as a feature, with the kind inferred from its values."""

    name: str
    kind: FeatureKind


@dataclass(frozen=True)
class FeatureSet:
    """The columns a model reads, split by how it treats them."""

    categorical: tuple[str, ...]
    numeric: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.categorical, *self.numeric)

    def extended(self, categorical: Iterable[str] = (), numeric: Iterable[str] = ()) -> FeatureSet:
        return FeatureSet((*self.categorical, *categorical), (*self.numeric, *numeric))


def decode_extras(leads: pl.DataFrame, column: str = "extra") -> pl.DataFrame:
    """The ``extra`` JSON objects of ``leads`` as one text column per key (null where absent)."""
    if column not in leads.columns or leads.height == 0 or leads[column].null_count() == leads.height:
        return pl.DataFrame()
    # The Series API still infers the schema from every row (keys may differ between rows).
    decoded = leads[column].cast(pl.String).str.json_decode(infer_schema_length=None)
    if not isinstance(decoded.dtype, pl.Struct):
        return pl.DataFrame()
    return decoded.struct.unnest().select(pl.all().cast(pl.String))


def infer_extra_features(
    extras: pl.DataFrame,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    max_categories: int = 200,
) -> tuple[ExtraFeature, ...]:
    """Choose the extra attributes to use and whether each is numeric or categorical.

    Args:
        extras: text columns from :func:`decode_extras`.
        include: names to use (``None``: every extra present); a named one that is absent is skipped.
        exclude: names never to use (e.g. attributes recorded after the lead's creation).
        max_categories: a text attribute with more distinct values is an identifier or free text,
            not a category: it is left out.
    """
    names = list(extras.columns) if include is None else [n for n in include if n in extras.columns]
    chosen: list[ExtraFeature] = []
    for name in names:
        if name in exclude or name in RESERVED:
            continue
        values = extras[name].str.strip_chars().drop_nulls()
        values = values.filter(values != "")
        if values.len() == 0:
            continue
        if _as_number(values).null_count() == 0:
            chosen.append(ExtraFeature(name, "numeric"))
        elif values.n_unique() <= max_categories:
            chosen.append(ExtraFeature(name, "categorical"))
    return tuple(chosen)


def lead_features(
    leads: pl.DataFrame,
    extras: Sequence[ExtraFeature] = (),
    conversions: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Model-ready features for each lead, aligned with the rows of ``leads``.

    Args:
        leads: canonical lead columns (any missing one reads as null) plus ``extra`` (JSON text).
        extras: the extra attributes to unpack (see :func:`infer_extra_features`).
        conversions: ``account_id``, ``occurred_at`` of every known conversion; used for the
            point-in-time count of the account's earlier conversions.

    Returns:
        ``lead_id``, ``created_at`` and the columns of :func:`feature_set` (categoricals as text
        with :data:`MISSING` for nulls, numerics as Float64 with nulls).
    """
    created = _utc(leads["created_at"])
    base = leads.with_columns(created.alias("created_at"))
    for name in ("email", "account_id", *CANONICAL_CATEGORICAL, "employees", "annual_revenue", "score"):
        if name not in base.columns:
            base = base.with_columns(pl.lit(None, pl.String).alias(name))
    domain = pl.col("email").cast(pl.String).str.split("@").list.last().str.to_lowercase()
    frame = base.select(
        pl.col("lead_id").cast(pl.String),
        pl.col("created_at"),
        *[pl.col(c).cast(pl.String).str.strip_chars().fill_null(MISSING).alias(c) for c in CANONICAL_CATEGORICAL],
        pl.col("employees").cast(pl.Float64, strict=False),
        pl.col("annual_revenue").cast(pl.Float64, strict=False),
        pl.col("score").cast(pl.Float64, strict=False),
        pl.col("account_id").is_not_null().cast(pl.Float64).alias("has_account"),
        pl.when(domain.is_null()).then(None).otherwise(domain.is_in(sorted(FREE_MAIL_DOMAINS)).cast(pl.Float64))
        .alias("free_mail"),
        # When a lead arrives matters (speed to lead): hour and weekday are known at creation.
        pl.col("created_at").dt.hour().cast(pl.Float64).alias("created_hour"),
        pl.col("created_at").dt.weekday().cast(pl.Float64).alias("created_weekday"),
    )  # fmt: skip
    frame = frame.with_columns(
        account_conversions_before(base, conversions).alias("account_prior_conversions"),
        leads_in_previous(frame["created_at"], hours=24).alias("leads_last_24h"),
        *local_time(frame["created_at"], frame["country"]),
    )
    if extras:
        # An extra may already be a column (a frame built in memory) or sit in the JSON ``extra``.
        decoded = decode_extras(leads)
        columns = []
        for feature in extras:
            if feature.name in leads.columns:
                raw = leads[feature.name].cast(pl.String)
            elif feature.name in decoded.columns:
                raw = decoded[feature.name]
            else:
                raw = pl.Series(feature.name, [None] * leads.height, pl.String)
            # An empty string is a missing value, as in the canonical fields.
            text = raw.str.strip_chars().replace("", None)
            if feature.kind == "numeric":
                columns.append(_as_number(text).alias(feature.name))
            else:
                columns.append(text.fill_null(MISSING).alias(feature.name))
        frame = frame.with_columns(columns)
    return frame


def feature_set(extras: Sequence[ExtraFeature] = ()) -> FeatureSet:
    """The columns :func:`lead_features` produces for the lead score."""
    return FeatureSet(
        categorical=(*CANONICAL_CATEGORICAL, *(e.name for e in extras if e.kind == "categorical")),
        numeric=(*CANONICAL_NUMERIC, *(e.name for e in extras if e.kind == "numeric")),
    )


def usable(features: FeatureSet, frame: pl.DataFrame) -> FeatureSet:
    """Drop columns with no information in ``frame``: all null, or one constant value."""

    def informative(name: str) -> bool:
        column = frame[name]
        return column.null_count() < column.len() and column.drop_nulls().n_unique() > 1

    return FeatureSet(
        tuple(c for c in features.categorical if informative(c)),
        tuple(c for c in features.numeric if informative(c)),
    )


def account_conversions_before(leads: pl.DataFrame, conversions: pl.DataFrame | None) -> pl.Series:
    """For each lead, the number of conversions of its account strictly before its ``created_at``.

    An as-of join: a conversion that happens later — including the lead's own — cannot count.
    Leads without an account get 0.
    """
    n = leads.height
    if conversions is None or conversions.height == 0 or n == 0:
        return pl.Series("account_prior_conversions", [0.0] * n, pl.Float64)
    history = (
        conversions.select(pl.col("account_id").cast(pl.String), _utc(conversions["occurred_at"]).alias("at"))
        .drop_nulls()
        .sort("at")
        .with_columns(pl.int_range(1, pl.len() + 1).over("account_id").cast(pl.Float64).alias("so_far"))
    )
    probe = (
        leads.select(pl.col("account_id").cast(pl.String), _utc(leads["created_at"]).alias("at"))
        .with_row_index("_row")
        .sort("at")
    )
    joined = probe.join_asof(
        history, on="at", by="account_id", strategy="backward", allow_exact_matches=False, check_sortedness=False
    )
    return joined.sort("_row")["so_far"].fill_null(0.0).alias("account_prior_conversions")


def leads_in_previous(created_at: pl.Series, hours: float) -> pl.Series:
    """For each lead, how many leads arrived in the ``hours`` before it (strictly before).

    How busy the sales floor is when a lead arrives drives response times and overload; the
    count looks back only, so it is known at decision time. It counts the leads in the frame
    given: pass the whole history (not a sample) for the true figure.
    """
    stamps = created_at.dt.epoch("us").to_numpy().astype(np.int64)
    ordered = np.sort(stamps)
    window = int(hours * 3_600_000_000)
    before = np.searchsorted(ordered, stamps, side="left")
    since = np.searchsorted(ordered, stamps - window, side="left")
    return pl.Series("leads_last_24h", (before - since).astype(np.float64))


def local_time(created_at: pl.Series, country: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Hour (with minutes) and weekday (1 = Monday) of creation in the lead's country's time zone.

    Null for a country without a known zone. Business hours where the lead is drive how fast
    someone answers it.
    """
    hour = np.full(created_at.len(), np.nan)
    weekday = np.full(created_at.len(), np.nan)
    codes = country.cast(pl.String).str.strip_chars().str.to_uppercase()
    for code in codes.drop_nulls().unique().to_list():
        zone = COUNTRY_TIMEZONES.get(code)
        if zone is None:
            continue
        at = (codes == code).fill_null(False)
        local = created_at.filter(at).dt.convert_time_zone(zone)
        mask = at.to_numpy()
        hour[mask] = (local.dt.hour() + local.dt.minute() / 60).to_numpy()
        weekday[mask] = local.dt.weekday().to_numpy()
    return pl.Series("local_hour", hour).fill_nan(None), pl.Series("local_weekday", weekday).fill_nan(None)


def _as_number(text: pl.Series) -> pl.Series:
    """Text as Float64: numbers, and yes/no style booleans as 1/0; anything else null."""
    lowered = text.str.strip_chars().str.to_lowercase()
    boolean = lowered.replace_strict(_BOOLEAN_TEXT, default=None, return_dtype=pl.Float64)
    return lowered.cast(pl.Float64, strict=False).fill_null(boolean).alias(text.name)


def _utc(column: pl.Series) -> pl.Series:
    if isinstance(column.dtype, pl.Datetime) and column.dtype.time_zone is not None:
        return column.dt.convert_time_zone("UTC").cast(pl.Datetime("us", "UTC"))
    if isinstance(column.dtype, pl.Datetime):
        return column.dt.replace_time_zone("UTC").cast(pl.Datetime("us", "UTC"))
    return column.cast(pl.String).str.to_datetime(time_zone="UTC").cast(pl.Datetime("us", "UTC"))
