"""The SLA timer: reminders, re-assignments, escalations and stuck-lead alerts, from the logs.

Nothing lives only in memory. Deadlines are derived from the decision log (every routing
decision, re-assignment and escalation is a logged decision) and the outcome log (touch
events); reminders and alerts already sent are recorded in ``<home>/sla/sla_actions-*.jsonl``.
A new timer over the same folders therefore picks up exactly where the old one stopped: no
deadline is lost and no action is repeated. The in-memory index is only a cache of those logs,
read incrementally (each file from the byte offset reached so far).

Wiring into the endpoint (``app.py``), next to the outbox::

    sla = SlaTimer(service, metrics=metrics, notify=outbox.enqueue if outbox else None)
    sla.start()            # in the lifespan, after the coalescer; ``sla.stop()`` on shutdown
    metrics.render() + sla.metrics_text()   # what /metrics returns

A re-assignment is a new decision in the decision log with action ``reassign``: same schema as
a routing decision, reasons naming the breach and the previous owner, propensity = the routing
decision's propensity × the probability of the re-assignment choice. It carries no ``lead``
field, so the endpoint's restart replay (which re-routes logged leads to rebuild rotation state)
skips it instead of routing the lead twice; the lead as routed stays on the first decision,
linked by ``sla_root``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from leadroute.serving.log import JsonLog
from leadroute.serving.metrics import Metrics
from leadroute.serving.router import DECISIONS, RoutingService, decision_seed
from models.policy import PolicySpec, PolicySpecError
from models.policy.diff import describe_sla
from models.sla.clock import BusinessCalendar, calendars
from models.sla.machine import ESCALATE, REASSIGN, Due, Hop, destination_of, next_due, next_owner
from models.sla.stuck import KINDS, OpenLead, StuckReport, detect_stuck
from pipelines.logfiles import log_files, read_new_lines
from pipelines.policies import PolicyNotFoundError, resolve

ACTIONS = "sla_actions"
OUTCOMES = "outcomes"
Notify = Callable[[Sequence[dict[str, Any]]], None]


@dataclass
class _Chain:
    root: dict[str, Any]
    hops: list[Hop] = field(default_factory=list)


@dataclass(frozen=True)
class TickResult:
    """What one tick did, and the stuck leads it found."""

    reminded: list[str]
    reassigned: list[str]
    escalated: list[str]
    alerts: list[str]
    stuck: StuckReport


class _Tail:
    """New complete lines of a JSON-lines log since the last read (a torn tail waits)."""

    def __init__(self, directory: Path, prefix: str) -> None:
        self.directory, self.prefix = directory, prefix
        self.offsets: dict[Path, int] = {}

    def read(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for path in log_files(self.directory, self.prefix):
            records, self.offsets[path] = read_new_lines(path, self.offsets.get(path, 0))
            out.extend(records)
        return out


class SlaTimer:
    """Derives open SLA deadlines from the logs and performs what is due on :meth:`tick`.

    Args:
        service: the endpoint's routing service (roster, live deployment, decision log).
        outcome_dir: the outcome log's folder (default ``<home>/outcomes``).
        notify: receives reminder, re-assignment, escalation and alert messages (e.g. the
            outbox's ``enqueue``); every message has ``decision_id``, ``notify: true``, ``text``.
        metrics: counts actions; :meth:`metrics_text` renders the stuck-lead gauges.
        queue_after_s: a lead waiting this long in a queue or team inbox is stuck.
        grace_s: an action overdue for this long makes a lead stuck (``past_sla``).
        horizon_days: chains started longer ago are forgotten (their leads are long settled).
    """

    def __init__(
        self,
        service: RoutingService,
        *,
        outcome_dir: Path | None = None,
        notify: Notify | None = None,
        metrics: Metrics | None = None,
        queue_after_s: float = 3600.0,
        grace_s: float = 300.0,
        horizon_days: float = 30.0,
        fsync: bool = True,
    ) -> None:
        home = service.settings.home
        self.service, self.notify, self.metrics = service, notify, metrics
        self.queue_after_s, self.grace_s, self.horizon = queue_after_s, grace_s, timedelta(days=horizon_days)
        self.roster = service.roster
        self._calendars: dict[str, BusinessCalendar] = calendars(self.roster)
        self._decisions = _Tail(service.settings.decision_log_dir, DECISIONS)
        self._outcomes = _Tail(outcome_dir or home / OUTCOMES, OUTCOMES)
        self._actions = _Tail(home / "sla", ACTIONS)
        self._action_log = JsonLog(home / "sla", ACTIONS, fsync=fsync)
        self._chains: dict[str, _Chain] = {}
        self._seen: set[str] = set()
        self._touches: dict[str, list[tuple[str, datetime]]] = {}
        self._today: dict[str, int] = {}  # leads owned today per rep, for the hand-over choice
        self._outgoing: list[dict[str, Any]] = []
        self._decision_ticket = self._action_ticket = 0
        self._settled: set[str] = set()  # leads touched (or without an SLA): nothing more to do
        self._done: set[str] = set()  # "remind:<decision_id>", "alert:<kind>:<id>", "exhausted:<decision_id>"
        self._specs: dict[str, PolicySpec | None] = {}
        self._with_sla: dict[tuple[Any, Any, Any], bool] = {}
        # Leads owned per UTC day and rep from decisions without an SLA (not tracked as chains).
        self._plain_loads: dict[date, dict[str, int]] = {}
        # What the routing service logs, handed over in process once the timer runs (start): the
        # decision log is read back only before that (and by a timer driven by hand).
        self._feed: deque[list[dict[str, Any]] | pl.DataFrame] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = StuckReport((), (), (), (), {})
        self._open = 0

    # -- the logs ---------------------------------------------------------------------------

    def _refresh(self) -> None:
        if self._feed is None:
            for record in self._decisions.read():
                self._add_decision(record)
        else:
            while self._feed:
                logged = self._feed.popleft()
                if isinstance(logged, pl.DataFrame):
                    self._add_frame(logged)
                else:
                    for record in logged:
                        self._add_decision(record)
        for record in self._outcomes.read():
            at = _instant(record.get("occurred_at"))
            if record.get("lead_id") is not None and record.get("event") and at is not None:
                self._touches.setdefault(str(record["lead_id"]), []).append((str(record["event"]), at))
        for record in self._actions.read():
            if record.get("key"):
                self._done.add(str(record["key"]))

    def _add_frame(self, frame: pl.DataFrame) -> None:
        """A batch's decisions: those under an SLA become chains; the rest only close the lead's
        chain and count towards its rep's day."""
        keys = set(zip(*(frame[c].to_list() for c in ("policy", "policy_version", "rule")), strict=True))
        if not any(self._has_sla(*key) for key in keys):
            self._add_plain_frame(frame)
            return
        columns = ("decision_id", "lead_id", "decided_at", "rep_id", "action", "policy", "policy_version", "rule")
        for i, (decision_id, lead_id, decided_at, rep_id, action, policy, version, rule) in enumerate(
            frame.select(columns).iter_rows()
        ):
            if self._has_sla(policy, version, rule):
                record = frame.row(i, named=True)
                self._add_decision(record | {"lead": json.loads(record["lead"])})
            elif decision_id not in self._seen and lead_id is not None:
                self._plain(str(lead_id), _instant(decided_at), rep_id, action)

    def _add_plain_frame(self, frame: pl.DataFrame) -> None:
        """:meth:`_plain` for a batch none of whose decisions is under an SLA, counted per rep
        and instant (a batch's decision ids are new: none is among those seen)."""
        lead_ids = frame["lead_id"].to_list()
        if self._chains or self._settled:
            for lead_id in {str(i) for i in lead_ids if i is not None} & (self._chains.keys() | self._settled):
                self._end_chain(lead_id)
        owned = Counter(
            (decided_at, rep_id)
            for lead_id, decided_at, rep_id, action in zip(
                lead_ids, *(frame[c].to_list() for c in ("decided_at", "rep_id", "action")), strict=True
            )
            if lead_id is not None and rep_id is not None and action != ESCALATE
        )
        for (decided_at, rep_id), n in owned.items():
            at = _instant(decided_at)
            if at is not None:
                self._count_plain(at, rep_id, n)

    def _has_sla(self, policy: Any, version: Any, rule: Any) -> bool:
        key = (policy, version, rule)
        if key not in self._with_sla:
            spec = self._spec({"policy": policy, "policy_version": version})
            self._with_sla[key] = spec is not None and spec.sla_for(rule) is not None
        return self._with_sla[key]

    def _plain(self, lead_id: str, at: datetime | None, rep_id: Any, action: Any) -> None:
        """A routing decision without an SLA: it ends the lead's chain; its rep's day counts it."""
        self._end_chain(lead_id)
        if at is not None and rep_id is not None and action != ESCALATE:
            self._count_plain(at, rep_id, 1)

    def _end_chain(self, lead_id: str) -> None:
        self._chains.pop(lead_id, None)
        self._settled.discard(lead_id)

    def _count_plain(self, at: datetime, rep_id: Any, n: int) -> None:
        day = self._plain_loads.setdefault(at.date(), {})
        day[str(rep_id)] = day.get(str(rep_id), 0) + n

    def _add_decision(self, record: dict[str, Any]) -> None:
        decision_id, lead_id = str(record.get("decision_id")), record.get("lead_id")
        at = _instant(record.get("decided_at"))
        if decision_id in self._seen or lead_id is None or at is None:
            return
        root = record.get("sla_root")
        if root is None and not self._has_sla(record.get("policy"), record.get("policy_version"), record.get("rule")):
            self._plain(str(lead_id), at, record.get("rep_id"), record.get("action"))
            return
        self._seen.add(decision_id)
        hop = Hop(decision_id, at, record.get("rep_id"), str(record.get("team")), str(record.get("action")))
        if root is None:  # a routing decision starts (or restarts) the lead's chain
            self._chains[str(lead_id)] = _Chain(root=record, hops=[hop])
            self._settled.discard(str(lead_id))
            return
        chain = self._chains.get(str(lead_id))
        if chain is not None and chain.root.get("decision_id") == root:
            chain.hops.append(hop)

    def _spec(self, record: dict[str, Any]) -> PolicySpec | None:
        name, version = str(record.get("policy")), record.get("policy_version")
        key = f"{name}@{version}"
        if key not in self._specs:
            found = [
                a.policy.spec
                for a in self.service.deployment.arms
                if a.key == key or (a.policy.spec.name == name and a.policy.version == version)
            ]
            if found:
                self._specs[key] = found[0]
            else:
                ref = name if version is None else f"{name}@{int(version)}"
                try:
                    self._specs[key] = resolve(self.service.settings, ref).spec
                except (PolicyNotFoundError, PolicySpecError, ValueError):
                    self._specs[key] = None
        return self._specs[key]

    # -- state ------------------------------------------------------------------------------

    def _calendar(self, rep_id: str) -> BusinessCalendar | None:
        return self._calendars.get(rep_id)

    def _due(self, lead_id: str, chain: _Chain, now: datetime) -> Due:
        spec = self._spec(chain.root)
        sla = spec.sla_for(chain.root.get("rule")) if spec is not None else None
        events = set(sla.touch_events) if sla is not None else set()
        touches = [at for event, at in self._touches.get(lead_id, []) if event in events]
        reminded = {h.decision_id for h in chain.hops if f"remind:{h.decision_id}" in self._done}
        return next_due(chain.hops, sla, touches, now, self._calendar, reminded)

    def _loads(self, now: datetime) -> dict[str, int]:
        day = now.astimezone(UTC).date()
        for old in [d for d in self._plain_loads if d < day - timedelta(days=1)]:
            del self._plain_loads[old]
        loads: dict[str, int] = dict(self._plain_loads.get(day, {}))
        for chain in self._chains.values():
            for hop in chain.hops:
                if hop.rep_id is not None and hop.action != ESCALATE and hop.decided_at.astimezone(UTC).date() == day:
                    loads[hop.rep_id] = loads.get(hop.rep_id, 0) + 1
        return loads

    def open_leads(self, now: datetime) -> list[OpenLead]:
        """Every lead whose chain is still open or ended without a touch (the stuck candidates)."""
        out = []
        for lead_id, chain in self._chains.items():
            if lead_id in self._settled:
                continue
            due = self._due(lead_id, chain, now)
            if due.status in ("met", "late", "no_sla"):
                self._settled.add(lead_id)
                continue
            current = chain.hops[-1]
            out.append(OpenLead(lead_id, current.team, current.rep_id, current.decided_at, due))
        return out

    # -- the tick ---------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> TickResult:
        """Read what is new in the logs and perform every action due at ``now`` (default: the clock)."""
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        with self._lock:
            self._refresh()
            result = TickResult([], [], [], [], self._last)
            self._today = self._loads(moment)
            for lead_id in list(self._chains):
                chain = self._chains[lead_id]
                if chain.hops[0].decided_at < moment - self.horizon:
                    del self._chains[lead_id]
                    self._settled.discard(lead_id)
                    continue
                if lead_id in self._settled:
                    continue
                for _ in range(25):  # each action moves the chain on; a bound against surprises
                    due = self._due(lead_id, chain, moment)
                    if not due.is_due(moment) or f"exhausted:{chain.hops[-1].decision_id}" in self._done:
                        break
                    self._perform(lead_id, chain, due, moment, result)
            stuck = detect_stuck(
                self.open_leads(moment),
                self.roster,
                moment,
                self._today,
                queue_after_s=self.queue_after_s,
                grace_s=self.grace_s,
            )
            self._alert(stuck, moment, result)
            self._flush()
            self._last, self._open = stuck, sum(1 for c in self._chains.values() if c.hops)
            return TickResult(result.reminded, result.reassigned, result.escalated, result.alerts, stuck)

    def _perform(self, lead_id: str, chain: _Chain, due: Due, now: datetime, result: TickResult) -> None:
        current, root = chain.hops[-1], chain.root
        spec = self._spec(root)
        sla = spec.sla_for(root.get("rule")) if spec is not None else None
        if spec is None or sla is None:  # pragma: no cover - next_due returns done without an SLA
            return
        if due.kind == "remind":
            text = (
                f"Reminder: lead {lead_id} is waiting for a first touch by {current.rep_id}; "
                f"due by {_iso(due.deadline)} ({describe_sla(sla)})"
            )
            self._record(f"remind:{current.decision_id}", "remind", lead_id, now, text, current.rep_id, due)
            result.reminded.append(lead_id)
            self._count("leadroute_sla_reminders_total", "SLA reminders sent to owners.")
            return
        owners = [h.rep_id for h in chain.hops if h.rep_id is not None]
        breach = (
            f"SLA breach: no first touch by {current.rep_id} within {describe_sla(sla).split(';')[0]}"
            f" (due {_iso(due.deadline)})"
        )
        if due.kind == REASSIGN:
            dest = destination_of(spec, root.get("rule"), current.team)
            new_id = str(uuid.uuid4())
            rng = np.random.default_rng(decision_seed(new_id))
            handoff = (
                None
                if dest is None
                else next_owner(self.roster, dest, now, owners, spec.availability, self._today, rng)
            )
            if handoff is not None:
                reasons = {
                    "why": f"{breach}; re-assigned to {handoff.rep_id}",
                    "sla_breach": True,
                    "previous_owner": current.rep_id,
                    "previous_owners": owners,
                    "hop": due.hops + 1,
                    "max_hops": sla.max_hops,
                    "eligible_reps": handoff.eligible,
                    "at_work": handoff.working,
                    "due_at": _iso(due.deadline),
                }
                self._decide(chain, new_id, now, REASSIGN, handoff.team, handoff.rep_id, handoff.probability, reasons)
                result.reassigned.append(lead_id)
                self._count("leadroute_sla_reassignments_total", "Leads re-assigned after an SLA breach.")
                return
            if sla.escalate is None:
                text = f"Lead {lead_id} breached its SLA and nobody is eligible to take it over ({breach})"
                self._record(f"exhausted:{current.decision_id}", "exhausted", lead_id, now, text, None, due)
                return
            breach += "; nobody eligible to take it over"
        escalation = sla.escalate
        if escalation is None:  # pragma: no cover - next_due only escalates with a target
            return
        manager = escalation.rep
        rows = {str(r): i for i, r in enumerate(self.roster.rep_id.tolist())}
        team = escalation.team or (str(self.roster.team[rows[manager]]) if manager in rows else "queue")
        target = " and ".join(x for x in (f"team {escalation.team}" if escalation.team else "", manager or "") if x)
        reasons = {
            "why": f"{breach}; escalated to {target}",
            "sla_breach": True,
            "previous_owner": current.rep_id,
            "previous_owners": owners,
            "hop": due.hops + 1,
            "max_hops": sla.max_hops,
            "eligible_reps": 0,
            "due_at": _iso(due.deadline),
        }
        self._decide(chain, str(uuid.uuid4()), now, ESCALATE, team, manager, 1.0, reasons)
        result.escalated.append(lead_id)
        self._count("leadroute_sla_escalations_total", "Leads escalated after their SLA chain was exhausted.")

    def _decide(
        self,
        chain: _Chain,
        decision_id: str,
        now: datetime,
        action: str,
        team: str,
        rep_id: str | None,
        probability: float,
        why: dict[str, Any],
    ) -> None:
        root, current = chain.root, chain.hops[-1]
        base = _reasons(root.get("reasons"))
        reasons = {
            "rule": root.get("rule"),
            "condition": base.get("condition"),
            "method": f"sla_{action}",
            **why,
            "explored": False,
            "fallback": "",
            "notify": True,
        }
        record = {
            "decision_id": decision_id,
            "decided_at": now.isoformat(),
            "lead_id": root.get("lead_id"),
            "team": team,
            "rep_id": rep_id,
            "action": action,
            "score": root.get("score"),
            "policy": root.get("policy"),
            "policy_version": root.get("policy_version"),
            "experiment": root.get("experiment"),
            "arm": root.get("arm"),
            "propensity": float(root.get("propensity") or 1.0) * probability,
            "reasons": json.dumps(reasons, separators=(",", ":"), ensure_ascii=False, default=str),
            "rule": root.get("rule"),
            "method": f"sla_{action}",
            "notify": True,
            "deployment_id": root.get("deployment_id"),
            "sla_root": root.get("decision_id"),
            "sla_previous": current.decision_id,
        }
        self._decision_ticket = self.service.log.append([record])  # synced before anyone is told
        self._add_decision(record)
        if rep_id is not None and action == REASSIGN:
            self._today[rep_id] = self._today.get(rep_id, 0) + 1
        who = rep_id or f"the {team} team"
        text = f"Lead {record['lead_id']} is now yours, {who}: {why['why']}"
        self._outgoing.append(record | {"text": text, "lead": root.get("lead") or {}})

    def _record(
        self, key: str, kind: str, lead_id: str, now: datetime, text: str, rep_id: str | None, due: Due | None
    ) -> None:
        record = {
            "key": key,
            "kind": kind,
            "lead_id": lead_id,
            "rep_id": rep_id,
            "at": now.isoformat(),
            "due_at": _iso(due.at) if due is not None else None,
            "text": text,
        }
        self._action_ticket = self._action_log.append([record])  # synced before anyone is told
        self._done.add(key)
        message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"leadroute-sla:{key}"))
        self._outgoing.append(
            {"decision_id": message_id, "notify": True, "lead_id": lead_id, "rep_id": rep_id}
            | {"action": f"sla_{kind}", "text": text}
        )

    def _flush(self) -> None:
        """Make the tick's decisions and action records durable (one fsync each), then tell people:
        a crash before this point loses only actions nobody heard of, and the next timer redoes them."""
        if self._decision_ticket:
            self.service.log.sync(self._decision_ticket)
        if self._action_ticket:
            self._action_log.sync(self._action_ticket)
        self._decision_ticket = self._action_ticket = 0
        outgoing, self._outgoing = self._outgoing, []
        if self.notify is not None and outgoing:
            self.notify(outgoing)

    def _alert(self, stuck: StuckReport, now: datetime, result: TickResult) -> None:
        day = now.date().isoformat()
        for kind in KINDS:
            for item in getattr(stuck, kind):
                key = f"alert:{kind}:{item}:{day}" if kind == "over_capacity" else f"alert:{kind}:{item}"
                if key in self._done:
                    continue
                what = {
                    "past_sla": f"lead {item} is past its SLA and nothing more will happen by itself",
                    "in_queue": f"lead {item} has waited in a queue or team inbox with no owner",
                    "absent_owner": f"lead {item} is owned by a rep who is away or has left",
                    "over_capacity": f"rep {item} has more leads today than their daily capacity",
                }[kind]
                self._record(key, "alert", item, now, f"Stuck lead alert: {what}", None, None)
                result.alerts.append(key)
                self._count("leadroute_sla_alerts_total", "Stuck-lead alerts sent.", kind=kind)

    def _count(self, name: str, help_text: str, **labels: str) -> None:
        if self.metrics is not None:
            self.metrics.inc(name, help_text, 1.0, **labels)

    # -- exposure ---------------------------------------------------------------------------

    def stuck_counts(self) -> dict[str, int]:
        """Stuck leads by kind at the last tick."""
        with self._lock:
            return self._last.counts()

    def metrics_text(self) -> str:
        """Prometheus gauges of the last tick (append to ``Metrics.render()`` in /metrics)."""
        with self._lock:
            report, open_chains = self._last, self._open
        name = "leadroute_sla_stuck_leads"
        lines = [f"# HELP {name} Stuck leads at the last SLA tick, by kind and team.", f"# TYPE {name} gauge"]
        for kind in KINDS:
            lines.append(f'{name}{{kind="{kind}"}} {len(getattr(report, kind))}')
        for (kind, team), count in sorted(report.by_team.items()):
            lines.append(f'{name}{{kind="{kind}",team="{_escape(team)}"}} {count}')
        lines += [
            "# HELP leadroute_sla_tracked_leads Leads whose SLA chain the timer tracks.",
            "# TYPE leadroute_sla_tracked_leads gauge",
            f"leadroute_sla_tracked_leads {open_chains}",
        ]
        return "\n".join(lines) + "\n"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, interval_s: float = 15.0) -> None:
        """Tick every ``interval_s`` on a daemon thread (the first tick at once). From here on the
        routing service hands its decisions over in process (read from the log up to now)."""
        with self.service.lock:  # nothing is logged between reading the log and listening
            with self._lock:
                for record in self._decisions.read():
                    self._add_decision(record)
                self._feed = deque()
            self.service.listeners.append(self._feed.append)

        def run() -> None:
            while True:
                try:
                    self.tick()
                except Exception:  # a bad record or a busy workspace must not stop the timer
                    self._count("leadroute_sla_tick_errors_total", "SLA timer ticks that failed.")
                if self._stop.wait(interval_s):
                    return

        self._thread = threading.Thread(target=run, name="sla-timer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._action_log.close()


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _reasons(text: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(text) if isinstance(text, str) else {}
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
