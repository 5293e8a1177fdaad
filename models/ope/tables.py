"""An offline evaluation result as flat tables, for plots and read-outs.

Each function takes the JSON object of a run (``EvaluationRun.to_json()``, ``evaluate --json``,
or a stored run from ``load_run``) and returns a polars frame, so a notebook, the app and a
test read a fresh or a reopened run the same way. Invalid estimates keep their row, with null
values and the ``reason`` — never dropped, never a bare NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

_ESTIMATE_SCHEMA = {
    "valid": pl.Boolean,
    "value": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "std_error": pl.Float64,
    "reason": pl.String,
    "warnings": pl.String,
}


def _estimate(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "valid": bool(body.get("valid", False)),
        "value": body.get("value"),
        "ci_low": body.get("ci_low"),
        "ci_high": body.get("ci_high"),
        "std_error": body.get("std_error"),
        "reason": body.get("reason"),
        # Several warnings in one cell: a table row per estimate stays one row.
        "warnings": "; ".join(body.get("warnings", [])) or None,
    }


def estimates_table(result: Mapping[str, Any]) -> pl.DataFrame:
    """One row per policy and estimator: ``policy, estimator`` and the estimate's fields."""
    rows = [
        {"policy": p["policy"], "estimator": name, **_estimate(body)}
        for p in result["policies"]
        for name, body in p["estimates"].items()
    ]
    return pl.DataFrame(rows, schema={"policy": pl.String, "estimator": pl.String, **_ESTIMATE_SCHEMA})


def differences_table(result: Mapping[str, Any]) -> pl.DataFrame:
    """Paired differences against the first policy: ``policy, baseline, estimator`` and the fields."""
    baseline = result["policies"][0]["policy"] if result["policies"] else None
    rows = [
        {"policy": p["policy"], "baseline": baseline, "estimator": name, **_estimate(body)}
        for p in result["policies"][1:]
        for name, body in p["diff_vs_first"].items()
    ]
    schema = {"policy": pl.String, "baseline": pl.String, "estimator": pl.String, **_ESTIMATE_SCHEMA}
    return pl.DataFrame(rows, schema=schema)


DIAGNOSTIC_COLUMNS = (
    "n_leads",
    "n_excluded_not_matured",
    "share_excluded_not_matured",
    "effective_sample_size",
    "mean_weight",
    "mean_weight_std_error",
    "max_weight",
    "share_matched",
    "share_clipped",
    "support_deficit",
)


def diagnostics_table(result: Mapping[str, Any]) -> pl.DataFrame:
    """One row per policy: the weight diagnostics and, on a simulated workspace, the true values
    (``truth_no_interference``, ``truth_deployed``; null elsewhere)."""
    rows = []
    for p in result["policies"]:
        diagnostics = p.get("diagnostics", {})
        truth = p.get("truth", {})
        rows.append(
            {
                "policy": p["policy"],
                **{c: _number(diagnostics.get(c)) for c in DIAGNOSTIC_COLUMNS},
                "truth_no_interference": _number(truth.get("no_interference")),
                "truth_deployed": _number(truth.get("deployed")),
            }
        )
    schema = {"policy": pl.String, **dict.fromkeys(DIAGNOSTIC_COLUMNS, pl.Float64)}
    schema |= {"truth_no_interference": pl.Float64, "truth_deployed": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def segments_table(result: Mapping[str, Any]) -> pl.DataFrame:
    """Per segment and policy: the estimate (``kind = "value"``) and the paired difference against
    the first policy (``kind = "diff"``); ``segment`` names the dimension, ``level`` its value."""
    rows = []
    for s in result.get("segments", []):
        head = {"segment": s["segment"], "level": None if s["value"] is None else str(s["value"])}
        head["n_leads"] = s["n_leads"]
        for kind, key in (("value", "estimates"), ("diff", "diff_vs_first")):
            for policy, body in s.get(key, {}).items():
                rows.append({**head, "policy": policy, "kind": kind, **_estimate(body)})
    schema = {
        "segment": pl.String,
        "level": pl.String,
        "n_leads": pl.Int64,
        "policy": pl.String,
        "kind": pl.String,
        **_ESTIMATE_SCHEMA,
    }
    return pl.DataFrame(rows, schema=schema)


def _number(value: object) -> float | None:
    # bool is an int: a flag is not a figure.
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def operational_table(result: Mapping[str, Any]) -> pl.DataFrame:
    """One row per policy: what its capacity-enforced replay did to the reps (all leads of the
    window, matured or not): ``n_leads, unrouted, capacity_breaches, leads_over_capacity,
    mean_load_per_rep_day, max_load_per_rep_day``."""
    rows = []
    for p in result["policies"]:
        op = p.get("operational", {})
        load = op.get("load_per_rep_day", {})
        rows.append(
            {
                "policy": p["policy"],
                "n_leads": op.get("n_leads"),
                "unrouted": op.get("unrouted"),
                "capacity_breaches": op.get("capacity_breaches"),
                "leads_over_capacity": op.get("leads_over_capacity"),
                "mean_load_per_rep_day": _number(load.get("mean")),
                "max_load_per_rep_day": _number(load.get("max")),
            }
        )
    counts = ("n_leads", "unrouted", "capacity_breaches", "leads_over_capacity")
    schema = {"policy": pl.String, **dict.fromkeys(counts, pl.Int64)}
    schema |= {"mean_load_per_rep_day": pl.Float64, "max_load_per_rep_day": pl.Float64}
    return pl.DataFrame(rows, schema=schema)
