"""Replay a policy with its SLAs on the simulated company and measure what they change.

Without SLAs a lead waits for its owner: the truth's first touch (owner's working hours, time
zone, absences and load) decides speed to lead, and conversion decays with it. With SLAs the
chain runs as the timer would run it live: when the simulated first touch would come after the
owner's deadline, the lead is re-assigned at the deadline to the next eligible rep of the same
destination (:func:`models.sla.machine.next_owner`: at work now first, then least loaded; never
a previous owner), whose response starts at the hand-over; after ``max_hops`` re-assignments it
is escalated. Every hop moves the lead's load to the new owner, so overload and slower
responses of the reps who take over are charged too. The truth then gives first touches and
true conversion probabilities of both routings.

Assumptions: a reminder has no simulated effect (the truth has no notion of it); a previous
owner never touches a lead once it is taken away; escalation to a rep is worked like any rep,
to a queue like the queue (its next sweep).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from models.policy.router import Policy
from models.policy.spec import Sla
from models.simulation.truth import Evaluation, GroundTruth
from models.sla.clock import add_time, calendars
from models.sla.machine import destination_of, next_owner

US = 1_000_000


@dataclass(frozen=True)
class SlaComparison:
    """The same policy replayed without and with its SLAs.

    Attributes:
        hops: every hand-over: ``lead_id, hop, action, team, rep_id, previous_rep_id, at``.
        final: per lead (in ``leads`` order): ``lead_id, team, rep_id, handed_over_at, hops``.
        without, with_sla: the truth's evaluation of each routing.
        under_sla: per lead, whether an SLA applied (a rep owner and a rule with an SLA).
    """

    hops: pl.DataFrame
    final: pl.DataFrame
    without: Evaluation
    with_sla: Evaluation
    under_sla: np.ndarray

    def figures(self) -> dict[str, float]:
        """Median and p90 hours to first touch and true expected conversions, both ways."""
        a, b = self.without, self.with_sla
        touched = self.under_sla
        return {
            "leads": float(a.probability.size),
            "leads_under_sla": float(touched.sum()),
            "reassigned": float(self.hops.filter(pl.col("action") == "reassign")["lead_id"].n_unique()),
            "escalated": float(self.hops.filter(pl.col("action") == "escalate").height),
            "median_hours_without": float(np.median(a.delay_hours[touched])) if touched.any() else 0.0,
            "median_hours_with": float(np.median(b.delay_hours[touched])) if touched.any() else 0.0,
            "p90_hours_without": float(np.quantile(a.delay_hours[touched], 0.9)) if touched.any() else 0.0,
            "p90_hours_with": float(np.quantile(b.delay_hours[touched], 0.9)) if touched.any() else 0.0,
            "conversions_without": float(a.probability.sum()),
            "conversions_with": float(b.probability.sum()),
            "revenue_without": float(a.expected_revenue.sum()),
            "revenue_with": float(b.expected_revenue.sum()),
        }


def replay_with_sla(policy: Policy, leads: pl.DataFrame, truth: GroundTruth, *, seed: int = 0) -> SlaComparison:
    """Replay ``policy`` on ``leads`` without and with its SLAs and evaluate both with ``truth``."""
    frame = leads.sort("created_at", maintain_order=True)
    base = policy.replay(frame, rng=np.random.default_rng(seed)).decisions
    base = frame.select(pl.col("lead_id").cast(pl.String)).join(base, on="lead_id", how="left", maintain_order="left")
    chosen = base.select("lead_id", "team", "rep_id")
    without = truth.evaluate(frame, chosen)
    n = frame.height
    created = frame["created_at"].cast(pl.Datetime("us", "UTC")).dt.epoch("us").to_numpy().astype(np.int64)
    team = np.array(base["team"].to_list(), dtype=object)
    rep = np.array(base["rep_id"].to_list(), dtype=object)
    rules = base["rule"].to_list()
    slas: list[Sla | None] = [policy.spec.sla_for(r) if rep[i] is not None else None for i, r in enumerate(rules)]
    under = np.array([s is not None for s in slas], dtype=bool)
    handed = created.copy()
    hops = np.zeros(n, dtype=np.int64)
    settled = ~under
    owners: list[set[str]] = [{str(r)} if r is not None else set() for r in rep]
    day = created // (86_400 * US)
    loads: dict[int, dict[str, int]] = {}
    for d, r in zip(day.tolist(), rep.tolist(), strict=True):
        if r is not None:
            loads.setdefault(d, {})[r] = loads.setdefault(d, {}).get(r, 0) + 1
    cal = calendars(policy.roster)
    rng = np.random.default_rng(seed + 1)
    log: list[tuple[str, int, str, str, str | None, str | None, datetime]] = []
    rounds = 1 + max((s.max_hops + 1 for s in slas if s is not None), default=0)
    for _ in range(rounds):
        current = truth.evaluate(frame, _decisions(base, team, rep), handed)
        deadlines = np.full(n, np.iinfo(np.int64).max)
        for i in np.flatnonzero(~settled):
            sla = slas[i]
            assert sla is not None and rep[i] is not None
            clock = cal.get(str(rep[i])) if sla.business_hours else None
            at = add_time(_datetime(int(handed[i])), sla.first_touch_s, clock)
            deadlines[i] = int(at.timestamp() * US) if at is not None else int(handed[i])
        breach = np.flatnonzero(~settled & (current.first_touch_us > deadlines))
        if breach.size == 0:
            break
        for i in breach[np.argsort(deadlines[breach], kind="stable")]:
            sla = slas[i]
            assert sla is not None
            at = _datetime(int(deadlines[i]))
            previous = str(rep[i])
            handoff = None
            if sla.reassign and hops[i] < sla.max_hops:
                dest = destination_of(policy.spec, rules[i], str(base["team"][int(i)]))
                if dest is not None:
                    handoff = next_owner(
                        policy.roster, dest, at, owners[i], policy.spec.availability, loads.get(int(day[i]), {}), rng
                    )
            day_loads = loads.setdefault(int(day[i]), {})
            if handoff is not None:
                day_loads[previous] -= 1
                day_loads[handoff.rep_id] = day_loads.get(handoff.rep_id, 0) + 1
                rep[i], team[i] = handoff.rep_id, handoff.team
                owners[i].add(handoff.rep_id)
                hops[i] += 1
                log.append(
                    (
                        str(frame["lead_id"][int(i)]),
                        int(hops[i]),
                        "reassign",
                        handoff.team,
                        handoff.rep_id,
                        previous,
                        at,
                    )
                )
            elif sla.escalate is not None:
                day_loads[previous] -= 1
                manager = sla.escalate.rep
                rows = {str(r): k for k, r in enumerate(policy.roster.rep_id.tolist())}
                new_team = sla.escalate.team or (str(policy.roster.team[rows[manager]]) if manager in rows else "queue")
                rep[i], team[i] = manager, new_team
                if manager is not None:
                    day_loads[manager] = day_loads.get(manager, 0) + 1
                settled[i] = True
                log.append(
                    (str(frame["lead_id"][int(i)]), int(hops[i]) + 1, "escalate", new_team, manager, previous, at)
                )
            else:
                settled[i] = True  # breached and exhausted: the owner keeps it
                continue
            handed[i] = int(deadlines[i])
    with_sla = truth.evaluate(frame, _decisions(base, team, rep), handed)
    hop_frame = pl.DataFrame(
        log,
        schema={
            "lead_id": pl.String,
            "hop": pl.Int64,
            "action": pl.String,
            "team": pl.String,
            "rep_id": pl.String,
            "previous_rep_id": pl.String,
            "at": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )
    final = _decisions(base, team, rep).with_columns(
        pl.Series("handed_over_at", handed).cast(pl.Datetime("us", "UTC")), pl.Series("hops", hops)
    )
    return SlaComparison(hops=hop_frame, final=final, without=without, with_sla=with_sla, under_sla=under)


def _decisions(base: pl.DataFrame, team: np.ndarray, rep: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {"lead_id": base["lead_id"], "team": team.tolist(), "rep_id": rep.tolist()},
        schema={"lead_id": pl.String, "team": pl.String, "rep_id": pl.String},
    )


def _datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / US, tz=UTC)
