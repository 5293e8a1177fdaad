"""Replay a policy over the workspace's history: load → score → route in time order → write.

On a simulated workspace (the demo) the ground truth is rebuilt from the recorded simulation
config, so the replay also reports the *true* expected conversions of the policy and of the
logged (legacy) routing on the same leads, and scores come from the truth's lead quality unless
a scorer is injected. Elsewhere rules read the leads' own ``score`` column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from models.policy import FitScorer, LeadScorer, OperationalMetrics, Policy, operational_metrics
from models.simulation import SimulatedCompany, simulate_company
from pipelines.demo import simulation_config
from pipelines.policies import PolicySource, load_roster, resolve, unpack_extra
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse, query_frame

DECISION_COLUMNS = ("lead_id", "team", "rep_id", "action", "propensity", "reasons")


class TruthScorer:
    """Scores from the simulated truth: 100 × the lead's quality percentile among ``reference``."""

    def __init__(self, company: SimulatedCompany, reference: pl.DataFrame | None = None) -> None:
        self.truth = company.truth
        ref = company.leads if reference is None else reference
        self._sorted = np.sort(self.truth.quality(ref))

    def score(self, leads: pl.DataFrame) -> np.ndarray:
        q = self.truth.quality(leads)
        return np.asarray(100.0 * np.searchsorted(self._sorted, q, side="right") / max(self._sorted.size, 1))


class TruthFit:
    """Expected value per lead and rep: the true conversion probability (each rep otherwise idle)."""

    def __init__(self, company: SimulatedCompany) -> None:
        self.truth = company.truth
        ids = self.truth.destinations()["rep_id"].to_list()
        self._column = {r: i for i, r in enumerate(ids) if r is not None}

    def expected_value(self, leads: pl.DataFrame, rep_ids: Sequence[str]) -> np.ndarray:
        matrix = self.truth.conversion_matrix(leads)
        out = np.zeros((leads.height, len(rep_ids)))
        for j, rep in enumerate(rep_ids):
            if rep in self._column:
                out[:, j] = matrix[:, self._column[rep]]
        return out


@dataclass(frozen=True)
class ReplayResult:
    policy: str
    version: int | None
    window: tuple[date | None, date | None]
    decisions: pl.DataFrame
    metrics: OperationalMetrics
    truth: dict[str, Any] = field(default_factory=dict)
    score_source: str = "score column"
    out: Path | None = None

    def lines(self) -> list[str]:
        head = (
            f"policy {self.policy}" + (f" v{self.version}" if self.version else "") + f" (scores: {self.score_source})"
        )
        out = [head, *self.metrics.lines()]
        if self.truth:
            t = self.truth
            out.append(
                f"true expected conversions: {t['expected_conversions']:.1f} ({t['conversion_rate']:.2%})"
                f" vs logged routing {t['logged_expected_conversions']:.1f} ({t['logged_conversion_rate']:.2%})"
            )
        if self.out:
            out.append(f"decisions written to {self.out}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "version": self.version,
            "window": [d.isoformat() if d else None for d in self.window],
            "score_source": self.score_source,
            "metrics": self.metrics.to_json(),
            "truth": self.truth,
            "out": str(self.out) if self.out else None,
        }


def parse_window(text: str | None) -> tuple[date | None, date | None]:
    """``START..END`` (ISO dates, either side may be empty, END inclusive) or one ISO date."""
    if not text:
        return (None, None)
    start, sep, end = text.partition("..")
    try:
        first = date.fromisoformat(start) if start else None
        last = date.fromisoformat(end) if sep and end else (first if not sep else None)
    except ValueError:
        raise ValueError(f"--window: '{text}' is not START..END with ISO dates (e.g. 2026-01-01..2026-03-31)") from None
    if first and last and first > last:
        raise ValueError(f"--window: {first} is after {last}")
    return (first, last)


