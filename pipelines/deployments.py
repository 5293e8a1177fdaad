"""What the routing endpoint serves: rows of the warehouse ``deployments`` table.

The latest row with status ``live`` is what is live; deploying writes a new row and marks the
previous live one ``replaced``. The endpoint polls with a short read-only connection and picks a
new row up without a restart. ``arms`` is JSON: a list of ``{"policy", "version", "share",
"arm"}`` or an object ``{"experiment", "salt", "arms": [...]}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pipelines.policies import _user, resolve, validate
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse, scalar

LIVE = "live"


@dataclass(frozen=True)
class Deployed:
    """A deployment just written."""

    deployment_id: int
    policy: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"deployment_id": self.deployment_id, "policy": self.policy, "version": self.version}


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


def deploy(settings: Settings, ref: str, *, actor: str | None = None, reason: str | None = None) -> Deployed:
    """Make one registered policy version take all traffic (``name`` = its latest version)."""
    source = resolve(settings, ref)
    if source.version is None:
        raise ValueError(f"policy '{ref}' is not registered: run leadroute policy register first")
    report = validate(settings, source)
    if not report.ok:
        raise ValueError(f"policy '{ref}' does not validate: {report.errors[0]}")
    arms = [{"policy": source.spec.name, "version": source.version, "share": 1.0, "arm": None}]
    with Warehouse(settings.warehouse_path).connect() as con:
        con.begin()
        deployment_id = int(scalar(con, "SELECT coalesce(max(deployment_id), 0) + 1 FROM deployments"))
        con.execute("UPDATE deployments SET status = 'replaced' WHERE status = ?", [LIVE])
        con.execute(
            "INSERT INTO deployments (deployment_id, created_at, arms, status, actor, reason)"
            " VALUES (?, now(), ?, ?, ?, ?)",
            [deployment_id, json.dumps(arms), LIVE, actor or _user(), reason],
        )
        con.commit()
    return Deployed(deployment_id, source.spec.name, source.version)
