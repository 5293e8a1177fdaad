"""Operational metrics of a routing: shares, load per rep-day, capacity breaches, fairness.

Fairness is measured within each sales team over its active reps (reps with no lead count as 0),
on assignments divided by the rep's weight, so a rep weighted 1.2 is expected to get 20% more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from models.policy.roster import UNLIMITED, Roster


@dataclass(frozen=True)
class TeamFairness:
    """Coefficient of variation and Gini of weight-adjusted assignments (0 = perfectly even;
    both are 0, not NaN, when the team got no leads)."""

    team: str
    reps: int
    assigned: int
    cv: float
    gini: float


@dataclass(frozen=True)
class OperationalMetrics:
    """Attributes:
    n_leads, unrouted: decisions, and those without a team (must be 0).
    share: team → share of leads; action_share: action → share.
    load: ``rep_id, team, day, load, capacity, over`` per rep-day with a lead.
    capacity_breaches: rep-days over capacity; leads_over_capacity: leads beyond capacity.
    fairness: per sales team.
    """

    n_leads: int
    unrouted: int
    share: dict[str, float]
    action_share: dict[str, float]
    load: pl.DataFrame
    capacity_breaches: int
    leads_over_capacity: int
    fairness: tuple[TeamFairness, ...]

    def to_json(self) -> dict[str, Any]:
        loads = self.load["load"]
        return {
            "n_leads": self.n_leads,
            "unrouted": self.unrouted,
            "share": self.share,
            "action_share": self.action_share,
            "load_per_rep_day": {
                "mean": float(loads.cast(pl.Float64).mean() or 0.0) if loads.len() else 0.0,  # type: ignore[arg-type]
                "max": int(loads.cast(pl.Int64).to_numpy().max()) if loads.len() else 0,
            },
            "capacity_breaches": self.capacity_breaches,
            "leads_over_capacity": self.leads_over_capacity,
            "fairness": {
                f.team: {"reps": f.reps, "assigned": f.assigned, "cv": f.cv, "gini": f.gini} for f in self.fairness
            },
        }

    def lines(self) -> list[str]:
        out = [f"leads routed: {self.n_leads:,} (unrouted {self.unrouted})"]
        out += [f"  {team:<12} {share:6.1%}" for team, share in self.share.items()]
        out.append(f"capacity breaches: {self.capacity_breaches} rep-days ({self.leads_over_capacity} leads over)")
        for f in self.fairness:
            out.append(
                f"fairness {f.team:<12} reps {f.reps:>2}  assigned {f.assigned:>6,}  cv {f.cv:.3f}  gini {f.gini:.3f}"
            )
        return out


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 when all equal or all zero)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n, total = x.size, float(x.sum())
    if n == 0 or total == 0:
        return 0.0
    return float((2.0 * np.arange(1, n + 1) - n - 1) @ x / (n * total))


def coefficient_of_variation(values: np.ndarray) -> float:
    """Population standard deviation over the mean (0 when the mean is 0)."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean()) if x.size else 0.0
    return float(x.std() / mean) if mean > 0 else 0.0


def operational_metrics(decisions: pl.DataFrame, roster: Roster) -> OperationalMetrics:
    """Metrics of ``decisions`` (``lead_id, created_at, team, rep_id``, optional ``action``)."""
    n = decisions.height
    unrouted = int(decisions["team"].is_null().sum())

    def shares(column: str) -> dict[str, float]:
        if column not in decisions.columns or n == 0:
            return {}
        counts = decisions.group_by(column).len().sort(["len", column], descending=[True, False])
        return {str(k): v / n for k, v in counts.iter_rows()}

    reps = pl.DataFrame(
        {"rep_id": roster.rep_id.tolist(), "capacity": roster.capacity, "rep_team": roster.team.tolist()},
        schema={"rep_id": pl.String, "capacity": pl.Int64, "rep_team": pl.String},
    )
    created = pl.col("created_at")
    utc = created.dt.convert_time_zone("UTC") if getattr(decisions.schema["created_at"], "time_zone", None) else created
    load = (
        decisions.with_columns(utc.dt.date().alias("day"))
        .filter(pl.col("rep_id").is_not_null())
        .group_by("rep_id", "day")
        .len("load")
        .join(reps, on="rep_id", how="left")
        .with_columns(
            pl.when(pl.col("capacity") >= UNLIMITED).then(None).otherwise(pl.col("capacity")).alias("capacity"),
        )
        .with_columns((pl.col("load") - pl.col("capacity")).clip(lower_bound=0).fill_null(0).alias("over"))
        .select("rep_id", pl.col("rep_team").alias("team"), "day", pl.col("load").cast(pl.Int64), "capacity", "over")
        .sort("rep_id", "day")
    )
    counts = dict(decisions.filter(pl.col("rep_id").is_not_null()).group_by("rep_id").len().iter_rows())
    fairness = []
    for team in sorted({t for t in roster.team.tolist() if roster.kind(t) == "sales"}):
        members = roster.members(team)
        if members.size == 0:
            continue
        adjusted = np.array([counts.get(roster.rep_id[r], 0) for r in members]) / roster.weight[members]
        fairness.append(
            TeamFairness(
                team=team,
                reps=int(members.size),
                assigned=int(sum(counts.get(roster.rep_id[r], 0) for r in members)),
                cv=coefficient_of_variation(adjusted),
                gini=gini(adjusted),
            )
        )
    return OperationalMetrics(
        n_leads=n,
        unrouted=unrouted,
        share=shares("team"),
        action_share=shares("action"),
        load=load,
        capacity_breaches=int((load["over"] > 0).sum()),
        leads_over_capacity=int(load["over"].sum()),
        fairness=tuple(fairness),
    )
