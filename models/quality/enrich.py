"""Filling a lead's missing firmographics from other sources, remembering where each value came from.

The sources (the matched account, the warehouse's reference table, an external provider) are
looked up elsewhere; here they arrive as *offers*: rows of ``_row`` (the lead's position),
``source`` (e.g. ``"account:A0001"``, ``"reference:crm-export"``, ``"provider:acme-data"``),
``priority`` (lower wins) and any of the :data:`ENRICHABLE` fields. A value the lead already has
is never replaced; a missing one takes the first offer that has it.
"""

from __future__ import annotations

import polars as pl

ENRICHABLE: dict[str, pl.DataType] = {
    "industry": pl.String(),
    "employees": pl.Int64(),
    "annual_revenue": pl.Float64(),
    "country": pl.String(),
}
"""Fields enrichment may fill, with their canonical types."""

OFFER_SCHEMA: dict[str, pl.DataType] = {"_row": pl.Int64(), "source": pl.String(), "priority": pl.Int64(), **ENRICHABLE}


def empty_offers() -> pl.DataFrame:
    """An offer frame with no rows (the shape :func:`fill_missing` expects)."""
    return pl.DataFrame(schema=OFFER_SCHEMA)


def fill_missing(leads: pl.DataFrame, offers: pl.DataFrame) -> pl.DataFrame:
    """``leads`` with missing :data:`ENRICHABLE` values filled and ``enriched_from`` added: a JSON
    object of field → source for every value that was filled (``{}`` when none was).

    Args:
        leads: any columns; the enrichable ones are added as missing when absent.
        offers: see the module docstring; ``_row`` indexes ``leads`` by position.
    """
    frame = leads.with_columns(
        [pl.lit(None, dtype).alias(name) for name, dtype in ENRICHABLE.items() if name not in leads.columns]
    ).with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"))
    offers = offers.select(
        [pl.col(c).cast(t) if c in offers.columns else pl.lit(None, t).alias(c) for c, t in OFFER_SCHEMA.items()]
    ).sort("_row", "priority", "source")
    best = offers.group_by("_row", maintain_order=True).agg(
        *[pl.col(f).drop_nulls().first().alias(f"_offer_{f}") for f in ENRICHABLE],
        *[pl.col("source").filter(pl.col(f).is_not_null()).first().alias(f"_source_{f}") for f in ENRICHABLE],
    )
    joined = frame.join(best, on="_row", how="left", maintain_order="left")
    filled = {f: pl.col(f).is_null() & pl.col(f"_offer_{f}").is_not_null() for f in ENRICHABLE}
    sources = pl.struct([pl.when(filled[f]).then(pl.col(f"_source_{f}")).alias(f) for f in ENRICHABLE])
    out = joined.with_columns(
        *[pl.coalesce(pl.col(f).cast(t, strict=False), pl.col(f"_offer_{f}")).alias(f) for f, t in ENRICHABLE.items()],
        # json_encode keeps nulls; drop them so the record lists only what was filled.
        sources.struct.json_encode()
        .str.replace_all(r'"[a-z_]+":null,?', "")
        .str.replace(",}", "}")
        .alias("enriched_from"),
    )
    return out.drop("_row", *[f"_offer_{f}" for f in ENRICHABLE], *[f"_source_{f}" for f in ENRICHABLE])
