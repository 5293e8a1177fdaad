"""The Rules page's instant preview: a policy's impact on history against the live policy.

``preview(settings, candidate)`` replays the candidate over every lead of the workspace's history
in time order (capacity and absences enforced, as ``leadroute replay``), and reports beside the
baseline (the live policy, else the one given): the destination mix, expected conversions by the
direct method with its 95% interval and the paired difference, load and capacity breaches per
rep, and fairness per sales team.

The expensive parts are computed once per workspace state and kept between calls, so moving a
score slider only pays for the replay and a few model predictions:

- the history (leads in time order with their 0–100 score, the roster, the matured leads with
  their logged destination and outcome) — reloaded when a fingerprint of the data changes;
- the direct method's reward model, cross-fitted exactly as ``leadroute evaluate`` does (same
  features, folds, seed and subsample): the expected conversions shown equal ``evaluate``'s
  ``dm`` estimate for the same policy;
- each (lead, destination) prediction, computed the first time a policy sends that lead there;
- the replay of each distinct policy content (the baseline is replayed once).
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml
from sklearn.base import clone

from models.ope import Estimate, LoggedData, RewardModel, TargetData, make_estimator, paired_difference
from models.ope.reward import lead_features
from models.policy import FitScorer, OperationalMetrics, Policy, Roster, operational_metrics
from models.simulation import simulate_company
from pipelines.config import load_config
from pipelines.demo import simulation_config
from pipelines.deployments import arms_of, live_deployment
from pipelines.evaluate import MAX_TRAIN_ROWS, load_logged_history
from pipelines.policies import PolicySource, load_roster, resolve
from pipelines.replay import TruthFit, TruthScorer
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse

Window = tuple[date | None, date | None]
Progress = Callable[[str], None]

MAX_REPLAYS = 16
"""Replays of distinct policy contents kept per history (the baseline plus recent edits)."""
_FINGERPRINT_SQL = """SELECT
    (SELECT count(*) FROM leads), (SELECT max(updated_at) FROM leads),
    (SELECT count(*) FROM decisions), (SELECT max(updated_at) FROM decisions),
    (SELECT count(*) FROM outcomes), (SELECT max(updated_at) FROM outcomes),
    (SELECT count(*) FROM reps), (SELECT max(updated_at) FROM reps),
    (SELECT count(*) FROM teams), (SELECT count(*) FROM rep_absences),
    (SELECT count(*) FROM accounts), (SELECT count(*) FROM lead_quality),
    (SELECT max(value) FROM workspace_meta WHERE key = 'simulation')"""


class NothingToPreviewError(ValueError):
    """The workspace has no leads to replay."""


def source_from_raw(raw: dict[str, Any], origin: str = "edited") -> PolicySource:
    """A policy source from an edited YAML mapping (parsed; raises ``PolicySpecError``)."""
    from pipelines.policies import parse_text

    return parse_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), origin)


@dataclass(frozen=True)
class Cutoff:
    """A score threshold of a policy and the rules that use it (moving it moves every use)."""

    value: float
    rules: tuple[str, ...]


_SCORE_OPS = ("<", "<=", ">", ">=", "between")


def _score_leaves(node: Any) -> list[dict[str, Any]]:
    """Every ``{field: score, op: <|<=|>|>=|between}`` leaf of a raw condition (nested too)."""
    if isinstance(node, list):
        return [leaf for item in node for leaf in _score_leaves(item)]
    if not isinstance(node, dict):
        return []
    if node.get("field") == "score" and node.get("op") in _SCORE_OPS:
        return [node]
    return [leaf for key in ("all", "any", "not") if key in node for leaf in _score_leaves(node[key])]


def _numbers(value: Any) -> list[float]:
    items = value if isinstance(value, list | tuple) else [value]
    return [float(v) for v in items if isinstance(v, int | float) and not isinstance(v, bool)]


def score_cutoffs(raw: dict[str, Any]) -> list[Cutoff]:
    """The distinct score thresholds in a raw policy, highest first, with the rules using each
    (the seed policy: 80 for hot and warm, 50 for warm and cold)."""
    users: dict[float, list[str]] = {}
    for i, rule in enumerate(raw.get("rules") or []):
        if not isinstance(rule, dict):
            continue
        name = str(rule.get("name") or f"rule {i + 1}")
        for leaf in _score_leaves(rule.get("when")):
            for value in _numbers(leaf.get("value")):
                names = users.setdefault(value, [])
                if name not in names:
                    names.append(name)
    return [Cutoff(v, tuple(users[v])) for v in sorted(users, reverse=True)]


def with_cutoffs(raw: dict[str, Any], moved: dict[float, float]) -> dict[str, Any]:
    """A copy of ``raw`` with each score threshold ``old`` replaced by ``moved[old]`` everywhere."""
    out = copy.deepcopy(raw)
    for rule in out.get("rules") or []:
        if not isinstance(rule, dict):
            continue
        for leaf in _score_leaves(rule.get("when")):
            value = leaf.get("value")
            if isinstance(value, list):
                leaf["value"] = [_moved(v, moved) for v in value]
            else:
                leaf["value"] = _moved(value, moved)
    return out


def _moved(value: Any, moved: dict[float, float]) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value) in moved:
        new = moved[float(value)]
        return int(new) if float(new).is_integer() else new
    return value


def with_destination(raw: dict[str, Any], rule: int, **changes: Any) -> dict[str, Any]:
    """A copy of ``raw`` whose rule ``rule`` sends leads elsewhere: ``team`` (None: every sales
    team), ``method``, ``respect_capacity``, ``notify``; other keys of ``then`` are kept."""
    out = copy.deepcopy(raw)
    then = dict(out["rules"][rule].get("then") or {})
    for key, value in changes.items():
        if key == "team" and value is None:
            then.pop("team", None)
        else:
            then[key] = value
    out["rules"][rule]["then"] = then
    return out


def live_policy_ref(settings: Settings) -> str | None:
    """``name@version`` of the live policy (the arm with the largest share of what is live; during
    a canary, the baseline), None if nothing is live."""
    row = live_deployment(settings)
    if row is None:
        return None
    arms = [a for a in arms_of(row[1]) if isinstance(a, dict) and a.get("policy") and a.get("version") is not None]
    if not arms:
        return None
    top = max(arms, key=lambda a: float(a.get("share") or 0.0))
    return f"{top['policy']}@{int(top['version'])}"


@dataclass
class _History:
    """One workspace state's history, scored, with the lazily fitted reward models."""

    leads: pl.DataFrame
    roster: Roster
    fit: FitScorer | None
    score_source: str
    matured_rows: np.ndarray  # positions in ``leads`` of the matured leads with a logged decision
    features: pl.DataFrame  # reward-model features of the matured leads
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    logged: pl.DataFrame  # team, rep_id logged for the matured leads
    reward: np.ndarray
    propensity: np.ndarray | None
    n_pending: int
    folds: int
    seed: int
    fold: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    models: list[RewardModel] | None = None
    q: dict[tuple[str, str | None], np.ndarray] = field(default_factory=dict)
    replays: OrderedDict[str, tuple[pl.DataFrame, OperationalMetrics]] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class PolicyImpact:
    """One policy replayed over the history."""

    name: str
    version: int | None
    decisions: pl.DataFrame
    metrics: OperationalMetrics
    dm: Estimate | None  # per-lead conversion probability on the matured leads (direct method)

    @property
    def label(self) -> str:
        return self.name + (f"@{self.version}" if self.version else " (edited)")


