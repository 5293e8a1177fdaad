"""Offline comparison of routing policies on history: load → replay → estimate → store.

Wiring only; the statistics live in :mod:`models.ope`. The matured history (leads whose
conversion window has closed) and the decision that routed each lead (with its logged
propensity) come from the warehouse; each candidate is replayed over every lead of the window in
time order with rep capacity and absences enforced (unmatured leads still use capacity); the
estimators run on the matured leads; the run is stored in ``evaluation_runs`` so the app can list
and reopen it. On a simulated workspace (the demo) scores and fit come from the ground truth, as
in replay, and the true values of each policy are reported next to the estimates.
"""

from __future__ import annotations

import getpass
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from models.ope import ESTIMATOR_NAMES, Comparison, by_segment, compare, offline_inputs, unsupported_destinations
from models.ope.reward import RewardModel, lead_features
from models.policy import Policy, operational_metrics
from models.simulation import SimulatedCompany, simulate_company
from pipelines.config import load_config
from pipelines.demo import simulation_config
from pipelines.policies import load_roster, resolve
from pipelines.replay import TruthFit, TruthScorer, load_leads
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse, query_frame

SCORE_TIERS = (20.0, 50.0, 80.0)
MAX_TRAIN_ROWS = 200_000
"""Each cross-fitting fold's reward model is fitted on at most this many rows (seeded sample)."""
TRUTH_NOTE = (
    "truth (simulated workspace): no_interference is each lead's true probability at the policy's"
    " destination with the logged rep-day loads (what the estimators target); deployed is the policy's"
    " own routing with its own loads (overload, slower response) — the estimators cannot see that gap"
)
SUPPORT_NOTE = (
    "a candidate agrees with the logged destination on only {share:.0%} of leads (share_matched): when the"
    " log spread leads at random over reps and the candidate picks one rep deterministically, the weights"
    " are sparse and large, so intervals are wide and a value's interval may undercover (paired differences"
    " fare better). clipped_dr trades a small bias for much narrower intervals; a candidate with"
    " exploration is better supported"
)


@dataclass(frozen=True)
class EvaluationRun:
    """One stored evaluation: inputs, the comparison, segments, operational metrics, truth."""

    run_id: str
    created_at: datetime
    window: tuple[date | None, date | None]
    policies: tuple[tuple[str, int | None], ...]
    comparison: Comparison
    revenue: Comparison | None
    segments: list[dict[str, Any]]
    operational: dict[str, dict[str, Any]]
    truth: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        body = self.comparison.to_json()
        versions = dict(self.policies)
        revenue = {p["policy"]: p for p in self.revenue.to_json()["policies"]} if self.revenue else {}
        n = self.comparison.n_leads
        for row in body["policies"]:
            name = row["policy"]
            row["version"] = versions.get(name)
            row["expected_conversions"] = _totals(row["estimates"], n)
            if name in revenue:
                row["revenue_per_lead"] = revenue[name]["estimates"]
                row["expected_revenue"] = _totals(revenue[name]["estimates"], n)
                row["revenue_diff_vs_first"] = revenue[name]["diff_vs_first"]
            row["operational"] = self.operational.get(name, {})
            if name in self.truth:
                row["truth"] = self.truth[name]
        return {
            "run_id": self.run_id,
            "created_at": self.created_at.isoformat(),
            "window": [d.isoformat() if d else None for d in self.window],
            **body,
            "segments": self.segments,
            "notes": list(self.notes),
        }

    def lines(self) -> list[str]:
        out = [f"evaluation {self.run_id}: {self.comparison.n_leads:,} matured leads"]
        grouped: dict[str, list[str]] = {}
        for name, reason in self.comparison.unavailable.items():
            grouped.setdefault(reason, []).append(name)
        for reason, names in grouped.items():
            out.append(f"  not available ({', '.join(names)}): {reason}")
        first = self.comparison.policies[0].policy
        for p in self.comparison.policies:
            out.append(f"{p.policy}:")
            for name, e in p.estimates.items():
                if e.interval is None:
                    shown = "see above" if name in self.comparison.unavailable else e.reason
                    out.append(f"  {name:<10} not valid ({shown})")
                    continue
                i = e.interval
                line = f"  {name:<10} {i.value:7.2%}  [{i.ci_low:7.2%}, {i.ci_high:7.2%}]"
                d = p.diff_vs_first.get(name)
                if d is not None and d.interval is not None:
                    line += (
                        f"   vs {first}: {d.interval.value:+.2%} [{d.interval.ci_low:+.2%}, {d.interval.ci_high:+.2%}]"
                    )
                out.append(line)
            diag = next(iter(p.estimates.values())).diagnostics
            if diag.effective_sample_size is not None:
                out.append(
                    f"  diagnostics: ESS {diag.effective_sample_size:,.0f}, mean weight {diag.mean_weight:.3f},"
                    f" max weight {diag.max_weight:.1f}, matched {diag.share_matched:.1%},"
                    f" support deficit {diag.support_deficit or 0:.2%}"
                )
            if p.policy in self.truth:
                t = self.truth[p.policy]
                out.append(f"  truth: no-interference {t['no_interference']:.2%}, deployed {t['deployed']:.2%}")
        out += [f"note: {n}" for n in self.notes]
        out += ["assumptions:", *[f"  - {a}" for a in self.comparison.assumptions]]
        return out


