"""Lead × destination features for the fit model: who works the lead, and how well they match.

A destination is a ``team`` with an optional ``rep_id`` (a team without a rep is its inbox,
nurture or the queue). The fit model reads the lead's features plus these columns, so it can
learn which kind of lead each team and rep converts best.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from models.scoring.features import MISSING, FeatureSet

DESTINATION_CATEGORICAL: tuple[str, ...] = ("team", "rep_id", "rep_seniority")
DESTINATION_NUMERIC: tuple[str, ...] = (
    "industry_match", "region_match", "language_match", "owner_match", "rep_wait_hours",
)  # fmt: skip
NO_REP = "(none)"
"""Category of ``rep_id`` and ``rep_seniority`` for a destination without a rep."""


def fit_feature_set(lead: FeatureSet) -> FeatureSet:
    """The lead's features plus the destination columns."""
    return lead.extended(DESTINATION_CATEGORICAL, DESTINATION_NUMERIC)


def rep_profiles(reps: pl.DataFrame) -> pl.DataFrame:
    """Normalise a reps frame: ``rep_id``, ``rep_team``, ``rep_seniority``, ``rep_regions``,
    ``rep_industries``, ``rep_languages`` (lists of text; languages may come as ``en|es`` text)."""

    def as_list(name: str) -> pl.Expr:
        if name not in reps.columns:
            return pl.lit(None, pl.List(pl.String)).alias(f"rep_{name}")
        column = pl.col(name)
        if reps.schema[name] == pl.String:
            column = column.str.split("|")
        return column.cast(pl.List(pl.String)).alias(f"rep_{name}")

    def text(name: str) -> pl.Expr:
        return pl.col(name).cast(pl.String) if name in reps.columns else pl.lit(None, pl.String)

    return reps.select(
        pl.col("rep_id").cast(pl.String),
        pl.col("team").cast(pl.String).alias("rep_team"),
        text("seniority").fill_null(MISSING).alias("rep_seniority"),
        as_list("regions"),
        as_list("industries"),
        as_list("languages"),
        text("timezone").alias("rep_timezone"),
        text("working_hours").alias("rep_working_hours"),
    )


def destination_features(
    pairs: pl.DataFrame,
    reps: pl.DataFrame,
    account_owners: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Add the destination columns to lead × destination rows.

    Args:
        pairs: the lead's feature columns plus ``team``, ``rep_id`` (null without a rep) and, for
            the owner match, ``account_id``; a ``language`` column is used when present.
        reps: see :func:`rep_profiles`.
        account_owners: ``account_id``, ``owner_rep_id``.

    Returns:
        ``pairs`` with :data:`DESTINATION_CATEGORICAL` and :data:`DESTINATION_NUMERIC` filled in.
        A rep's team wins over a different ``team`` (the rep works the lead).
    """
    profiles = rep_profiles(reps)
    out = pairs.with_columns(pl.col("rep_id").cast(pl.String)).join(
        profiles, on="rep_id", how="left", maintain_order="left"
    )
    if account_owners is not None and "account_id" in out.columns:
        owners = account_owners.select(pl.col("account_id").cast(pl.String), pl.col("owner_rep_id").cast(pl.String))
        out = out.join(owners.unique("account_id"), on="account_id", how="left", maintain_order="left")
    else:
        out = out.with_columns(pl.lit(None, pl.String).alias("owner_rep_id"))

    def member(values: str, name: str) -> pl.Expr:
        if name not in out.columns:
            return pl.lit(0.0)
        return pl.col(values).list.contains(pl.col(name).cast(pl.String)).fill_null(False).cast(pl.Float64)

    with_rep = pl.col("rep_id").is_not_null()
    return out.with_columns(
        pl.coalesce(pl.col("rep_team"), pl.col("team").cast(pl.String)).fill_null(MISSING).alias("team"),
        pl.col("rep_id").fill_null(NO_REP).alias("rep_id"),
        pl.when(with_rep).then(pl.col("rep_seniority")).otherwise(pl.lit(NO_REP)).alias("rep_seniority"),
        member("rep_industries", "industry").alias("industry_match"),
        member("rep_regions", "region").alias("region_match"),
        member("rep_languages", "language").alias("language_match"),
        (with_rep & (pl.col("owner_rep_id") == pl.col("rep_id")))
        .fill_null(False)
        .cast(pl.Float64)
        .alias("owner_match"),
        wait_hours(out).alias("rep_wait_hours"),
    ).drop(
        "rep_team", "rep_regions", "rep_industries", "rep_languages", "owner_rep_id", "rep_timezone",
        "rep_working_hours",
    )  # fmt: skip


def wait_hours(rows: pl.DataFrame) -> pl.Series:
    """Hours from ``created_at`` until the rep's working hours (Mon–Fri, the rep's time zone).

    Speed to lead matters: a lead arriving at night in the rep's time zone waits. Null when the
    rep's ``timezone`` or ``working_hours`` (``"09:00-17:00"``) is unknown, or without a rep.
    Holidays and absences are not known here; the model learns the rest from history.
    """
    out = np.full(rows.height, np.nan)
    if rows.height == 0 or "created_at" not in rows.columns:
        return pl.Series("rep_wait_hours", out)
    hours = rows["rep_working_hours"].str.extract_groups(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
    start = (hours.struct.field("1").cast(pl.Float64) + hours.struct.field("2").cast(pl.Float64) / 60).to_numpy()
    end = (hours.struct.field("3").cast(pl.Float64) + hours.struct.field("4").cast(pl.Float64) / 60).to_numpy()
    zones = rows["rep_timezone"]
    for zone in zones.drop_nulls().unique().to_list():
        at = (zones == zone).fill_null(False).to_numpy() & ~np.isnan(start)
        try:
            local = rows["created_at"].filter(pl.Series(at)).dt.convert_time_zone(zone)
        except pl.exceptions.PolarsError:
            continue  # an unknown time zone name: leave the feature missing
        hour = (local.dt.hour() + local.dt.minute() / 60).to_numpy().astype(np.float64)
        weekday = local.dt.weekday().to_numpy()  # 1 = Monday … 7 = Sunday
        out[at] = _until_working(hour, weekday, start[at], end[at])
    return pl.Series("rep_wait_hours", out)


def _until_working(hour: np.ndarray, weekday: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    working_day = weekday <= 5
    now = working_day & (hour >= start) & (hour < end)
    today = working_day & (hour < start)
    # Otherwise the next working day's start: skip Saturday and Sunday.
    days_ahead = np.select([weekday == 5, weekday == 6], [3, 2], 1)
    later = days_ahead * 24.0 - hour + start
    return np.where(now, 0.0, np.where(today, start - hour, later))


def candidate_pairs(leads: pl.DataFrame, destinations: pl.DataFrame) -> pl.DataFrame:
    """Every lead with every destination, lead-major: row ``i * k + j`` is lead ``i``,
    destination ``j`` (``k`` destinations), so predictions reshape to ``(n_leads, k)``."""
    chosen = destinations.select(pl.col("team").cast(pl.String), pl.col("rep_id").cast(pl.String))
    return leads.drop("team", "rep_id", strict=False).join(chosen, how="cross", maintain_order="left_right")
