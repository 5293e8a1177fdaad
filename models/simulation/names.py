"""Deterministic company names, domains and person names built from integer indices.

Names come from fixed word lists, so the same index always gives the same company; the world
reserves a few hundred indices for its named accounts and leads draw from the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from models.simulation.catalog import (
    COMPANY_PREFIXES,
    COMPANY_STEMS,
    COMPANY_TAILS,
    FIRST_NAMES,
    LAST_NAMES,
    TLDS,
)

N_DISTINCT = len(COMPANY_PREFIXES) * len(COMPANY_STEMS) * len(COMPANY_TAILS)
"""Distinct base names; beyond that a number is appended (``Brightwave Labs 2``)."""


def _take(words: tuple[str, ...], index: np.ndarray) -> pl.Series:
    return pl.Series(words, dtype=pl.String).gather(pl.Series(index, dtype=pl.Int64))


def company_names(index: np.ndarray) -> pl.DataFrame:
    """Company ``name`` and web ``domain`` for each index (vectorised; same index, same name)."""
    index = np.asarray(index, dtype=np.int64)
    n_prefix, n_stem = len(COMPANY_PREFIXES), len(COMPANY_STEMS)
    prefix = _take(COMPANY_PREFIXES, index % n_prefix)
    stem = _take(COMPANY_STEMS, (index // n_prefix) % n_stem)
    tail = _take(COMPANY_TAILS, (index // (n_prefix * n_stem)) % len(COMPANY_TAILS))
    cycle = pl.Series(index // N_DISTINCT)
    tld = _take(TLDS, (index * 7 + index // 3) % len(TLDS))
    frame = pl.DataFrame({"prefix": prefix, "stem": stem, "tail": tail, "cycle": cycle, "tld": tld})
    number = pl.when(pl.col("cycle") > 0).then((pl.col("cycle") + 1).cast(pl.String)).otherwise(pl.lit(""))
    return frame.select(
        pl.concat_str(
            [
                pl.col("prefix") + pl.col("stem") + pl.lit(" ") + pl.col("tail"),
                pl.when(pl.col("cycle") > 0).then(pl.lit(" ") + number).otherwise(pl.lit("")),
            ]
        ).alias("name"),
        pl.concat_str([pl.col("prefix"), pl.col("stem"), pl.col("tail"), number, pl.col("tld")])
        .str.to_lowercase()
        .alias("domain"),
    )


def person_names(rng: np.random.Generator, n: int) -> pl.DataFrame:
    """``first`` and ``last`` names drawn uniformly from the word lists."""
    return pl.DataFrame(
        {
            "first": _take(FIRST_NAMES, rng.integers(0, len(FIRST_NAMES), n)),
            "last": _take(LAST_NAMES, rng.integers(0, len(LAST_NAMES), n)),
        }
    )


def sequential_ids(prefix: str, n: int, width: int) -> pl.Series:
    """``prefix`` followed by 1…n zero-padded to ``width`` digits (``L0000001``)."""
    numbers = pl.Series(np.arange(1, n + 1, dtype=np.int64)).cast(pl.String).str.zfill(width)
    return (prefix + numbers).rename("id") if n else pl.Series("id", [], dtype=pl.String)


def labels(words: Sequence[str] | np.ndarray, index: np.ndarray) -> pl.Series:
    """``words[index]`` as a string series, null where ``index`` is negative (vectorised)."""
    index = np.asarray(index, dtype=np.int64)
    picked = pl.Series(list(words), dtype=pl.String).gather(pl.Series(np.maximum(index, 0)))
    return picked.scatter(np.flatnonzero(index < 0), None) if (index < 0).any() else picked
