"""Decisions as a frame: the batch side of what ``Policy.route_one`` builds for one lead.

Everything per lead is a gather from a small lookup table (per destination, per rule, per
fallback path), so a million decisions cost a few polars operations, not a Python loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pydantic_core

if TYPE_CHECKING:
    from models.policy.router import Policy


def why_without_rep(kind: str) -> str:
    """The reason recorded when a lead ends without a rep (a team inbox or a team destination)."""
    return "team inbox: nobody eligible" if kind == "sales" else "team destination"


def decisions_frame(
    policy: Policy,
    leads: pl.DataFrame,
    rule: np.ndarray,
    head: np.ndarray,
    final: np.ndarray,
    rep: np.ndarray,
    propensity: np.ndarray,
    eligible: np.ndarray,
    explored: np.ndarray,
) -> pl.DataFrame:
    """Decisions as a frame, built with gathers over small lookup tables (no per-lead Python)."""
    dests, r = policy.destinations, policy.roster

    # A lead's fallback note depends only on (first destination, final destination).
    size = len(dests)
    keys, note_code = np.unique(head * size + final, return_inverse=True)
    path_note = [policy.path_note(int(k) // size, int(k) % size) for k in keys]
    frame = pl.DataFrame(
        {
            "lead_id": leads["lead_id"].cast(pl.String),
            "created_at": leads["created_at"],
            "_has_rep": rep >= 0,
            "_final": final,
            "_rule": rule,
            "_rep": np.maximum(rep, 0),
            "_note": note_code.reshape(-1),
            "propensity": propensity.astype(np.float64),
            "score": leads["score"].cast(pl.Float64),
            "eligible_reps": eligible,
            "explored": explored,
        }
    )

    def lookup(values: list[Any], index: str, dtype: Any = pl.String) -> pl.Expr:
        return pl.lit(pl.Series(values, dtype=dtype)).gather(pl.col(index))

    kinds = {t: k for t, k in r.teams.items()}
    # One lazy plan from here, lookups included: each eager step has a fixed cost that a batch
    # of a few hundred leads (the endpoint's) would notice.
    lazy = frame.lazy().with_columns(
        lookup([d.team for d in dests], "_final").alias("_dest_team"),
        lookup(r.team.tolist() or [None], "_rep").alias("_rep_team"),
        lookup(r.rep_id.tolist() or [None], "_rep").alias("_rep_id"),
        lookup(policy.rule_names, "_rule").alias("rule"),
        lookup([d.method for d in dests], "_final").alias("_method"),
        # JSON-encoded once per lookup value (compact_json, as Policy.route_one encodes one
        # lead's reasons), so both paths write the very same reasons text.
        lookup(_js(policy.rule_names), "_rule").alias("_rule_js"),
        lookup(_js(policy.conditions), "_rule").alias("_condition_js"),
        lookup(_js([d.method for d in dests]), "_final").alias("_method_js"),
        lookup(_js([m.words for m in policy.methods]), "_final").alias("_words_js"),
        lookup(_js(path_note or [""]), "_note").alias("_fallback_js"),
        lookup([d.notify for d in dests], "_final", pl.Boolean).alias("notify"),
    )
    lazy = lazy.with_columns(
        pl.when("_has_rep").then("_rep_team").otherwise("_dest_team").alias("team"),
        pl.when("_has_rep").then("_rep_id").otherwise(None).alias("rep_id"),
        pl.when("_has_rep").then("_method").otherwise(None).alias("method"),
    ).with_columns(pl.col("team").replace_strict(kinds, default="unknown", return_dtype=pl.String).alias("_kind"))
    lazy = lazy.with_columns(
        pl.when(pl.col("_kind") != "sales")
        .then("_kind")
        .when("_has_rep")
        .then(pl.lit("assign"))
        .otherwise(pl.lit("inbox"))
        .alias("action"),
    )

    def flag(column: str) -> pl.Expr:
        return pl.when(pl.col(column)).then(pl.lit("true")).otherwise(pl.lit("false"))

    why_js = (
        pl.when("_has_rep")
        .then("_words_js")
        .when(pl.col("_kind") == "sales")
        .then(pl.lit(compact_json(why_without_rep("sales"))))
        .otherwise(pl.lit(compact_json(why_without_rep("team"))))
    )
    reasons = pl.concat_str(
        pl.lit('{"rule":'), "_rule_js",
        pl.lit(',"condition":'), "_condition_js",
        pl.lit(',"method":'), pl.when("_has_rep").then("_method_js").otherwise(pl.lit("null")),
        pl.lit(',"why":'), why_js,
        pl.lit(',"eligible_reps":'), pl.col("eligible_reps").cast(pl.String),
        pl.lit(',"explored":'), flag("explored"),
        pl.lit(',"fallback":'), "_fallback_js",
        pl.lit(',"notify":'), flag("notify"),
        pl.lit("}"),
    )  # fmt: skip
    return lazy.select(
        "lead_id",
        "created_at",
        "team",
        "rep_id",
        "action",
        "propensity",
        "score",
        "rule",
        "method",
        "notify",
        reasons.alias("reasons"),
    ).collect(engine="in-memory")


def compact_json(value: Any) -> str:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False)`` for text, whole numbers,
    booleans, None and containers of them (not floats, which it writes differently, e.g.
    ``0.00001``), by pydantic-core's encoder: the same text (a test holds them to it) in a
    quarter of the time, on every single decision's path."""
    return pydantic_core.to_json(value).decode()


def _js(values: list[Any]) -> list[str]:
    return [compact_json(v) for v in values]