def _totals(estimates: dict[str, dict[str, Any]], n: int) -> dict[str, dict[str, float | None]]:
    """Per-lead values (and interval ends) times the number of leads: expected totals."""
    ends = ("value", "ci_low", "ci_high")
    return {k: {key: (None if e[key] is None else e[key] * n) for key in ends} for k, e in estimates.items()}


def load_logged_history(
    settings: Settings, window: tuple[date | None, date | None], company: SimulatedCompany | None
) -> tuple[pl.DataFrame, pl.DataFrame, datetime | None]:
    """Leads of the window (time order) and, per lead, the decision that routed it and its outcome.

    Returns:
        (leads, labelled, as_of): ``labelled`` has ``lead_id``, ``team``, ``rep_id``,
        ``propensity``, ``converted_at``, ``revenue`` for every lead with a logged decision.
    """
    leads = load_leads(settings, window)
    if company is not None:
        ids = leads["lead_id"].implode()
        leads = company.leads.filter(pl.col("lead_id").is_in(ids)).sort("created_at", maintain_order=True)
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        labelled = query_frame(
            con,
            """WITH first_decision AS (
                   SELECT lead_id, team, rep_id, propensity FROM decisions
                   QUALIFY row_number() OVER (PARTITION BY lead_id ORDER BY decided_at, decision_id) = 1),
               won AS (
                   SELECT lead_id, min(occurred_at) AS converted_at, max(value) AS revenue
                   FROM outcomes WHERE event = 'converted' GROUP BY lead_id)
               SELECT d.*, w.converted_at, w.revenue FROM first_decision d LEFT JOIN won w USING (lead_id)""",
        )
        as_of = con.execute(
            "SELECT greatest((SELECT max(created_at) FROM leads), (SELECT max(occurred_at) FROM outcomes))"
        ).fetchall()[0][0]
    return leads, labelled, as_of


