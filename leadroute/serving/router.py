"""The routing service: the live deployment, one routing state per policy version (its
rotation) over one capacity table all versions share (the reps are the same people), the
decision log — and the rebuild of that state from the log after a restart.

Every decision draws its randomness from a generator seeded by its own ``decision_id``, and the
log keeps the lead as routed (with the score used). Re-routing the logged leads in log order
with the same seeds therefore reproduces each decision and the state it left behind: round-robin
passes and per-day capacity come back exactly, without a separate state file to keep in sync.
A batch routed as one replay (:mod:`leadroute.serving.batch`) is logged as consecutive records
sharing a ``replay_seed`` and is replayed the same way, as one group.
"""

from __future__ import annotations

import os
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import polars as pl

from leadroute.serving.batch import decision_ids, json_object, lead_object, typed_leads
from leadroute.serving.deployment import Deployment
from leadroute.serving.log import JsonLog, read_records
from leadroute.serving.records import jsonable
from models.policy import Policy, PolicySpecError, Roster, RoutingState
from pipelines.deployments import arm_reps
from pipelines.policies import PolicyNotFoundError, resolve
from pipelines.settings import Settings

DECISIONS = "decisions"
#: The fields of a logged decision, in the order they are written (``lead`` comes last).
RECORD_FIELDS = (
    "decision_id", "decided_at", "lead_id", "team", "rep_id", "action", "score", "policy", "policy_version",
    "experiment", "arm", "propensity", "reasons", "rule", "method", "notify", "deployment_id",
)  # fmt: skip


class _RandomIds:
    """Version-4 UUIDs from the OS's random bytes, read 16 KiB at a time: one ``getrandom``
    call costs ~14 µs on a small VM, as much as validating a lead, and ``uuid.uuid4`` makes
    one per id. The ids are as random: 122 bits from the OS generator each."""

    def __init__(self, chunk: int = 16 * 1024) -> None:
        self._chunk, self._lock = chunk, threading.Lock()
        self._bytes, self._at = b"", 0

    def next(self) -> tuple[str, int]:
        """A new id as text, and its seed (:func:`decision_seed` of the text, without parsing it)."""
        with self._lock:
            if self._at + 16 > len(self._bytes):
                self._bytes, self._at = os.urandom(self._chunk), 0
            raw = bytearray(self._bytes[self._at : self._at + 16])
            self._at += 16
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", int.from_bytes(raw[:8], "big")