def load_leads(settings: Settings, window: tuple[date | None, date | None] = (None, None)) -> pl.DataFrame:
    """Historical leads in time order, extra attributes as columns; the window is bound, not formatted.

    A lead that arrived without an account id takes the account the quality stage matched it to
    (``lead_quality``, by domain, name or fuzzy name), so "account owner first" also reaches leads
    whose CRM record was never linked; ``account_matched`` says which ones.
    """
    sql = """SELECT l.* EXCLUDE (import_id, updated_at, account_id),
                    coalesce(l.account_id, q.matched_account_id) AS account_id,
                    l.account_id IS NULL AND q.matched_account_id IS NOT NULL AS account_matched
             FROM leads l LEFT JOIN lead_quality q USING (lead_id) WHERE 1 = 1"""
    params: list[object] = []
    if window[0]:
        sql += " AND l.created_at >= ?::DATE"
        params.append(window[0])
    if window[1]:
        sql += " AND l.created_at < ?::DATE + INTERVAL 1 DAY"
        params.append(window[1])
    with Warehouse(settings.warehouse_path).connect() as con:
        frame = query_frame(con, sql + " ORDER BY l.created_at, l.lead_id", params)
    return unpack_extra(frame).with_columns(pl.col("created_at").dt.convert_time_zone("UTC"))


def run_replay(
    settings: Settings,
    policy: str | PolicySource,
    *,
    window: tuple[date | None, date | None] = (None, None),
    out: Path | None = None,
    seed: int = 0,
    scorer: LeadScorer | None = None,
    fit: FitScorer | None = None,
    progress: Callable[[str], None] | None = None,
) -> ReplayResult:
    """Replay ``policy`` (a source or a reference: file, name, name@version) over the history."""
    say = progress or (lambda _m: None)
    source = resolve(settings, policy) if isinstance(policy, str) else policy
    leads = load_leads(settings, window)
    if leads.height == 0:
        raise ValueError("no leads in the warehouse for that window: nothing to replay")
    roster = load_roster(settings)
    config = simulation_config(Warehouse(settings.warehouse_path))
    company = simulate_company(config) if config is not None else None
    source_name = "scorer" if scorer else "score column"
    if company is not None:
        say("simulated workspace: scores and fit from the ground truth")
        truth_leads = _truth_leads(company, leads)
        scorer = scorer or TruthScorer(company, truth_leads)
        fit = fit or TruthFit(company)
        source_name = "ground truth" if isinstance(scorer, TruthScorer) else source_name
        leads = truth_leads
    bound = Policy(source.spec, roster, version=source.version, scorer=scorer, fit=fit)
    say(f"replaying {leads.height:,} leads through {source.spec.name} …")
    replay = bound.replay(leads, rng=np.random.default_rng(seed))
    decisions = replay.decisions.with_columns(
        pl.lit(source.spec.name).alias("policy"), pl.lit(source.version, pl.Int64).alias("policy_version")
    )
    metrics = operational_metrics(decisions, roster)
    truth: dict[str, Any] = {}
    if company is not None:
        value = company.truth.policy_value(leads, decisions)
        logged = company.truth.policy_value(leads, company.decisions)
        truth = {
            "expected_conversions": value.expected_conversions,
            "conversion_rate": value.conversion_rate,
            "expected_revenue": value.expected_revenue,
            "logged_expected_conversions": logged.expected_conversions,
            "logged_conversion_rate": logged.conversion_rate,
            "n_leads": value.n_leads,
        }
    if out is not None:
        write_decisions(decisions, out)
    return ReplayResult(source.spec.name, source.version, window, decisions, metrics, truth, source_name, out)


def write_decisions(decisions: pl.DataFrame, out: Path) -> None:
    """Parquet (``.parquet``) or CSV (anything else); the SPEC columns first."""
    frame = decisions.select(*DECISION_COLUMNS, pl.exclude(DECISION_COLUMNS))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        frame.write_parquet(out)
    else:
        frame.with_columns(pl.col("created_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ")).write_csv(out)


def _truth_leads(company: SimulatedCompany, leads: pl.DataFrame) -> pl.DataFrame:
    """The warehouse's leads as the simulation knows them (clean, typed): the truth reads these.
    Leads the simulation does not know (imported from elsewhere) are dropped with the rest."""
    ids = leads["lead_id"].implode()
    return company.leads.filter(pl.col("lead_id").is_in(ids)).sort("created_at", maintain_order=True)
