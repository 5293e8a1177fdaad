"""The canary ramp's controller: look at the live step, then hold, advance or roll back.

:func:`advance` loads the endpoint's logs into the warehouse, measures the guardrails on the
decisions of the current step (canary arm against baseline arm: same hours, same reps), and
applies :func:`models.rollout.ramp_verdict`. The endpoint runs it on a timer
(:class:`RolloutWorker`), and ``leadroute rollout advance`` runs it once by hand; both write the
same deployment rows, so the history says what happened and why.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from models.rollout import ArmOutcomes, Verdict, check_guardrails, ramp_verdict
from pipelines.deployments import canary_arms, live_row, write_deployment
from pipelines.endpoint_logs import load_endpoint_logs
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse, query_frame


@dataclass(frozen=True)
class RolloutStatus:
    """One rollout and what the last look decided."""

    rollout_id: int
    policy: str
    version: int
    status: str
    step: int
    steps: tuple[float, ...]
    share: float
    verdict: Verdict | None

    def to_json(self) -> dict[str, Any]:
        return {
            "rollout_id": self.rollout_id,
            "policy": self.policy,
            "version": self.version,
            "status": self.status,
            "step": self.step,
            "steps": list(self.steps),
            "share": self.share,
            "verdict": self.verdict.to_json() if self.verdict else None,
        }

    def line(self) -> str:
        head = f"rollout {self.rollout_id}: {self.policy}@{self.version} {self.status}, at {self.share:.0%}"
        return head + (f" — {self.verdict.action}: {self.verdict.reason}" if self.verdict else "")


# Every decision of one step or experiment with what its guardrails need. A rep's decisions
# earlier the same UTC day count toward capacity whichever arm (or history) they came from; the
# day is the lead's arrival day, as in the router's capacity.
GUARDRAIL_DECISIONS = """
WITH counted AS (
    SELECT d.decision_id, d.rep_id, d.decided_at, d.team, d.action, d.reasons, d.lead_id, d.arm, d.experiment,
           d.extra->>'$.deployment_id' AS deployment_id,
           count(*) OVER (PARTITION BY d.rep_id, CAST(timezone('UTC', coalesce(l.created_at, d.decided_at)) AS DATE)
                          ORDER BY d.decided_at, d.decision_id ROWS UNBOUNDED PRECEDING) - 1 AS before_today
    FROM decisions d LEFT JOIN leads l ON l.lead_id = d.lead_id
),
touches AS (
    SELECT lead_id, min(occurred_at) AS touched_at FROM outcomes WHERE event = 'contacted' GROUP BY lead_id
)
SELECT d.decision_id, d.rep_id, d.team, d.action, d.arm, d.before_today, r.capacity_per_day,
       coalesce(d.reasons->>'$.fallback', '') AS fallback, t.touched_at, d.decided_at