_random_ids = _RandomIds()


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
        # Called under the lock with what was just logged (a list of records, or a batch's frame):
        # the SLA timer follows decisions this way instead of parsing the log back.
        self.listeners: list[Callable[[list[dict[str, Any]] | pl.DataFrame], None]] = []
        self._lock = threading.Lock()

    @property
    def lock(self) -> threading.Lock:
        """Held while routing state changes and decisions are logged."""
        return self._lock

    def _state(self, key: str) -> RoutingState:
        if key not in self.states:
            self.states[key] = RoutingState(self.roster.size, loads=self.loads)
        return self.states[key]

    def route(self, leads: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Decide every lead with one deployment; returns once the decisions are durable."""
        with self._lock:
            records, ticket = self._decide_and_log(leads)
        self.log.sync(ticket)  # outside the lock: concurrent requests share one fsync
        return records

    def try_decide(self, leads: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], int] | None:
        """:meth:`route` without waiting, for an event loop: the records and the log ticket to
        await (not yet durable), or None while another request (a batch) holds the state."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._decide_and_log(leads)
        finally:
            self._lock.release()

    def _decide_and_log(self, leads: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        # Under the lock: routing and appending together keep the log in the order state changed in.
        records = self._decide(leads)
        ticket = self.log.append(records)
        self._tell(records)
        return records, ticket

    def _tell(self, logged: list[dict[str, Any]] | pl.DataFrame) -> None:
        for listener in self.listeners:
            listener(logged)

    def _decide(self, leads: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        deployment = self.deployment
        now = datetime.now(UTC).isoformat()
        records = []
        total_share = sum(a.share for a in deployment.arms)
        for lead in leads:
            arm = deployment.pick(str(lead["lead_id"]))
            decision_id, seed = _random_ids.next()
            draws = cast(np.random.Generator, SeededDraws(seed))
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
        return records

    def route_frame(self, leads: pl.DataFrame) -> pl.DataFrame:
        """Decide a batch of typed leads (:func:`leadroute.serving.batch.typed_leads`) with one
        deployment: one replay per arm, in time order; returns once the decisions are durable.

        Returns:
            The logged records (:data:`RECORD_FIELDS`, ``replay_seed``, ``lead`` as JSON text)
            in input order (a batch without leads is refused before this).
        """
        deployment = self.deployment
        total_share = sum(a.share for a in deployment.arms)
        n = leads.height
        if len(deployment.arms) == 1:
            groups = [(deployment.arms[0], np.arange(n))]
        else:
            number = {id(arm): i for i, arm in enumerate(deployment.arms)}
            picked = np.fromiter((number[id(deployment.pick(str(i)))] for i in leads["lead_id"]), np.int64, count=n)
            groups = [(arm, np.flatnonzero(picked == i)) for i, arm in enumerate(deployment.arms)]
        # Each arm's leads in the order replay routes them (it sorts the same way, stably): the
        # log keeps that order. Positions, not extra columns: a permutation costs no polars pass.
        stamps = leads["created_at"].to_numpy()
        now = datetime.now(UTC).isoformat()
        parts, positions = [], []
        with self._lock:
            for arm, index in groups:
                if index.size == 0:
                    continue
                order = index[np.argsort(stamps[index], kind="stable")]
                typed = leads if np.array_equal(order, np.arange(n)) else leads[order]
                seed = secrets.randbits(63)
                state = self._state(arm.key)
                decided = arm.policy.replay(typed, rng=np.random.default_rng(seed), state=state).decisions
                # The lead as routed, with the score used (replay keeps the order it is given).
                lead = typed.lazy().with_columns(pl.lit(decided["score"]))
                record = decided.lazy().select(
                    pl.lit(decision_ids(decided.height)),
                    pl.lit(now).alias("decided_at"),
                    *("lead_id", "team", "rep_id", "action", "score"),
                    pl.lit(arm.policy.spec.name).alias("policy"),
                    pl.lit(arm.policy.version, pl.Int64).alias("policy_version"),
                    pl.lit(deployment.experiment, pl.String).alias("experiment"),
                    pl.lit(arm.label, pl.String).alias("arm"),
                    pl.col("propensity") * (arm.share / total_share),
                    *("reasons", "rule", "method", "notify"),
                    pl.lit(deployment.deployment_id, pl.Int64).alias("deployment_id"),
                    pl.lit(seed, pl.Int64).alias("replay_seed"),
                )
                lead_json = lead.select(lead_object(lead.collect_schema()).alias("lead"))
                parts.append(pl.concat([record, lead_json], how="horizontal"))
                positions.append(order)
            # The records and their log lines as one plan: each eager step has a fixed cost.
            records = (
                (pl.concat(parts) if len(parts) > 1 else parts[0])
                .with_columns(json_object([*RECORD_FIELDS, "replay_seed"], {"lead": "lead"}).alias("_line"))
                .collect(engine="in-memory")
            )
            ticket = self.log.append_encoded(records.drop_in_place("_line"))
            self._tell(records)
        self.log.sync(ticket)  # outside the lock: concurrent requests share one fsync
        routed = np.concatenate(positions)  # input position of each logged record
        if np.array_equal(routed, np.arange(n)):
            return records
        inverse = np.empty(n, dtype=np.int64)
        inverse[routed] = np.arange(n)
        return records[inverse]

    def rebuild(self) -> Rebuilt:
        """Replay the decision log into fresh states (call before serving)."""
        policies: dict[str, Policy | None] = {}
        replayed = matched = skipped = 0
        states: dict[str, RoutingState] = {}
        loads: dict[int, np.ndarray] = {}
        own_reps = arm_reps(self.settings)

        def key_of(record: Mapping[str, Any]) -> str:
            version = record.get("policy_version")
            key = f"{record.get('policy')}@{version if version is not None else 'shipped'}"
            scope = f"{record.get('deployment_id')}:{record.get('arm')}"
            reps = own_reps.get(scope)
            key += f"#{scope}" if reps else ""
            if key not in policies:
                policies[key] = self._replay_policy(str(record.get("policy")), version, reps)
            return key

        for key, group in _replay_groups(read_records(self.settings.decision_log_dir, DECISIONS), key_of):
            policy = policies[key]
            if policy is None or not all(isinstance(r.get("lead"), dict) for r in group):
                skipped += len(group)
                continue
            state = states.setdefault(key, RoutingState(self.roster.size, loads=loads))
            again = _route_again(policy, group, state)
            if again is None:
                skipped += len(group)
                continue
            replayed += len(group)
            matched += sum(got == (r.get("team"), r.get("rep_id")) for r, got in zip(group, again, strict=True))
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


def _replay_groups(
    records: Iterable[dict[str, Any]], key_of: Callable[[Mapping[str, Any]], str]
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The log as routing steps: each single decision alone, a batch's consecutive records that
    share a ``replay_seed`` (and a policy) together."""
    group: list[dict[str, Any]] = []
    group_key = ""
    for record in records:
        key = key_of(record)
        seed = record.get("replay_seed")
        if group and (seed is None or seed != group[0].get("replay_seed") or key != group_key):
            yield group_key, group
            group = []
        group.append(record)
        group_key = key
        if seed is None:
            yield group_key, group
            group = []
    if group:
        yield group_key, group


def _route_again(policy: Policy, group: list[dict[str, Any]], state: RoutingState) -> list[tuple[Any, Any]] | None:
    """``(team, rep_id)`` of each logged decision routed again into ``state`` (None: the group
    cannot be replayed, e.g. a lead the current validation refuses)."""
    seed = group[0].get("replay_seed")
    try:
        if seed is None:
            record = group[0]
            draws = cast(np.random.Generator, SeededDraws(decision_seed(str(record["decision_id"]))))
            decision = policy.route_one(record["lead"], state, draws)
            return [(decision.team, decision.rep_id)]
        typed, rejects = typed_leads([r["lead"] for r in group])
        if rejects:
            return None
        decided = policy.replay(typed, rng=np.random.default_rng(int(seed)), state=state).decisions
        return list(zip(decided["team"].to_list(), decided["rep_id"].to_list(), strict=True))
    except (ValueError, KeyError, TypeError):
        return None
