"""What the routing endpoint serves: rows of the warehouse ``deployments`` table, and the
history of how it got there.

The latest row with status ``live`` is what is live; every change writes a new row and marks the
previous live one ``replaced``, so the table is the deployment history: who, when, what (the arms
with their shares and the champion model version in use) and why. ``kind`` says what wrote it:
``deploy`` (all traffic to one version), ``canary`` / ``ramp`` / ``promote`` (the steps of a
rollout, see :mod:`pipelines.rollout`), ``rollback``, ``experiment`` and ``experiment-stop``.

The endpoint polls with a short read-only connection and picks a new row up without a restart.
``arms`` is JSON: a list of ``{"policy", "version", "share", "arm"}`` or an object
``{"experiment" | "rollout", "salt", "arms": [...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from models.rollout import DEFAULT_GUARDRAILS, DEFAULT_STEPS, parse_steps
from pipelines.policies import _user, resolve, validate
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse, query_frame, scalar

LIVE = "live"
DEFAULT_POLICY = "seed"


@dataclass(frozen=True)
class Deployed:
    """A deployment just written."""

    deployment_id: int
    policy: str
    version: int
    kind: str = "deploy"
    share: float = 1.0
    rollout_id: int | None = None
    model_version: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "policy": self.policy,
            "version": self.version,
            "kind": self.kind,
            "share": self.share,
            "rollout_id": self.rollout_id,
            "model_version": self.model_version,
        }


def live_deployment(settings: Settings, busy_timeout_s: float = 5.0) -> tuple[int, Any] | None:
    """The latest live ``(deployment_id, arms)`` (a short read-only connection), None if none."""
    if not settings.warehouse_path.exists():
        return None
    with Warehouse(settings.warehouse_path, busy_timeout_s=busy_timeout_s).connect(read_only=True) as con:
        rows = con.execute(
            "SELECT deployment_id, CAST(arms AS VARCHAR) FROM deployments WHERE status = ?"
            " ORDER BY deployment_id DESC LIMIT 1",
            [LIVE],
        ).fetchall()
    return (int(rows[0][0]), json.loads(rows[0][1])) if rows else None


def arms_of(raw: Any) -> list[dict[str, Any]]:
    """The arm list of a deployment row's ``arms`` JSON (either shape)."""
    return list(raw.get("arms") or []) if isinstance(raw, dict) else list(raw)


def arm_reps(settings: Settings) -> dict[str, frozenset[str]]:
    """``"deployment_id:arm"`` → the reps of every arm that routes to its own reps only (an
    experiment randomised by rep), for rebuilding the endpoint's state from its log."""
    if not settings.warehouse_path.exists():
        return {}
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        rows = con.execute(
            "SELECT deployment_id, CAST(arms AS VARCHAR) FROM deployments WHERE CAST(arms AS VARCHAR) LIKE ?",
            ['%"reps"%'],
        ).fetchall()
    return {
        f"{deployment_id}:{arm.get('arm')}": frozenset(map(str, arm["reps"]))
        for deployment_id, raw in rows
        for arm in arms_of(json.loads(raw))
        if arm.get("reps")
    }


def champion_version(settings: Settings) -> int | None:
    """The ``lead-score`` champion's version, None without a model registry in the workspace."""
    if settings.tracking_uri.startswith("sqlite:") and not (settings.mlflow_dir / "mlflow.db").exists():
        return None
    from pipelines import registry  # mlflow is slow to import: only when there is a registry

    return registry.alias_version(settings, "lead-score", "champion")


def registered(settings: Settings, ref: str) -> tuple[str, int]:
    """``(name, version)`` of a registered, valid policy version (``name`` = its latest)."""
    source = resolve(settings, ref)
    if source.version is None:
        raise ValueError(f"policy '{ref}' is not registered: run leadroute policy register first")
    report = validate(settings, source)
    if not report.ok:
        raise ValueError(f"policy '{ref}' does not validate: {report.errors[0]}")
    return source.spec.name, source.version