FROM counted d LEFT JOIN reps r ON r.rep_id = d.rep_id LEFT JOIN touches t ON t.lead_id = d.lead_id
WHERE {where}
"""


def arm_outcomes(frame: pl.DataFrame, reps: list[str]) -> ArmOutcomes:
    capacity = frame["capacity_per_day"].to_numpy()
    before = frame["before_today"].to_numpy()
    has_rep = frame["rep_id"].is_not_null().to_numpy()
    overload = has_rep & ~np.isnan(capacity.astype(np.float64)) & (before >= np.nan_to_num(capacity, nan=np.inf))
    touched = pl.when(pl.col("touched_at") >= pl.col("decided_at")).then(pl.col("touched_at"))
    hours = (
        frame.select(((touched - pl.col("decided_at")).dt.total_seconds() / 3600.0).alias("h"))["h"]
        .cast(pl.Float64)
        .fill_null(np.nan)
        .to_numpy()
    )
    counts = frame.filter(pl.col("rep_id").is_not_null()).group_by("rep_id").len()
    per_rep = dict(zip(counts["rep_id"].to_list(), counts["len"].to_list(), strict=True))
    return ArmOutcomes(
        rep_overload=overload.astype(np.float64),
        no_owner=(frame["action"] == "inbox").to_numpy().astype(np.float64),
        fallback=(frame["fallback"] != "").to_numpy().astype(np.float64),
        touch_hours=hours,
        assigned_per_rep=np.array([per_rep.get(r, 0) for r in reps], dtype=np.float64),
    )


def _status(row: dict[str, Any], verdict: Verdict | None) -> RolloutStatus:
    steps = tuple(float(s) for s in json.loads(row["steps"]))
    step = int(row["step"])
    share = steps[min(step, len(steps) - 1)]
    return RolloutStatus(int(row["rollout_id"]), row["policy"], int(row["version"]), row["status"], step, steps,
                         share, verdict)  # fmt: skip


def rollouts(settings: Settings) -> list[RolloutStatus]:
    """Every rollout, newest first, with its last verdict."""
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        rows = query_frame(
            con,
            "SELECT rollout_id, policy, version, CAST(steps AS VARCHAR) AS steps, step, status,"
            " CAST(verdict AS VARCHAR) AS verdict FROM rollouts ORDER BY rollout_id DESC",
        ).to_dicts()
    out = []
    for row in rows:
        raw = json.loads(row["verdict"]) if row["verdict"] else None
        verdict = Verdict(raw["action"], raw["reason"]) if raw else None
        out.append(_status(row, verdict))
    return out


def advance(settings: Settings, now: datetime | None = None) -> RolloutStatus | None:
    """One look at the running rollout (None when none runs): hold, advance a step or roll back."""
    now = now or datetime.now(UTC)
    warehouse = Warehouse(settings.warehouse_path)
    with warehouse.connect(read_only=True) as con:
        running = query_frame(
            con,
            "SELECT rollout_id, policy, version, CAST(baseline AS VARCHAR) AS baseline,"
            " CAST(steps AS VARCHAR) AS steps, step, status, CAST(guardrails AS VARCHAR) AS guardrails,"
            " step_started_at FROM rollouts"
            " WHERE status = 'running' ORDER BY rollout_id DESC LIMIT 1",
        ).to_dicts()
    if not running:
        return None
    rollout = running[0]
    load_endpoint_logs(settings)
    config = json.loads(rollout["guardrails"])
    with warehouse.connect() as con:
        con.begin()
        live = live_row(con)
        if live is None or live["rollout_id"] != rollout["rollout_id"]:
            con.execute(
                "UPDATE rollouts SET status = 'superseded', ended_at = ? WHERE rollout_id = ?",
                [now, rollout["rollout_id"]],
            )
            con.commit()
            return _status(rollout | {"status": "superseded"}, None)
        decisions = query_frame(
            con, GUARDRAIL_DECISIONS.format(where="d.deployment_id = ?"), [str(live["deployment_id"])]
        )
        reps = sorted({r for r in decisions["rep_id"].to_list() if r is not None})
        canary = arm_outcomes(decisions.filter(pl.col("arm") == "canary"), reps)
        baseline = arm_outcomes(decisions.filter(pl.col("arm") == "baseline"), reps)
        checks = check_guardrails(canary, baseline, config["tolerances"])
        started = rollout["step_started_at"]
        verdict = ramp_verdict(
            checks,
            canary_decisions=canary.n,
            min_decisions=int(config["min_decisions"]),
            step_age_s=(now - started).total_seconds(),
            min_step_s=float(config["min_step_s"]),
        )
        steps = [float(s) for s in json.loads(rollout["steps"])]
        step = int(rollout["step"])
        status = "running"
        if verdict.action == "rollback":
            baseline_arms = [dict(a, arm=None) for a in json.loads(rollout["baseline"])]
            write_deployment(con, baseline_arms, kind="rollback", actor="rollout", reason=verdict.reason,
                             rollout_id=rollout["rollout_id"], model_version=live["model_version"])  # fmt: skip
            status = "rolled_back"
        elif verdict.action == "advance":
            step += 1
            if steps[step] >= 1.0:
                arms: Any = [{"policy": rollout["policy"], "version": rollout["version"], "share": 1.0, "arm": None}]
                kind, status = "promote", "completed"
            else:
                arms = canary_arms(
                    rollout["rollout_id"], json.loads(rollout["baseline"]), rollout["policy"], rollout["version"],
                    steps[step],
                )  # fmt: skip
                kind = "ramp"
            write_deployment(
                con, arms, kind=kind, actor="rollout",
                reason=f"{verdict.reason}: {steps[step - 1]:.0%} → {steps[step]:.0%}",
                rollout_id=rollout["rollout_id"], model_version=live["model_version"],
            )  # fmt: skip
        con.execute(
            "UPDATE rollouts SET step = ?, status = ?, verdict = ?,"
            " step_started_at = CASE WHEN ? THEN ? ELSE step_started_at END,"
            " ended_at = CASE WHEN ? = 'running' THEN NULL ELSE ? END WHERE rollout_id = ?",
            [step, status, json.dumps(verdict.to_json()), verdict.action == "advance", now, status, now,
             rollout["rollout_id"]],
        )  # fmt: skip
        con.commit()
    return _status(rollout | {"step": step, "status": status}, verdict)


class RolloutWorker:
    """Runs :func:`advance` every ``interval_s`` in a daemon thread (errors are counted, not raised)."""

    def __init__(self, settings: Settings, interval_s: float = 30.0, on_error: Callable[[], None] | None = None):
        self.settings, self.interval_s, self.on_error = settings, interval_s, on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rollout-worker", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                advance(self.settings)
            except Exception:  # a busy workspace must not stop the endpoint; the next look retries
                if self.on_error is not None:
                    self.on_error()

    def start(self) -> None:
        if self.interval_s > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