@dataclass(frozen=True)
class Preview:
    """A candidate against the baseline on the same history.

    ``expected_conversions`` / ``difference`` are totals over the ``n_matured`` matured leads:
    ``(value, ci_low, ci_high)`` of the direct method's estimate times ``n_matured``.
    """

    candidate: PolicyImpact
    baseline: PolicyImpact
    baseline_is_live: bool
    n_leads: int
    n_matured: int
    n_pending: int
    score_source: str
    dm_reason: str | None
    difference: Estimate | None
    seconds: float
    cold: bool

    def expected_conversions(self, which: str = "candidate") -> tuple[float, float, float] | None:
        impact = self.candidate if which == "candidate" else self.baseline
        return _total(impact.dm, self.n_matured)

    def difference_total(self) -> tuple[float, float, float] | None:
        return _total(self.difference, self.n_matured)

    def mix(self) -> pl.DataFrame:
        """``team, baseline, candidate, change`` shares of leads (every team either sends leads to)."""
        base, cand = self.baseline.metrics.share, self.candidate.metrics.share
        teams = sorted(set(base) | set(cand), key=lambda t: (-cand.get(t, 0.0), t))
        return pl.DataFrame(
            {
                "team": teams,
                "baseline": [base.get(t, 0.0) for t in teams],
                "candidate": [cand.get(t, 0.0) for t in teams],
                "change": [cand.get(t, 0.0) - base.get(t, 0.0) for t in teams],
            },
            schema={"team": pl.String, "baseline": pl.Float64, "candidate": pl.Float64, "change": pl.Float64},
        )

    def rep_load(self) -> pl.DataFrame:
        """Per rep: leads (baseline and candidate), active days, busiest day, capacity, days over
        capacity and leads beyond it under the candidate; busiest reps first."""
        cand = _per_rep(self.candidate.metrics.load)
        base = _per_rep(self.baseline.metrics.load).select("rep_id", pl.col("leads").alias("baseline_leads"))
        return (
            cand.join(base, on="rep_id", how="full", coalesce=True)
            .with_columns(pl.col("leads", "baseline_leads", "days_over", "leads_over").fill_null(0))
            .select(
                "rep_id",
                "team",
                "baseline_leads",
                "leads",
                "busiest_day",
                "capacity",
                "days_over",
                "leads_over",
            )
            .sort(["leads", "rep_id"], descending=[True, False])
        )

    def fairness(self) -> pl.DataFrame:
        """Per sales team: reps, leads, coefficient of variation and Gini (baseline and candidate)."""
        base = {f.team: f for f in self.baseline.metrics.fairness}
        rows = []
        for f in self.candidate.metrics.fairness:
            b = base.get(f.team)
            rows.append(
                {
                    "team": f.team,
                    "reps": f.reps,
                    "baseline_leads": b.assigned if b else 0,
                    "leads": f.assigned,
                    "baseline_cv": b.cv if b else 0.0,
                    "cv": f.cv,
                    "baseline_gini": b.gini if b else 0.0,
                    "gini": f.gini,
                }
            )
        return pl.DataFrame(rows)

    def to_json(self) -> dict[str, Any]:
        def side(impact: PolicyImpact) -> dict[str, Any]:
            total = _total(impact.dm, self.n_matured)
            return {
                "policy": impact.name,
                "version": impact.version,
                "metrics": impact.metrics.to_json(),
                "dm": impact.dm.to_json() if impact.dm else None,
                "expected_conversions": _ends(total),
            }

        diff = self.difference_total()
        return {
            "candidate": side(self.candidate),
            "baseline": side(self.baseline),
            "baseline_is_live": self.baseline_is_live,
            "n_leads": self.n_leads,
            "n_matured": self.n_matured,
            "n_pending": self.n_pending,
            "score_source": self.score_source,
            "dm_reason": self.dm_reason,
            "difference": _ends(diff),
            "seconds": self.seconds,
        }


