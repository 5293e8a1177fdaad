"""Online A/B experiments run by the endpoint: start, report, stop.

An experiment is a row in ``experiments`` (its config: arms with policy versions and shares, the
primary metric — conversion within N days of the decision — the guardrails, α, the salt and the
offline prediction made before launch) and a live deployment whose arms carry the experiment's
name, so the endpoint splits traffic by a salted hash of the lead id (sticky, stateless) and logs
the arm and its propensity with every decision.

:func:`report` loads the endpoint's logs into the warehouse, takes each lead's first decision in
the experiment, counts only *matured* leads (decided at least N days before the report's as-of
time) for the metric, and runs the statistics engine (:mod:`models.experiments`): the lift with
its fixed-horizon and always-valid (sequential) intervals, regression adjustment on the lead
score, the revenue per lead, Holm over arms × metrics, sample-ratio mismatch overall and per
source, the guardrails of :mod:`models.rollout`, and the confidence sequence day by day.
:func:`stop` records the verdict next to the offline prediction and deploys the winner.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from models.experiments import (
    ArmData,
    Comparison,
    SrmResult,
    adjust_p_values,
    compare,
    interference_risk,
    srm_check,
)
from models.rollout import DEFAULT_GUARDRAILS, check_guardrails
from pipelines.deployments import deploy, live_row, registered, write_deployment
from pipelines.endpoint_logs import load_endpoint_logs
from pipelines.rollout import GUARDRAIL_DECISIONS, arm_outcomes
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse, query_frame, scalar

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_SEGMENT = 100  # per-segment SRM checks need this many leads in the segment


@dataclass(frozen=True)
class ExperimentReport:
    """Everything an analyst needs to call an experiment, as of one moment."""

    name: str
    status: str
    as_of: datetime
    config: dict[str, Any]
    arms: list[dict[str, Any]]
    srm: dict[str, Any]
    comparisons: list[dict[str, Any]]
    guardrails: list[dict[str, Any]]
    path: list[dict[str, Any]]
    verdict: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.name,
            "status": self.status,
            "as_of": self.as_of.isoformat(),
            "config": self.config,
            "arms": self.arms,
            "srm": self.srm,
            "comparisons": self.comparisons,
            "guardrails": self.guardrails,
            "path": self.path,
            "verdict": self.verdict,
            "notes": self.notes,
        }

    def lines(self) -> list[str]:
        horizon = self.config["metric"]["horizon_days"]
        out = [f"experiment {self.name} ({self.status}), as of {self.as_of:%Y-%m-%d %H:%M} UTC"]
        for arm in self.arms:
            rate = "–" if arm["conversion_rate"] is None else f"{arm['conversion_rate']:.2%}"
            out.append(
                f"  arm {arm['arm']}: {arm['policy']}@{arm['version']} share {arm['share']:.0%} —"
                f" {arm['decided']:,} decided, {arm['matured']:,} matured ({horizon} d), conversion {rate}"
            )
        out.append(f"  sample ratio: {self.srm['message']}")
        for c in self.comparisons:
            if c.get("comparison") is None:
                out.append(f"  {c['arm']} vs {c['control']}: {c['note']}")
                continue
            h = c["headline"]
            out.append(
                f"  {c['arm']} vs {c['control']} ({c['metric']}): {h['basis']} {h['lift']:+.4f}"
                f" [{h['ci_low']:+.4f}, {h['ci_high']:+.4f}], p {h['p_value']:.3g}, Holm {c['adjusted_p_value']:.3g}"
            )
            if c.get("predicted"):
                p = c["predicted"]
                out.append(
                    f"    predicted offline before launch: {p['value']:+.4f} [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}]"
                )
        for g in self.guardrails:
            out.extend(f"  guardrail {g['arm']} {x['name']}: {x['note']}" for x in g["checks"] if x["measurable"])
        out.append(f"  verdict: {self.verdict['message']}")
        out.extend(f"  note: {n}" for n in self.notes)
        return out


def _labels(n: int) -> list[str]:
    return list(string.ascii_uppercase[:n])


def _predict(settings: Settings, refs: Sequence[str]) -> dict[str, Any]:
    """The offline estimate made before launch: DR lift of each arm over the first (A)."""
    from pipelines.evaluate import evaluate

    try:
        run = evaluate(settings, refs, estimators=("dm", "dr"), store=False).to_json()
    except ValueError as exc:  # no matured history: launch without a prediction, and say so
        return {"available": False, "note": str(exc)}
    out: dict[str, Any] = {"available": True, "estimator": "dr", "run_at": run["created_at"], "lift": {}}
    for label, row in zip(_labels(len(refs)), run["policies"], strict=True):
        diff = (row.get("diff_vs_first") or {}).get("dr")
        if label != "A" and diff is not None:
            out["lift"][label] = {k: diff[k] for k in ("value", "ci_low", "ci_high")}
    return out


def start(
    settings: Settings,
    name: str,
    policies: Sequence[str],
    *,
    shares: Sequence[float] | None = None,
    horizon_days: int = 30,
    alpha: float = 0.05,
    guardrails: Mapping[str, float] | None = None,
    predict: bool = True,
    expected_leads: int | None = None,
    unit: str = "lead",
    salt: str | None = None,
    actor: str | None = None,
    reason: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Start an experiment between registered policy versions (the first is the control, arm A).

    ``unit="rep"`` also splits the sales reps between the arms (each rep serves one arm only, so
    arms do not share capacity; the report then clusters its intervals by rep). ``expected_leads``
    (matured leads over all arms at the planned end, e.g. from the power
    planner) tunes the always-valid boundary to be tightest there; default 5,000. ``salt``
    (default: random) keys the sticky hash that assigns leads to arms; a fixed salt
    makes the split reproducible.
    """
    if not NAME.match(name):
        raise ValueError(f"experiment name '{name}': letters, digits, '_', '-', '.' (up to 64, starting alnum)")
    if len(policies) < 2:
        raise ValueError("--policy: name at least two policy versions (the first is the control)")
    if len(policies) > len(string.ascii_uppercase):
        raise ValueError("--policy: at most 26 arms")
    shares = list(shares) if shares else [1.0 / len(policies)] * len(policies)
    if len(shares) != len(policies):
        raise ValueError(f"--share: {len(shares)} shares for {len(policies)} policies")
    if any(not np.isfinite(s) or s <= 0 for s in shares):
        raise ValueError("--share: every share must be positive")
    total = float(sum(shares))
    shares = [s / total for s in shares]
    if not 0 < alpha < 0.5:
        raise ValueError("--alpha: between 0 and 0.5")
    if unit not in ("lead", "rep"):
        raise ValueError("--unit: lead or rep")
    if expected_leads is not None and expected_leads < 10:
        raise ValueError("--expected-leads: at least 10")
    if not 1 <= horizon_days <= 365:
        raise ValueError("--horizon-days: between 1 and 365")
    tolerances = dict(DEFAULT_GUARDRAILS if guardrails is None else guardrails)
    unknown = [g for g in tolerances if g not in DEFAULT_GUARDRAILS]
    if unknown:
        raise ValueError(f"--guardrail: unknown '{unknown[0]}' (known: {', '.join(DEFAULT_GUARDRAILS)})")
    versions = [registered(settings, ref) for ref in policies]
    refs = [f"{n}@{v}" for n, v in versions]
    if predict and progress is not None:
        progress("estimating each arm's lift offline before launch …")
    prediction = _predict(settings, refs) if predict else {"available": False, "note": "not requested"}
    labels = _labels(len(refs))
    arms = [
        {"arm": label, "policy": n, "version": v, "share": s}
        for label, (n, v), s in zip(labels, versions, shares, strict=True)
    ]
    salt = salt or f"{name}-{secrets.token_hex(8)}"
    if unit == "rep":
        for arm, reps in zip(arms, split_reps(settings, salt, shares), strict=True):
            arm["reps"] = reps
    config = {
        "arms": arms,
        "metric": {"name": "conversion", "horizon_days": horizon_days},
        "alpha": alpha,
        "expected_leads": expected_leads,
        "guardrails": tolerances,
        "unit": unit,
        "randomisation": "lead (salted hash of lead_id)"
        if unit == "lead"
        else "rep (each sales rep serves one arm; leads split by a salted hash of lead_id)",
        "salt": salt,
        "prediction": prediction,
        "reason": reason,
    }
    with Warehouse(settings.warehouse_path).connect() as con:
        con.begin()
        if scalar(con, "SELECT count(*) FROM experiments WHERE experiment_id = ?", [name]):
            con.rollback()
            raise ValueError(f"experiment '{name}' exists already: pick another name")
        if scalar(con, "SELECT count(*) FROM experiments WHERE status = 'running'"):
            con.rollback()
            raise ValueError("another experiment is running: stop it first (leadroute experiment stop)")
        if scalar(con, "SELECT count(*) FROM rollouts WHERE status = 'running'"):
            con.rollback()
            raise ValueError("a canary rollout is running: let it finish or roll it back first")
        live = live_row(con)
        config["deployment_before"] = None if live is None else live["deployment_id"]
        con.execute(
            "INSERT INTO experiments (experiment_id, started_at, status, config) VALUES (?, now(), 'running', ?)",
            [name, json.dumps(config)],
        )
        deployment_id = write_deployment(
            con,
            {"experiment": name, "salt": salt, "arms": arms},
            kind="experiment",
            actor=actor,
            reason=reason or f"experiment {name}",
            model_version=None if live is None else live["model_version"],
        )
        con.commit()
    return {"experiment": name, "deployment_id": deployment_id, "arms": arms, "prediction": prediction}