def evaluate(
    settings: Settings,
    policies: Sequence[str],
    *,
    window: tuple[date | None, date | None] = (None, None),
    estimators: Sequence[str] = ESTIMATOR_NAMES,
    folds: int = 5,
    seed: int = 0,
    revenue: bool = True,
    store: bool = True,
    progress: Callable[[str], None] | None = None,
) -> EvaluationRun:
    """Compare ``policies`` (files, names or name@version) on the workspace's matured history."""
    say = progress or (lambda _m: None)
    if len(policies) < 1:
        raise ValueError("--policy: name at least one policy (the first is the baseline of the differences)")
    unknown = [e for e in estimators if e not in ESTIMATOR_NAMES]
    if unknown:
        raise ValueError(f"--estimator: unknown '{unknown[0]}' (known: {', '.join(ESTIMATOR_NAMES)})")
    sources = [resolve(settings, p) for p in policies]
    names = [s.spec.name + (f"@{s.version}" if s.version else "") for s in sources]
    if len(set(names)) < len(names):
        raise ValueError("--policy: the same policy version is named twice")
    config = simulation_config(Warehouse(settings.warehouse_path))
    company = simulate_company(config) if config is not None else None
    leads, labelled, as_of = load_logged_history(settings, window, company)
    if leads.height == 0 or as_of is None:
        raise ValueError("no leads in the warehouse for that window: nothing to evaluate")
    window_days = load_config(settings).scoring.conversion_window_days
    cutoff = as_of - timedelta(days=window_days)
    frame = leads.join(labelled, on="lead_id", how="left", maintain_order="left")
    decided = frame["team"].is_not_null()
    matured_mask = np.asarray((decided & (frame["created_at"] <= cutoff)).to_numpy(), dtype=bool)
    n_pending = int(decided.sum()) - int(matured_mask.sum())
    if not matured_mask.any():
        raise ValueError(f"no matured leads with a logged decision (outcomes count {window_days} days after creation)")
    roster = load_roster(settings)
    scorer = TruthScorer(company, leads) if company is not None else None
    fit = TruthFit(company) if company is not None else None
    replays: dict[str, pl.DataFrame] = {}
    operational: dict[str, dict[str, Any]] = {}
    for name, source in zip(names, sources, strict=True):
        say(f"replaying {leads.height:,} leads through {name} (capacity enforced) …")
        bound = Policy(source.spec, roster, version=source.version, scorer=scorer, fit=fit)
        decisions = bound.replay(leads, rng=np.random.default_rng(seed)).decisions
        operational[name] = operational_metrics(decisions, roster).to_json()
        replays[name] = leads.select("lead_id").join(decisions, on="lead_id", how="left", maintain_order="left")
    keep = pl.Series(matured_mask)
    matured = frame.filter(keep)
    logged = matured.select("team", "rep_id")
    targets = {name: d.filter(keep).select("team", "rep_id") for name, d in replays.items()}
    propensity, notes = _propensities(matured)
    unsupported = _support(company, matured, logged, targets)
    features, categorical, numeric = lead_features(matured)
    model = RewardModel(
        categorical=(*categorical, "team", "rep_id"), numeric=numeric, max_train_rows=MAX_TRAIN_ROWS, random_state=seed
    )
    # A conversion after the window is not a conversion (the label means "within the window").
    within = pl.col("converted_at") <= pl.col("created_at") + pl.duration(days=window_days)
    converted = matured.select(pl.col("converted_at").is_not_null() & within).to_series().fill_null(False).to_numpy()
    say(f"estimating on {matured.height:,} matured leads ({folds}-fold cross-fitted reward model) …")

    def estimate(reward: np.ndarray) -> Comparison:
        log, data = offline_inputs(
            features,
            logged,
            reward,
            targets,
            propensity=propensity,
            model=model,
            unsupported=unsupported,
            n_excluded_not_matured=n_pending,
            folds=folds,
            seed=seed,
        )
        return compare(log, data, estimators)

    comparison = estimate(np.asarray(converted, dtype=np.float64))
    revenue_cmp = None
    if revenue and "revenue" in matured.columns:
        say("estimating revenue per lead …")
        revenue_cmp = estimate(np.where(converted, matured["revenue"].fill_null(0.0).to_numpy(), 0.0))
    segments = _segments(comparison, matured, scorer, "dr" if "dr" in comparison.available else "dm")
    truth = _truth(company, leads, frame, matured_mask, replays) if company is not None else {}
    if truth:
        notes.append(TRUTH_NOTE)
    matched = [e.diagnostics.share_matched for p in comparison.policies for e in p.estimates.values()]
    sparse = [m for m in matched if m is not None]
    if sparse and min(sparse) < 0.5:
        notes.append(SUPPORT_NOTE.format(share=min(sparse)))
    run = EvaluationRun(
        run_id=f"E{datetime.now().strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}",
        created_at=datetime.now().astimezone(),
        window=window,
        policies=tuple((n, s.version) for n, s in zip(names, sources, strict=True)),
        comparison=comparison,
        revenue=revenue_cmp,
        segments=segments,
        operational=operational,
        truth=truth,
        notes=tuple(notes),
    )
    if store:
        save_run(settings, run, folds=folds, seed=seed)
    return run


def _support(
    company: SimulatedCompany | None, matured: pl.DataFrame, logged: pl.DataFrame, targets: dict[str, pl.DataFrame]
) -> dict[str, np.ndarray]:
    """Per lead, 1.0 where the log could not have chosen the target's destination: exact from the
    logging policy on a simulated workspace, else destinations the log never used."""
    if company is None:
        return {n: unsupported_destinations(logged, t) for n, t in targets.items()}
    leads = company.leads.join(matured.select("lead_id"), on="lead_id", how="semi", maintain_order="left")
    out = {}
    for name, t in targets.items():
        decisions = pl.concat([matured.select("lead_id"), t], how="horizontal")
        aligned = leads.select("lead_id").join(decisions, on="lead_id", how="left", maintain_order="left")
        probability = company.logging_policy.probability_of(leads, aligned)
        order = (
            matured.select("lead_id")
            .join(leads.select("lead_id").with_row_index("_at"), on="lead_id", how="left", maintain_order="left")["_at"]
            .to_numpy()
        )
        out[name] = np.asarray(probability[order] <= 0, dtype=np.float64)
    return out