def _ends(total: tuple[float, float, float] | None) -> dict[str, float] | None:
    return None if total is None else dict(zip(("value", "ci_low", "ci_high"), total, strict=True))


def _total(estimate: Estimate | None, n: int) -> tuple[float, float, float] | None:
    if estimate is None or estimate.interval is None:
        return None
    i = estimate.interval
    return (i.value * n, i.ci_low * n, i.ci_high * n)


def _per_rep(load: pl.DataFrame) -> pl.DataFrame:
    return load.group_by("rep_id").agg(
        pl.col("team").first(),
        pl.col("load").sum().alias("leads"),
        pl.col("load").max().alias("busiest_day"),
        pl.col("capacity").first(),
        (pl.col("over") > 0).sum().cast(pl.Int64).alias("days_over"),
        pl.col("over").sum().cast(pl.Int64).alias("leads_over"),
    )


_CACHE: dict[tuple[Any, ...], _History] = {}
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget every cached history (the next preview is cold)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _fingerprint(settings: Settings) -> tuple[Any, ...]:
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        row = con.execute(_FINGERPRINT_SQL).fetchall()[0]
    return tuple(str(v) for v in row)


def _history(settings: Settings, window: Window, folds: int, seed: int, say: Progress) -> tuple[_History, bool]:
    if not settings.warehouse_path.exists():
        raise NothingToPreviewError("no workspace yet: run `leadroute demo` or import leads first")
    window_days = load_config(settings).scoring.conversion_window_days
    key = (str(Path(settings.warehouse_path).resolve()), window, folds, seed, window_days, _fingerprint(settings))
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            return found, False
        for stale in [k for k in _CACHE if k[0] == key[0]]:
            del _CACHE[stale]  # one state per workspace: older states are gone for good
        say("loading the history …")
        history = _load_history(settings, window, window_days, folds, seed)
        _CACHE[key] = history
        return history, True


