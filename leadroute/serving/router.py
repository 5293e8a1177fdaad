"""The routing service: the live deployment, one routing state per policy version (its
rotation) over one capacity table all versions share (the reps are the same people), the
decision log — and the rebuild of that state from the log after a restart.

Every decision draws its randomness from a generator seeded by its own ``decision_id``, and the
log keeps the lead as routed (with the score used). Re-routing the logged leads in log order
with the same seeds therefore reproduces each decision and the state it left behind: round-robin
passes and per-day capacity come back exactly, without a separate state file to keep in sync.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np

from leadroute.serving.deployment import Deployment
from leadroute.serving.log import JsonLog, read_records
from leadroute.serving.records import jsonable
from models.policy import Policy, PolicySpecError, Roster, RoutingState
from pipelines.deployments import arm_reps
from pipelines.policies import PolicyNotFoundError, resolve
from pipelines.settings import Settings

DECISIONS = "decisions"


def decision_seed(decision_id: str) -> int:
    """The seed of a decision's random draws (exploration, random assignment)."""
    return int(uuid.UUID(decision_id).hex[:16], 16)


class SeededDraws:
    """``np.random.default_rng(seed)``, built on the first draw: building a generator costs
    ~18 µs, a quarter of routing a lead, and most policies (no exploration, no random
    assignment) never draw. The draws are the generator's, so decisions do not change."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng: np.random.Generator | None = None

    def _generator(self) -> np.random.Generator:
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        return self._rng

    def random(self, *args: Any, **kwargs: Any) -> Any:
        return self._generator().random(*args, **kwargs)

    def integers(self, *args: Any, **kwargs: Any) -> Any:
        return self._generator().integers(*args, **kwargs)


@dataclass(frozen=True)
class Rebuilt:
    """What the restart replay found: decisions replayed, reproduced exactly, skipped."""

    replayed: int
    matched: int
    skipped: int


class RoutingService:
    """Routes leads with the live deployment; thread-safe (one lock around state and log order)."""

    def __init__(self, settings: Settings, roster: Roster, deployment: Deployment, log: JsonLog) -> None:
        self.settings, self.roster, self.log = settings, roster, log
        self.deployment = deployment  # swapped whole by reload; a request reads it once
        self.states: dict[str, RoutingState] = {}
        # Reps are shared by every arm: one day-load table (capacity) for all policy versions,
        # while each version keeps its own rotation (passes) over its own destinations.
        self.loads: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def _state(self, key: str) -> RoutingState:
        if key not in self.states:
            self.states[key] = RoutingState(self.roster.size, loads=self.loads)
        return self.states[key]

    def route(self, leads: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Decide every lead with one deployment; returns once the decisions are durable."""
        deployment = self.deployment
        now = datetime.now(UTC).isoformat()
        records = []
        total_share = sum(a.share for a in deployment.arms)
        with self._lock:
            # Route and append under one lock, so the log's order is the order state changed in.
            for lead in leads:
                arm = deployment.pick(str(lead["lead_id"]))
                drawn = uuid.uuid4()
                decision_id = str(drawn)
                # == decision_seed(decision_id), without parsing the text back
                draws = cast(np.random.Generator, SeededDraws(drawn.int >> 64))
                decision = arm.policy.route_one(lead, self._state(arm.key), draws)
                share = arm.share / total_share
                records.append(
                    {
                        "decision_id": decision_id,
                        "decided_at": now,
                        "lead_id": decision.lead_id,
                        "team": decision.team,
                        "rep_id": decision.rep_id,
                        "action": decision.action,
                        "score": decision.score,
                        "policy": arm.policy.spec.name,
                        "policy_version": arm.policy.version,
                        "experiment": deployment.experiment,
                        "arm": arm.label,
                        "propensity": share * decision.propensity,
                        "reasons": decision.reasons,
                        "rule": decision.rule,
                        "method": decision.method,
                        "notify": decision.notify,
                        "deployment_id": deployment.deployment_id,
                        "lead": jsonable({**lead, "score": decision.score}),
                    }
                )
            ticket = self.log.append(records)
        self.log.sync(ticket)  # outside the lock: concurrent requests share one fsync
        return records

    def rebuild(self) -> Rebuilt:
        """Replay the decision log into fresh states (call before serving)."""
        policies: dict[str, Policy | None] = {}
        replayed = matched = skipped = 0
        states: dict[str, RoutingState] = {}
        loads: dict[int, np.ndarray] = {}
        own_reps = arm_reps(self.settings)
        for record in read_records(self.settings.decision_log_dir, DECISIONS):
            version = record.get("policy_version")
            key = f"{record.get('policy')}@{version if version is not None else 'shipped'}"
            scope = f"{record.get('deployment_id')}:{record.get('arm')}"
            reps = own_reps.get(scope)
            key += f"#{scope}" if reps else ""
            if key not in policies:
                policies[key] = self._replay_policy(str(record.get("policy")), version, reps)
            policy = policies[key]
            if policy is None or not isinstance(record.get("lead"), dict):
                skipped += 1
                continue
            state = states.setdefault(key, RoutingState(self.roster.size, loads=loads))
            draws = cast(np.random.Generator, SeededDraws(decision_seed(str(record["decision_id"]))))
            try:
                again = policy.route_one(record["lead"], state, draws)
            except (ValueError, KeyError, TypeError):
                skipped += 1
                continue
            replayed += 1
            matched += again.team == record.get("team") and again.rep_id == record.get("rep_id")
        with self._lock:
            self.states, self.loads = states, loads
        return Rebuilt(replayed, matched, skipped)

    def _replay_policy(self, name: str, version: Any, reps: frozenset[str] | None = None) -> Policy | None:
        # Without a scorer: the logged lead carries the score the decision used.
        ref = name if version is None else f"{name}@{int(version)}"
        try:
            source = resolve(self.settings, ref)
        except (PolicyNotFoundError, PolicySpecError):
            return None
        roster = self.roster.only_sales_reps(reps) if reps else self.roster
        return Policy(source.spec, roster, version=source.version)