def _propensities(matured: pl.DataFrame) -> tuple[np.ndarray | None, list[str]]:
    missing = int(matured["propensity"].is_null().sum())
    if missing == 0:
        return matured["propensity"].to_numpy().astype(np.float64), []
    share = missing / max(matured.height, 1)
    return None, [
        f"{missing:,} of {matured.height:,} logged decisions ({share:.0%}) have no propensity: the log does not"
        " say how likely each routing was, so only the direct method (dm) is available — its value rests"
        " entirely on the reward model"
    ]


def _segments(
    comparison: Comparison, matured: pl.DataFrame, scorer: TruthScorer | None, estimator: str
) -> list[dict[str, Any]]:
    score = pl.Series(scorer.score(matured)) if scorer is not None else matured["score"].cast(pl.Float64, strict=False)
    tier = pl.Series(np.digitize(score.fill_null(-1.0).to_numpy(), SCORE_TIERS)).replace_strict(
        {0: "<20", 1: "20-50", 2: "50-80", 3: ">=80"}, return_dtype=pl.String
    )
    tier = pl.select(pl.when(score.is_null()).then(None).otherwise(tier)).to_series()
    segments = {
        "team": matured["team"],
        "region": matured["region"] if "region" in matured.columns else pl.Series([None] * matured.height),
        "score_tier": tier,
        "source": matured["source"] if "source" in matured.columns else pl.Series([None] * matured.height),
    }
    if comparison.logged is None:
        return []
    rows = by_segment(comparison.logged, comparison.targets, segments, estimator)
    return [r.to_json() for r in rows]


def _truth(
    company: SimulatedCompany,
    leads: pl.DataFrame,
    frame: pl.DataFrame,
    matured_mask: np.ndarray,
    replays: dict[str, pl.DataFrame],
) -> dict[str, dict[str, float]]:
    logged = frame.select("lead_id", "team", "rep_id")
    out = {}
    for name, d in replays.items():
        ni = company.truth.counterfactual_probability(leads, d, logged)[matured_mask].mean()
        deployed = company.truth.conversion_probability(leads, d)[matured_mask].mean()
        out[name] = {"no_interference": float(ni), "deployed": float(deployed)}
    return out


def save_run(settings: Settings, run: EvaluationRun, *, folds: int, seed: int) -> None:
    """Store the run (inputs, versions, the whole result) in ``evaluation_runs``."""
    inputs = {"window": run.to_json()["window"], "folds": folds, "seed": seed}
    with Warehouse(settings.warehouse_path).connect() as con:
        con.execute(
            "INSERT INTO evaluation_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run.run_id,
                run.created_at,
                _user(),
                json.dumps([{"policy": n, "version": v} for n, v in run.policies]),
                json.dumps(list(run.comparison.estimators)),
                json.dumps(inputs),
                run.comparison.n_leads,
                json.dumps(run.to_json(), default=_plain),
            ],
        )


def list_runs(settings: Settings) -> pl.DataFrame:
    """Stored runs, newest first: ``run_id, created_at, created_by, policies, estimators, n_leads``."""
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        return query_frame(
            con,
            """SELECT run_id, created_at, created_by, CAST(policies AS VARCHAR) AS policies,
                      CAST(estimators AS VARCHAR) AS estimators, n_leads
               FROM evaluation_runs ORDER BY created_at DESC, run_id DESC""",
        )


def load_run(settings: Settings, run_id: str) -> dict[str, Any]:
    """The stored result of one run (the ``evaluate --json`` object); raises if unknown."""
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        rows = con.execute("SELECT CAST(result AS VARCHAR) FROM evaluation_runs WHERE run_id = ?", [run_id]).fetchall()
    if not rows:
        raise LookupError(f"no evaluation run '{run_id}' (leadroute evaluate --list shows them)")
    result: dict[str, Any] = json.loads(rows[0][0])
    return result


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return str(value)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return None