def write_deployment(
    con: duckdb.DuckDBPyConnection,
    arms: Any,
    *,
    kind: str,
    actor: str | None,
    reason: str | None,
    rollout_id: int | None = None,
    model_version: int | None = None,
) -> int:
    """Append a live row and retire the previous one (call inside the caller's transaction)."""
    deployment_id = int(scalar(con, "SELECT coalesce(max(deployment_id), 0) + 1 FROM deployments"))
    con.execute("UPDATE deployments SET status = 'replaced' WHERE status = ?", [LIVE])
    con.execute(
        "INSERT INTO deployments (deployment_id, created_at, arms, status, actor, reason, kind, rollout_id,"
        " model_version) VALUES (?, now(), ?, ?, ?, ?, ?, ?, ?)",
        [deployment_id, json.dumps(arms), LIVE, actor or _user(), reason, kind, rollout_id, model_version],
    )
    return deployment_id


def live_row(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    rows = query_frame(
        con,
        "SELECT deployment_id, CAST(arms AS VARCHAR) AS arms, kind, rollout_id, model_version FROM deployments"
        " WHERE status = ? ORDER BY deployment_id DESC LIMIT 1",
        [LIVE],
    ).to_dicts()
    if not rows:
        return None
    row = rows[0]
    row["arms"] = json.loads(row["arms"])
    return row


def _end_running_rollouts(con: duckdb.DuckDBPyConnection, status: str, reason: str) -> None:
    con.execute(
        "UPDATE rollouts SET status = ?, ended_at = now(), reason = coalesce(reason, '') || ? WHERE status = 'running'",
        [status, f" [{reason}]"],
    )


def deploy(
    settings: Settings,
    ref: str,
    *,
    canary_pct: float | None = None,
    steps: str | Sequence[float] | None = None,
    guardrails: Mapping[str, float] | None = None,
    min_decisions: int = 200,
    min_step_minutes: float = 0.0,
    actor: str | None = None,
    reason: str | None = None,
) -> Deployed:
    """Deploy a registered policy version: all traffic at once, or a canary ramp.

    With ``canary_pct`` the version gets that share of traffic next to what is live (the
    baseline), and :func:`pipelines.rollout.advance` moves it up the ``steps`` (percentages;
    default 5 → 25 → 50 → 100) while the ``guardrails`` hold, or back to the baseline when one is
    breached. A step needs ``min_decisions`` canary decisions and ``min_step_minutes``.
    """
    name, version = registered(settings, ref)
    model_version = champion_version(settings)
    if canary_pct is None:
        with Warehouse(settings.warehouse_path).connect() as con:
            con.begin()
            _end_running_rollouts(con, "superseded", f"replaced by a full deployment of {name}@{version}")
            arms = [{"policy": name, "version": version, "share": 1.0, "arm": None}]
            deployment_id = write_deployment(
                con, arms, kind="deploy", actor=actor, reason=reason, model_version=model_version
            )
            con.commit()
        return Deployed(deployment_id, name, version, model_version=model_version)
    if not 0 < canary_pct < 100:
        raise ValueError("--canary: a percentage between 0 and 100 (exclusive)")
    ramp = parse_steps(steps if steps is not None else DEFAULT_STEPS, first=canary_pct / 100)
    checks = dict(DEFAULT_GUARDRAILS if guardrails is None else guardrails)
    unknown = [g for g in checks if g not in DEFAULT_GUARDRAILS]
    if unknown:
        raise ValueError(f"--guardrail: unknown '{unknown[0]}' (known: {', '.join(DEFAULT_GUARDRAILS)})")
    if min_decisions < 1:
        raise ValueError("--min-decisions: at least 1")
    with Warehouse(settings.warehouse_path).connect() as con:
        con.begin()
        live = live_row(con)
        if live is not None and isinstance(live["arms"], dict) and live["arms"].get("experiment"):
            con.rollback()
            raise ValueError(f"experiment '{live['arms']['experiment']}' is running: stop it before a canary")
        if live is not None and live["rollout_id"] is not None:
            status = scalar(con, "SELECT status FROM rollouts WHERE rollout_id = ?", [live["rollout_id"]])
            if status == "running":
                con.rollback()
                raise ValueError(f"rollout {live['rollout_id']} is still running: roll it back or let it finish")
        baseline = _baseline_arms(settings, live)
        if any(a["policy"] == name and a.get("version") == version for a in baseline):
            con.rollback()
            raise ValueError(f"{name}@{version} is already live: nothing to canary")
        rollout_id = int(scalar(con, "SELECT coalesce(max(rollout_id), 0) + 1 FROM rollouts"))
        config = {"min_decisions": min_decisions, "min_step_s": min_step_minutes * 60.0, "tolerances": checks}
        con.execute(
            "INSERT INTO rollouts (rollout_id, policy, version, baseline, steps, step, status, guardrails, started_at,"
            " step_started_at, actor, reason) VALUES (?, ?, ?, ?, ?, 0, 'running', ?, now(), now(), ?, ?)",
            [rollout_id, name, version, json.dumps(baseline), json.dumps(ramp), json.dumps(config), actor or _user(),
             reason],
        )  # fmt: skip
        deployment_id = write_deployment(
            con,
            canary_arms(rollout_id, baseline, name, version, ramp[0]),
            kind="canary",
            actor=actor,
            reason=reason or f"canary of {name}@{version} at {ramp[0]:.0%}",
            rollout_id=rollout_id,
            model_version=model_version,
        )
        con.commit()
    return Deployed(deployment_id, name, version, "canary", ramp[0], rollout_id, model_version)


def _baseline_arms(settings: Settings, live: dict[str, Any] | None) -> list[dict[str, Any]]:
    if live is not None:
        return [
            {"policy": a["policy"], "version": a.get("version"), "share": float(a.get("share", 1.0))}
            for a in arms_of(live["arms"])
        ]
    source = resolve(settings, DEFAULT_POLICY)  # what the endpoint serves without a deployment
    return [{"policy": source.spec.name, "version": source.version, "share": 1.0}]


def canary_arms(
    rollout_id: int, baseline: Sequence[Mapping[str, Any]], policy: str, version: int, share: float
) -> dict[str, Any]:
    """The arms of one ramp step: the baseline scaled to ``1 − share``, then the canary.

    The salt stays the rollout's, and the canary is the last arm: as its share grows, a lead can
    only move from the baseline to the canary, never back.
    """
    total = sum(float(a["share"]) for a in baseline)
    arms = [
        {"policy": a["policy"], "version": a["version"], "share": (1.0 - share) * float(a["share"]) / total,
         "arm": "baseline"}
        for a in baseline
    ]  # fmt: skip
    arms.append({"policy": policy, "version": version, "share": share, "arm": "canary"})
    return {"rollout": rollout_id, "salt": f"rollout-{rollout_id}", "arms": [a for a in arms if a["share"] > 0]}


RAMP_KINDS = ("canary", "ramp", "promote")


def _rollout_baseline(con: duckdb.DuckDBPyConnection, rollout_id: int) -> tuple[list[dict[str, Any]], int | None]:
    """What was live before a rollout began: its baseline arms and the model version then."""
    baseline = scalar(con, "SELECT CAST(baseline AS VARCHAR) FROM rollouts WHERE rollout_id = ?", [rollout_id])
    model = scalar(
        con, "SELECT model_version FROM deployments WHERE rollout_id = ? ORDER BY deployment_id LIMIT 1", [rollout_id]
    )
    return [dict(a, arm=None) for a in json.loads(str(baseline))], None if model is None else int(model)


def rollback(settings: Settings, *, actor: str | None = None, reason: str | None = None) -> Deployed:
    """Return to the previous deployment in one step.

    During or right after a rollout (a canary, ramp or promotion is live), "previous" is what
    was live before the rollout began; otherwise the row that was live before the current one.
    A running experiment is stopped without a winner. When the deployment returned to pinned
    another champion model version, the ``lead-score`` champion alias moves back to it too.
    """
    with Warehouse(settings.warehouse_path).connect() as con:
        con.begin()
        live = live_row(con)
        if live is None:
            con.rollback()
            raise ValueError("nothing is deployed: there is nothing to roll back")
        target_arms: Any
        target_model: int | None
        if live["rollout_id"] is not None and live["kind"] in RAMP_KINDS:
            target_arms, target_model = _rollout_baseline(con, int(live["rollout_id"]))
            con.execute(
                "UPDATE rollouts SET status = 'rolled_back', ended_at = now(), reason = ? WHERE rollout_id = ?"
                " AND status = 'running'",
                [reason or "rolled back by hand", live["rollout_id"]],
            )
        else:
            previous = query_frame(
                con,
                "SELECT CAST(arms AS VARCHAR) AS arms, model_version, kind, rollout_id FROM deployments"
                " WHERE deployment_id < ? ORDER BY deployment_id DESC LIMIT 1",
                [live["deployment_id"]],
            ).to_dicts()
            if not previous:
                con.rollback()
                raise ValueError("there is no earlier deployment to return to")
            row = previous[0]
            if row["rollout_id"] is not None and row["kind"] in RAMP_KINDS:  # a ramp step: its baseline
                target_arms, target_model = _rollout_baseline(con, int(row["rollout_id"]))
            else:
                target_arms, target_model = json.loads(row["arms"]), row["model_version"]
        if isinstance(live["arms"], dict) and live["arms"].get("experiment"):
            con.execute(
                "UPDATE experiments SET status = 'aborted', stopped_at = now() WHERE experiment_id = ?"
                " AND status = 'running'",
                [live["arms"]["experiment"]],
            )
        if isinstance(target_arms, dict) and (target_arms.get("experiment") or target_arms.get("rollout")):
            target_arms = [dict(a, arm=None) for a in arms_of(target_arms)]  # never restart a test by rolling back
        deployment_id = write_deployment(
            con,
            target_arms,
            kind="rollback",
            actor=actor,
            reason=reason or f"rollback of deployment {live['deployment_id']}",
            model_version=target_model,
        )
        con.commit()
    if target_model is not None and champion_version(settings) not in (None, target_model):
        from pipelines import registry

        registry.set_alias(settings, "lead-score", "champion", int(target_model))
    first = arms_of(target_arms)[0]
    return Deployed(deployment_id, str(first["policy"]), int(first.get("version") or 0), "rollback",
                    model_version=target_model)  # fmt: skip


def describe_arms(raw: Any) -> str:
    """``seed@3 95% (baseline) + best_fit@2 5% (canary)`` for a deployment's arms JSON."""
    arms = arms_of(raw)
    total = sum(float(a.get("share", 1.0)) for a in arms) or 1.0
    parts = []
    for a in arms:
        label = f" ({a['arm']})" if a.get("arm") else ""
        version = f"@{a['version']}" if a.get("version") is not None else ""
        parts.append(f"{a['policy']}{version} {float(a.get('share', 1.0)) / total:.0%}{label}")
    prefix = f"experiment {raw['experiment']}: " if isinstance(raw, dict) and raw.get("experiment") else ""
    return prefix + " + ".join(parts)


def history(settings: Settings, limit: int = 100) -> pl.DataFrame:
    """The deployment history, newest first: ``deployment_id, created_at, kind, status, what, actor,
    reason, rollout_id, model_version``."""
    if not settings.warehouse_path.exists():
        return pl.DataFrame()
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        frame = query_frame(
            con,
            "SELECT deployment_id, created_at, coalesce(kind, 'deploy') AS kind, status, CAST(arms AS VARCHAR) AS arms,"
            " actor, reason, rollout_id, model_version FROM deployments ORDER BY deployment_id DESC LIMIT ?",
            [limit],
        )
    if frame.height == 0:
        return frame
    what = [describe_arms(json.loads(a)) for a in frame["arms"]]
    return frame.with_columns(pl.Series("what", what)).select(
        "deployment_id", "created_at", "kind", "status", "what", "actor", "reason", "rollout_id", "model_version"
    )