def split_reps(settings: Settings, salt: str, shares: Sequence[float]) -> list[list[str]]:
    """The active sales reps split between the arms by a salted hash, in proportion to the shares."""
    from pipelines.policies import load_roster

    roster = load_roster(settings)
    sales = [
        str(r) for r, t, a in zip(roster.rep_id, roster.team, roster.active, strict=True)
        if a and roster.teams.get(str(t), "sales") == "sales"
    ]  # fmt: skip
    edges = np.cumsum(shares) / float(sum(shares))
    split: list[list[str]] = [[] for _ in shares]
    for rep in sorted(sales):
        digest = hashlib.sha256(f"{salt}:rep:{rep}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        split[min(int(np.searchsorted(edges, u, side="right")), len(shares) - 1)].append(rep)
    empty = [string.ascii_uppercase[i] for i, reps in enumerate(split) if not reps]
    if empty:
        raise ValueError(f"--unit rep: {len(sales)} active sales reps leave arm {empty[0]} without a rep")
    return split


def _record(settings: Settings, name: str) -> dict[str, Any]:
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        rows = query_frame(
            con,
            "SELECT experiment_id, started_at, stopped_at, status, CAST(config AS VARCHAR) AS config, winner,"
            " CAST(result AS VARCHAR) AS result FROM experiments WHERE experiment_id = ?",
            [name],
        ).to_dicts()
    if not rows:
        raise ValueError(f"no experiment '{name}' (leadroute experiment list shows them)")
    row = rows[0]
    row["config"] = json.loads(row["config"])
    row["result"] = json.loads(row["result"]) if row["result"] else None
    return row


def list_experiments(settings: Settings) -> pl.DataFrame:
    """``experiment, status, started_at, stopped_at, arms, winner``, newest first."""
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        frame = query_frame(
            con,
            "SELECT experiment_id AS experiment, status, started_at, stopped_at, CAST(config AS VARCHAR) AS config,"
            " winner FROM experiments ORDER BY started_at DESC",
        )
    if frame.height == 0:
        return frame
    arms = [
        ", ".join(f"{a['arm']}={a['policy']}@{a['version']} {a['share']:.0%}" for a in json.loads(c)["arms"])
        for c in frame["config"]
    ]
    return frame.with_columns(pl.Series("arms", arms)).drop("config")


_LEADS = """
WITH firsts AS (
    SELECT * FROM (
        SELECT d.*, row_number() OVER (PARTITION BY d.lead_id ORDER BY d.decided_at, d.decision_id) AS k
        FROM decisions d WHERE d.experiment = ?
    ) WHERE k = 1
),
events AS (
    SELECT o.lead_id,
           min(o.occurred_at) FILTER (WHERE o.event = 'converted') AS converted_at,
           sum(coalesce(o.value, 0)) FILTER (WHERE o.event = 'converted') AS revenue
    FROM outcomes o WHERE o.lead_id IN (SELECT lead_id FROM firsts) GROUP BY o.lead_id
)
SELECT f.decision_id, f.lead_id, f.decided_at, f.arm, f.team, f.rep_id, f.action, f.score,
       coalesce(l.source, 'unknown') AS source, e.converted_at, e.revenue
FROM firsts f LEFT JOIN leads l USING (lead_id) LEFT JOIN events e USING (lead_id)
ORDER BY f.decided_at, f.decision_id
"""


def _arm_data(
    frame: pl.DataFrame, label: str, metric: str, horizon: timedelta, cluster_by: str | None = None
) -> ArmData:
    arm = frame.filter(pl.col("arm") == label)
    within = (pl.col("converted_at").is_not_null()) & (pl.col("converted_at") <= pl.col("decided_at") + horizon)
    if metric == "proportion":
        y = arm.select(within.fill_null(False)).to_series().to_numpy().astype(np.float64)
    else:
        y = arm.select(pl.when(within).then(pl.col("revenue")).otherwise(0.0).fill_null(0.0)).to_series().to_numpy()
        y = y.astype(np.float64)
    score = arm["score"].cast(pl.Float64).to_numpy()
    covariate = None if np.isnan(score).any() or score.size == 0 else score
    cluster = None if cluster_by is None else arm[cluster_by].cast(pl.String).fill_null("(none)").to_numpy()
    return ArmData(label, y, covariate=covariate, cluster=cluster)


def report(
    settings: Settings,
    name: str,
    *,
    as_of: datetime | None = None,
    load: bool = True,
    cluster_by: str | None = None,
    final: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ExperimentReport:
    """The experiment's read-out as of ``as_of`` (default now).

    ``cluster_by="rep_id"`` (or ``"team"``) gives cluster-robust intervals over the assigned reps
    (or teams): wider, and honest when outcomes of one rep's leads move together.
    """
    if cluster_by not in (None, "rep_id", "team"):
        raise ValueError("--cluster-by: rep_id or team")
    say = progress or (lambda _m: None)
    record = _record(settings, name)
    config = record["config"]
    by_rep = config.get("unit") == "rep"
    cluster_by = cluster_by or ("rep_id" if by_rep else None)  # the randomisation unit is the cluster
    as_of = as_of or datetime.now(UTC)
    if load:
        say("loading the endpoint's decision and outcome logs …")
        load_endpoint_logs(settings)
    horizon = timedelta(days=int(config["metric"]["horizon_days"]))
    alpha = float(config["alpha"])
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        frame = query_frame(con, _LEADS, [name])
        guard_frame = query_frame(con, *_guardrail_query(name))
    matured = frame.filter(pl.col("decided_at") + horizon <= as_of)
    labels = [a["arm"] for a in config["arms"]]
    control = labels[0]
    # The always-valid boundary counts the units the variance counts: leads, or clusters (reps,
    # whose number is known from the start when they were randomised).
    n_star = config.get("expected_leads") if cluster_by is None else max(2, int(frame[cluster_by].n_unique()))
    arms = []
    for a in config["arms"]:
        m = matured.filter(pl.col("arm") == a["arm"])
        conversions = int(_arm_data(matured, a["arm"], "proportion", horizon).y.sum())
        arms.append(
            a
            | {
                "decided": int((frame["arm"] == a["arm"]).sum()),
                "matured": m.height,
                "conversions": conversions,
                "conversion_rate": conversions / m.height if m.height else None,
            }
        )
    srm = _srm(frame, config["arms"])
    say("comparing arms …")
    comparisons, p_values = [], {}
    for label in labels[1:]:
        for metric in ("proportion", "mean"):
            c_data = _arm_data(matured, control, metric, horizon, cluster_by)
            t_data = _arm_data(matured, label, metric, horizon, cluster_by)
            key = f"{label}:{'conversion' if metric == 'proportion' else 'revenue_per_lead'}"
            note = None
            if min(c_data.y.size, t_data.y.size) < 2:
                note = "not enough matured leads yet"
            elif metric == "mean" and not (c_data.y.any() or t_data.y.any()):
                note = "no revenue on the conversions yet (outcome events carry it in 'value')"
            if note is not None:
                comparisons.append(
                    {"arm": label, "control": control, "metric": key.split(":")[1], "comparison": None, "note": note}
                )
                continue
            result = compare(
                c_data,
                t_data,
                alpha=alpha,
                metric=metric,
                sequential=True,
                adjust=c_data.covariate is not None and t_data.covariate is not None,
                n_star=n_star,
            )
            body = result.to_json()
            head = headline(result)
            p_values[key] = head["p_value"]
            comparisons.append(
                {"arm": label, "control": control, "metric": key.split(":")[1], "comparison": body, "headline": head}
            )
    adjusted = adjust_p_values(p_values, "holm", alpha) if p_values else {}
    for c in comparisons:
        key = f"{c['arm']}:{c['metric']}"
        if key in adjusted:
            c["adjusted_p_value"] = float(adjusted[key].adjusted)
    guardrails = _guardrails(guard_frame, labels, config["guardrails"], alpha)
    treatment = labels[1] if len(labels) > 1 else control
    path = _path(matured, control, treatment, horizon, alpha, n_star, cluster_by)
    verdict = _verdict("stopped" if final else record["status"], comparisons, guardrails, srm, labels, alpha)
    per_rep = frame.filter(pl.col("rep_id").is_not_null()).group_by("rep_id").agg(pl.col("arm").n_unique())
    shared = bool((per_rep["arm"] > 1).any()) if per_rep.height else False
    n_reps = int(per_rep.height)
    risk = interference_risk("rep" if by_rep else "lead", reps_serve_both_arms=shared, n_clusters=n_reps)
    notes = [risk.message, *risk.notes]
    if cluster_by is not None:
        notes.append(f"Intervals are clustered by {cluster_by}: robust to outcomes that move together within one.")
    prediction = config.get("prediction") or {}
    if prediction.get("available"):
        for c in comparisons:
            predicted = prediction["lift"].get(c["arm"])
            if c["metric"] == "conversion" and predicted is not None and c["comparison"] is not None:
                c["predicted"] = predicted
    return ExperimentReport(name, record["status"], as_of, config, arms, srm, comparisons, guardrails, path, verdict,
                            notes)  # fmt: skip


def headline(result: Comparison) -> dict[str, Any]:
    """The numbers a verdict rests on: the CUPED-adjusted lift when the lead score was used, with
    its always-valid interval and p-value (else the raw lift's)."""
    if result.adjusted and result.adjusted_lift is not None:
        lift, low, high = result.adjusted_lift, result.adjusted_sequential_ci_low, result.adjusted_sequential_ci_high
        p_value, basis = result.adjusted_always_valid_p_value, "CUPED-adjusted lift, always-valid interval"
    else:
        lift, low, high = result.lift, result.sequential_ci_low, result.sequential_ci_high
        p_value, basis = result.always_valid_p_value, "lift, always-valid interval"
    assert low is not None and high is not None and p_value is not None
    return {"lift": float(lift), "ci_low": float(low), "ci_high": float(high), "p_value": float(p_value),
            "basis": basis}  # fmt: skip


def _srm_json(result: SrmResult) -> dict[str, Any]:
    return {
        "chi2": result.chi2,
        "p_value": result.p_value,
        "mismatch": result.mismatch,
        "message": result.message,
        "observed": dict(result.observed),
        "expected": dict(result.expected),
        "alpha": result.alpha,
    }


def _srm(frame: pl.DataFrame, arms: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    shares = {a["arm"]: float(a["share"]) for a in arms}
    counts = {label: int((frame["arm"] == label).sum()) for label in shares}
    if sum(counts.values()) == 0:
        return {"mismatch": False, "p_value": None, "message": "no decisions yet", "segments": []}
    overall = _srm_json(srm_check(counts, shares))
    segments = []
    for (source,), part in frame.group_by(["source"], maintain_order=True):
        if part.height < MIN_SEGMENT:
            continue
        seg_counts = {label: int((part["arm"] == label).sum()) for label in shares}
        segments.append({"source": source} | _srm_json(srm_check(seg_counts, shares)))
    return overall | {"segments": segments}


def _guardrail_query(name: str) -> tuple[str, list[Any]]:
    return GUARDRAIL_DECISIONS.format(where="d.experiment = ?"), [name]


def _guardrails(
    frame: pl.DataFrame, labels: Sequence[str], tolerances: Mapping[str, float], alpha: float
) -> list[dict[str, Any]]:
    reps = sorted({r for r in frame["rep_id"].to_list() if r is not None})
    control = arm_outcomes(frame.filter(pl.col("arm") == labels[0]), reps)
    out = []
    for label in labels[1:]:
        treatment = arm_outcomes(frame.filter(pl.col("arm") == label), reps)
        checks = check_guardrails(treatment, control, tolerances, alpha=alpha)
        out.append({"arm": label, "checks": [c.to_json() for c in checks], "breached": any(c.breached for c in checks)})
    return out


def _path(
    matured: pl.DataFrame,
    control: str,
    treatment: str,
    horizon: timedelta,
    alpha: float,
    n_star: float | None,
    cluster_by: str | None,
) -> list[dict[str, Any]]:
    """The primary lift and its confidence sequence at the end of each day of decisions."""
    if matured.height == 0 or control == treatment:
        return []
    days = matured.select(pl.col("decided_at").dt.date().unique().sort()).to_series().to_list()
    out = []
    for day in days:
        upto = matured.filter(pl.col("decided_at").dt.date() <= day)
        c = _arm_data(upto, control, "proportion", horizon, cluster_by)
        t = _arm_data(upto, treatment, "proportion", horizon, cluster_by)
        if min(c.y.size, t.y.size) < 2:
            continue
        adjust = c.covariate is not None and t.covariate is not None
        head = headline(compare(c, t, alpha=alpha, metric="proportion", sequential=True, adjust=adjust, n_star=n_star))
        out.append({"day": day.isoformat(), "n": int(c.y.size + t.y.size)} | head)
    return out


def _verdict(
    status: str,
    comparisons: Sequence[Mapping[str, Any]],
    guardrails: Sequence[Mapping[str, Any]],
    srm: Mapping[str, Any],
    labels: Sequence[str],
    alpha: float,
) -> dict[str, Any]:
    if srm.get("mismatch"):
        return {"winner": None, "message": f"no verdict: {srm['message']} — find the cause before reading lifts"}
    breached = {g["arm"] for g in guardrails if g["breached"]}
    primary = [c for c in comparisons if c["metric"] == "conversion" and c["comparison"] is not None]
    if not primary:
        return {"winner": None, "message": "no verdict yet: not enough matured leads"}
    better = [c for c in primary if c["comparison"]["sequential_ci_low"] > 0 and c.get("adjusted_p_value", 1.0) < alpha]
    worse = [c for c in primary if c["comparison"]["sequential_ci_high"] < 0 and c.get("adjusted_p_value", 1.0) < alpha]
    eligible = [c for c in better if c["arm"] not in breached]
    if eligible:
        best = max(eligible, key=lambda c: c["headline"]["lift"])
        return {
            "winner": best["arm"],
            "message": f"arm {best['arm']} converts better than {labels[0]} (lift {best['headline']['lift']:+.4f},"
            f" always-valid interval above 0 after Holm)",
        }
    if better:
        return {
            "winner": None,
            "message": f"arm(s) {', '.join(c['arm'] for c in better)} convert better but breach a guardrail",
        }
    if worse and len(worse) == len(labels) - 1:
        return {"winner": labels[0], "message": f"the control {labels[0]} converts better than every other arm"}
    still = "so far" if status == "running" else "at the end"
    return {"winner": None, "message": f"no difference detected {still} (every interval covers 0)"}


def stop(
    settings: Settings,
    name: str,
    *,
    winner: str | None = "auto",
    deploy_winner: bool = True,
    as_of: datetime | None = None,
    actor: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Stop a running experiment: record the final read-out and deploy the winner.

    ``winner="auto"`` takes the report's verdict; an arm label forces that arm; ``None`` (or an
    auto verdict without a winner) deploys the control — the status quo.
    """
    record = _record(settings, name)
    if record["status"] != "running":
        raise ValueError(f"experiment '{name}' is {record['status']}, not running")
    final = report(settings, name, as_of=as_of, final=True)
    labels = [a["arm"] for a in record["config"]["arms"]]
    chosen = final.verdict["winner"] if winner == "auto" else winner
    if chosen is not None and chosen not in labels:
        raise ValueError(f"--winner: no arm '{chosen}' (arms: {', '.join(labels)})")
    arm = next(a for a in record["config"]["arms"] if a["arm"] == (chosen or labels[0]))
    realised = {
        c["arm"]: c["headline"]
        for c in final.comparisons
        if c["metric"] == "conversion" and c["comparison"] is not None
    }
    result = final.to_json() | {"status": "stopped", "realised_lift": realised, "winner": chosen}
    with Warehouse(settings.warehouse_path).connect() as con:
        con.execute(
            "UPDATE experiments SET status = 'stopped', stopped_at = now(), winner = ?, result = ?"
            " WHERE experiment_id = ?",
            [chosen, json.dumps(result, default=str), name],
        )
    deployed = None
    if deploy_winner:
        why = reason or (f"winner of experiment {name}" if chosen else f"experiment {name} stopped without a winner")
        deployed = deploy(settings, f"{arm['policy']}@{arm['version']}", actor=actor, reason=why).to_json()
    return {
        "experiment": name,
        "winner": chosen,
        "deployed": deployed,
        "verdict": final.verdict,
        "realised_lift": realised,
        "prediction": record["config"].get("prediction"),
    }


def predicted_vs_realised(settings: Settings, name: str) -> list[dict[str, Any]]:
    """For a stopped experiment: per arm, the offline lift predicted before launch and the realised one."""
    record = _record(settings, name)
    if record["result"] is None:
        raise ValueError(f"experiment '{name}' has no final result yet: stop it first")
    prediction = record["config"].get("prediction") or {}
    out = []
    for label, realised in record["result"]["realised_lift"].items():
        predicted = (prediction.get("lift") or {}).get(label)
        out.append({"arm": label, "predicted": predicted, "realised": realised})
    return out


def read_out(settings: Settings, name: str, *, as_of: datetime | None = None) -> dict[str, Any]:
    """What the workbench shows: the stored final read-out of a stopped experiment, else a fresh
    :func:`report` as of ``as_of`` (default now)."""
    record = _record(settings, name)
    if record["status"] == "stopped" and record["result"] is not None:
        return dict(record["result"])
    fresh: dict[str, Any] = json.loads(json.dumps(report(settings, name, as_of=as_of).to_json(), default=str))
    return fresh