def _load_history(settings: Settings, window: Window, window_days: int, folds: int, seed: int) -> _History:
    """The same inputs ``pipelines.evaluate.evaluate`` forms, scored once."""
    config = simulation_config(Warehouse(settings.warehouse_path))
    company = simulate_company(config) if config is not None else None
    leads, labelled, as_of = load_logged_history(settings, window, company)
    if leads.height == 0 or as_of is None:
        raise NothingToPreviewError("no leads in the warehouse: run `leadroute demo` or import leads first")
    roster = load_roster(settings)
    unscored = leads  # the reward model reads the leads as evaluate does (their own score column)
    fit: FitScorer | None = None
    source = "score column"
    if company is not None:
        leads = leads.with_columns(pl.Series("score", TruthScorer(company, leads).score(leads), dtype=pl.Float64))
        fit, source = TruthFit(company), "ground truth"
    elif "score" in leads.columns:
        leads = leads.with_columns(pl.col("score").cast(pl.Float64, strict=False))
    cutoff = as_of - timedelta(days=window_days)
    frame = leads.select("lead_id", "created_at").join(labelled, on="lead_id", how="left", maintain_order="left")
    decided = frame["team"].is_not_null()
    mask = np.asarray((decided & (frame["created_at"] <= cutoff)).to_numpy(), dtype=bool)
    rows = np.flatnonzero(mask)
    matured = unscored[rows]
    labels = frame[rows]
    within = pl.col("converted_at") <= pl.col("created_at") + pl.duration(days=window_days)
    converted = labels.select(pl.col("converted_at").is_not_null() & within).to_series().fill_null(False).to_numpy()
    propensity = None
    if rows.size and int(labels["propensity"].is_null().sum()) == 0:
        propensity = labels["propensity"].to_numpy().astype(np.float64)
    features, categorical, numeric = lead_features(matured)
    return _History(
        leads=leads,
        roster=roster,
        fit=fit,
        score_source=source,
        matured_rows=rows,
        features=features.drop([c for c in ("team", "rep_id") if c in features.columns]),
        categorical=categorical,
        numeric=numeric,
        logged=labels.select(pl.col("team").cast(pl.String), pl.col("rep_id").cast(pl.String)),
        reward=np.asarray(converted, dtype=np.float64),
        propensity=propensity,
        n_pending=int(decided.sum()) - int(rows.size),
        folds=folds,
        seed=seed,
    )


def _fit_models(history: _History, say: Progress) -> list[RewardModel]:
    """The cross-fitted reward models (one per fold), as ``models.ope.cross_fit`` fits them."""
    if history.models is not None:
        return history.models
    n = history.matured_rows.size
    history.fold = np.random.default_rng(history.seed).permutation(np.arange(n) % history.folds)
    model = RewardModel(
        categorical=(*history.categorical, "team", "rep_id"),
        numeric=history.numeric,
        max_train_rows=MAX_TRAIN_ROWS,
        random_state=history.seed,
    )
    fitted = []
    for k in range(history.folds):
        say(f"fitting the reward model of the direct method (fold {k + 1} of {history.folds}) …")
        train = np.flatnonzero(history.fold != k)
        frame = pl.concat([history.features[train], history.logged[train]], how="horizontal")
        fitted.append(clone(model).fit(frame, history.reward[train]))
    history.models = fitted
    return fitted


def _q_target(history: _History, targets: pl.DataFrame, say: Progress) -> np.ndarray:
    """Cross-fitted predictions at each matured lead's target destination (cached per pair)."""
    models = _fit_models(history, say)
    dest = targets.select(pl.col("team").cast(pl.String), pl.col("rep_id").cast(pl.String)).with_row_index("_row")
    groups = dest.group_by("team", "rep_id").agg(pl.col("_row"))
    out = np.empty(dest.height)
    todo_rows: list[np.ndarray] = []
    todo_keys: list[tuple[str, str | None]] = []
    for team, rep, rows in groups.iter_rows():
        where = np.asarray(rows, dtype=np.int64)
        key = (str(team), None if rep is None else str(rep))
        vec = history.q.get(key)
        if vec is None:
            vec = history.q[key] = np.full(dest.height, np.nan)
        missing = where[np.isnan(vec[where])]
        if missing.size:
            todo_rows.append(missing)
            todo_keys.append(key)
    if todo_rows:
        rows_all = np.concatenate(todo_rows)
        teams = np.concatenate([np.full(r.size, k[0], dtype=object) for r, k in zip(todo_rows, todo_keys, strict=True)])
        reps = np.concatenate([np.full(r.size, k[1], dtype=object) for r, k in zip(todo_rows, todo_keys, strict=True)])
        which = np.concatenate([np.full(r.size, i) for i, r in enumerate(todo_rows)])
        values = np.empty(rows_all.size)
        for k, model in enumerate(models):
            pick = np.flatnonzero(history.fold[rows_all] == k)
            if pick.size == 0:
                continue
            frame = pl.concat(
                [
                    history.features[rows_all[pick]],
                    pl.DataFrame(
                        {"team": teams[pick].tolist(), "rep_id": reps[pick].tolist()},
                        schema={"team": pl.String, "rep_id": pl.String},
                    ),
                ],
                how="horizontal",
            )
            values[pick] = model.predict(frame)
        for i, key in enumerate(todo_keys):
            sel = which == i
            history.q[key][rows_all[sel]] = values[sel]
    for team, rep, rows in groups.iter_rows():
        where = np.asarray(rows, dtype=np.int64)
        out[where] = history.q[(str(team), None if rep is None else str(rep))][where]
    return out


def _impact(history: _History, source: PolicySource, say: Progress) -> PolicyImpact:
    key = source.content_hash
    cached = history.replays.get(key)
    if cached is None:
        bound = Policy(source.spec, history.roster, version=source.version, fit=history.fit)
        decisions = bound.replay(history.leads, rng=np.random.default_rng(history.seed)).decisions
        aligned = history.leads.select("lead_id").join(decisions, on="lead_id", how="left", maintain_order="left")
        cached = (aligned, operational_metrics(decisions, history.roster))
        history.replays[key] = cached
        while len(history.replays) > MAX_REPLAYS:
            history.replays.popitem(last=False)
    else:
        history.replays.move_to_end(key)
    aligned, metrics = cached
    dm = None
    if history.matured_rows.size:
        targets = aligned[history.matured_rows].select("team", "rep_id")
        same = (
            (targets["team"] == history.logged["team"]).fill_null(False)
            & targets["rep_id"].eq_missing(history.logged["rep_id"])
        ).to_numpy()
        target = TargetData(_label(source), np.asarray(same, dtype=np.float64), _q_target(history, targets, say), None)
        logged = LoggedData(history.reward, history.propensity, None, history.n_pending)
        dm = make_estimator("dm").estimate(logged, target)
    return PolicyImpact(source.spec.name, source.version, aligned, metrics, dm)


def _label(source: PolicySource) -> str:
    return source.spec.name + (f"@{source.version}" if source.version else "")


def preview(
    settings: Settings,
    candidate: PolicySource | str,
    baseline: PolicySource | str | None = None,
    *,
    window: Window = (None, None),
    folds: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
) -> Preview:
    """The candidate's impact on history against ``baseline`` (default: the live policy, else the
    candidate's latest registered version, else the candidate itself).

    Raises:
        NothingToPreviewError: no workspace or no leads.
        PolicyNotFoundError: a reference names no policy.
        ValueError: the policy cannot be replayed (e.g. ``best_fit`` without a fit model).
    """
    say = progress or (lambda _m: None)
    started = time.perf_counter()
    source = _as_source(settings, candidate)
    live = live_policy_ref(settings) if baseline is None else None
    if baseline is None:
        baseline = live or _registered_or_self(settings, source)
    base = resolve(settings, baseline) if isinstance(baseline, str) else baseline
    history, cold = _history(settings, window, folds, seed, say)
    with history.lock:
        if history.models is None and history.matured_rows.size:
            _fit_models(history, say)
        say("replaying the history …")
        base_impact = _impact(history, base, say)
        cand_impact = _impact(history, source, say)
    difference = None
    if base_impact.dm is not None and cand_impact.dm is not None:
        difference = paired_difference(base_impact.dm, cand_impact.dm)
    reason = None
    if history.matured_rows.size == 0:
        reason = "no matured leads with a logged decision: the direct method has nothing to learn from yet"
    return Preview(
        candidate=cand_impact,
        baseline=base_impact,
        baseline_is_live=live is not None,
        n_leads=history.leads.height,
        n_matured=int(history.matured_rows.size),
        n_pending=history.n_pending,
        score_source=history.score_source,
        dm_reason=reason,
        difference=difference,
        seconds=time.perf_counter() - started,
        cold=cold,
    )


def _as_source(settings: Settings, candidate: PolicySource | str) -> PolicySource:
    return candidate if isinstance(candidate, PolicySource) else resolve(settings, candidate)


def _registered_or_self(settings: Settings, source: PolicySource) -> PolicySource | str:
    if source.version is not None:
        return source
    try:
        return resolve(settings, source.spec.name)
    except LookupError:
        return source
