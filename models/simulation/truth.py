"""The ground truth: the exact conversion probability of any routing of any set of leads.

``GroundTruth`` is a pure function of decision-time lead fields and destinations. The parts that
depend on the routing as a whole (each rep's load on each day, hence their response time and any
overload) are derived from the decisions handed in, so the value of a whole routing is exact.

Conventions:
    * ``decisions`` are joined to ``leads`` on ``lead_id``: their order does not matter, every lead
      needs exactly one decision, decisions for other leads are ignored. Results align with the
      rows of ``leads``.
    * A rep's *day* is the UTC calendar date of the lead's ``created_at``; the load of a rep-day is
      the number of those leads routed to the rep.
    * A decision naming a rep is worked by that rep (the rep's team wins over a different
      ``team``); a sales team without a rep is a team inbox, swept like the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import numpy as np
import polars as pl

from models.simulation.calendar import (
    US_PER_HOUR,
    WorkingTime,
    parse_working_hours,
    queue_sweeps,
    queue_touch,
    span_for,
    working_time,
)
from models.simulation.catalog import REGION_TIMEZONES, REGIONS, SALES_TEAMS, TEAMS
from models.simulation.features import LeadView, lead_view
from models.simulation.fit import (
    RepTable,
    TruthParameters,
    complexity,
    deal_size,
    decay,
    nurture_shift,
    overload,
    quality_logit,
    rep_fit,
    sigmoid,
    team_fit,
)
from models.simulation.oracle import deferred_acceptance

NURTURE, QUEUE = TEAMS.index("nurture"), TEAMS.index("queue")


@dataclass(frozen=True)
class PolicyValue:
    """The true value of a routing. With no leads every figure is 0 (not NaN)."""

    expected_conversions: float
    conversion_rate: float
    expected_revenue: float
    n_leads: int


@dataclass(frozen=True)
class Evaluation:
    """Everything the truth derives for one routing, aligned with the leads' rows.

    Attributes:
        probability: conversion probability.
        first_touch_us: first touch instant (µs since epoch, UTC).
        delay_hours: hours from ``created_at`` to first touch.
        load: the rep's number of leads that day (0 without a rep).
        deal_size: expected revenue if the lead converts.
        team: code into ``TEAMS`` of the destination; ``rep``: row of the reps frame, -1 if none.
    """

    probability: np.ndarray
    first_touch_us: np.ndarray
    delay_hours: np.ndarray
    load: np.ndarray
    deal_size: np.ndarray
    team: np.ndarray
    rep: np.ndarray

    @property
    def expected_revenue(self) -> np.ndarray:
        return np.asarray(self.probability * self.deal_size, dtype=np.float64)


class GroundTruth:
    """The simulated company's true conversion model (see the module docstring for conventions).

    Args:
        reps: the reps frame (canonical columns plus ``timezone`` and ``working_hours``).
        rep_traits: hidden ``rep_id``, ``talent``, ``response_hours``.
        absences: ``rep_id``, ``starts_on``, ``ends_on`` (inclusive local dates).
        accounts: ``account_id``, ``owner_rep_id``.
        start, now: the span of history (the calendar is built around it and any lead times).
        parameters: coefficients of the model.
    """

    def __init__(
        self,
        reps: pl.DataFrame,
        rep_traits: pl.DataFrame,
        absences: pl.DataFrame,
        accounts: pl.DataFrame,
        start: datetime,
        now: datetime,
        parameters: TruthParameters | None = None,
    ) -> None:
        self.parameters = parameters or TruthParameters()
        self.reps = reps
        self.rep_traits = rep_traits
        self.absences = absences
        self.accounts = accounts
        self.start, self.now = start, now
        self._table = RepTable.from_frames(reps, rep_traits)
        self._rep_index = {rep_id: i for i, rep_id in enumerate(reps["rep_id"])}
        self._owner = {
            a: self._rep_index.get(o, -1) for a, o in accounts.select("account_id", "owner_rep_id").iter_rows()
        }
        self._timezones = reps["timezone"].to_list()
        self._hours = [parse_working_hours(h) for h in reps["working_hours"]]
        self._absent_days = {
            rep_id: np.concatenate([np.arange(np.datetime64(s, "D"), np.datetime64(e, "D") + 1) for s, e in rows])
            for rep_id, rows in _absence_rows(absences).items()
        }
        self._anchor = (start.date(), now.date())
        self._calendars: dict[tuple[date, date], tuple[list[WorkingTime | None], list[np.ndarray]]] = {}

    # -- public API -------------------------------------------------------------------------

    def destinations(self) -> pl.DataFrame:
        """Every destination a lead can be routed to: each active rep, then nurture and queue.

        Returns:
            ``team``, ``rep_id`` (null for nurture and queue), in the column order of
            :meth:`conversion_matrix`.
        """
        active = self.reps.filter(pl.col("active")).select("team", "rep_id")
        teams = pl.DataFrame({"team": ["nurture", "queue"], "rep_id": [None, None]}, schema=active.schema)
        return pl.concat([active, teams])

    def evaluate(
        self, leads: pl.DataFrame, decisions: pl.DataFrame, handed_over_us: np.ndarray | None = None
    ) -> Evaluation:
        """Derive loads, first touches, probabilities and deal sizes for a whole routing.

        ``handed_over_us`` (µs since epoch, aligned with ``leads``) is when each lead reached its
        destination, if later than ``created_at`` — e.g. a re-assignment after an SLA breach: the
        destination's response starts then, while speed-to-lead still counts from creation.
        """
        view = lead_view(leads)
        rep, team = self._resolve(leads, decisions)
        load = self._load(view, rep)
        touch = self._touch(view, rep, team, load, handed_over_us)
        probability, deal = self._probability(view, rep, team, load, touch)
        return Evaluation(
            probability=probability,
            first_touch_us=touch,
            delay_hours=(touch - view.created_us) / US_PER_HOUR,
            load=load,
            deal_size=deal,
            team=team,
            rep=rep,
        )

    def conversion_probability(self, leads: pl.DataFrame, decisions: pl.DataFrame) -> np.ndarray:
        """True conversion probability of each lead under the given routing.

        Args:
            leads: lead frame (decision-time columns, see ``features.REQUIRED_LEAD_COLUMNS``).
            decisions: ``lead_id``, ``team``, ``rep_id``; exactly one per lead, any order.
        """
        return self.evaluate(leads, decisions).probability

    def first_touch_delay_hours(self, leads: pl.DataFrame, decisions: pl.DataFrame) -> np.ndarray:
        """Hours from creation to the destination's first touch (0 for nurture)."""
        return self.evaluate(leads, decisions).delay_hours

    def expected_revenue(self, leads: pl.DataFrame, decisions: pl.DataFrame) -> np.ndarray:
        """Probability of conversion times the expected deal size, per lead."""
        return self.evaluate(leads, decisions).expected_revenue

    def policy_value(self, leads: pl.DataFrame, decisions: pl.DataFrame) -> PolicyValue:
        """Expected conversions, conversion rate and revenue of a whole routing."""
        evaluation = self.evaluate(leads, decisions)
        n = int(evaluation.probability.size)
        conversions = float(evaluation.probability.sum())
        return PolicyValue(
            expected_conversions=conversions,
            conversion_rate=conversions / n if n else 0.0,
            expected_revenue=float(evaluation.expected_revenue.sum()),
            n_leads=n,
        )

    def counterfactual_probability(
        self, leads: pl.DataFrame, decisions: pl.DataFrame, logged: pl.DataFrame
    ) -> np.ndarray:
        """No-interference value: each lead moved *alone* to its destination in ``decisions``.

        Every other lead stays where ``logged`` put it, so a rep-day's load (hence overload and
        response delay) is the logged load, plus this lead when it was logged elsewhere:
        ``load_i = N_logged(rep_i, day_i) + 1[logged rep of i != rep_i]``. This is the estimand
        off-policy estimators built on logged outcomes target; :meth:`conversion_probability`
        (the routing deployed as a whole, its own loads) is the deployed value. For
        ``decisions == logged`` both agree exactly.
        """
        view = lead_view(leads)
        rep, team = self._resolve(leads, decisions)
        logged_rep, _ = self._resolve(leads, logged)
        load = np.zeros(view.size)
        with_rep = rep >= 0
        if with_rep.any():
            day = view.day - view.day.min()
            span = int(day.max()) + 1
            counts = np.bincount((logged_rep * span + day)[logged_rep >= 0], minlength=len(self._rep_index) * span)
            load[with_rep] = counts[(rep * span + day)[with_rep]] + (logged_rep != rep)[with_rep]
        touch = self._touch(view, rep, team, load)
        return self._probability(view, rep, team, load, touch)[0]

    def quality(self, leads: pl.DataFrame) -> np.ndarray:
        """The destination-free part of the conversion logit (lead quality)."""
        return quality_logit(lead_view(leads), self.parameters)

    def conversion_matrix(self, leads: pl.DataFrame, load: float | np.ndarray | None = None) -> np.ndarray:
        """Probability for every (lead, destination) pair under an assumed load.

        Args:
            leads: lead frame.
            load: the number of leads each rep handles on the lead's day, this lead included:
                a scalar, or one value per active rep (column order of :meth:`destinations`).
                ``None`` means 1: each rep otherwise idle, hence no overload.

        Returns:
            Array of shape ``(n_leads, n_destinations)``, columns as in :meth:`destinations`.
        """
        view = lead_view(leads)
        active = np.flatnonzero(self._table.active)
        loads = np.broadcast_to(np.asarray(1.0 if load is None else load, dtype=np.float64), active.shape)
        quality = quality_logit(view, self.parameters)
        c = complexity(view)
        owner = self._owners(view)
        out = np.empty((view.size, active.size + 2))
        calendars, _ = self._calendar(view)
        for column, r in enumerate(active):
            rep = np.full(view.size, r)
            response = self._response_us(rep, np.full(view.size, loads[column]))
            touch = _advance(calendars[r], view.created_us, response)
            logit = quality + rep_fit(view, rep, self._table, owner, c, self.parameters)
            hours = (touch - view.created_us) / US_PER_HOUR
            penalty = overload(np.full(view.size, loads[column]), self._table.capacity[rep], self.parameters)
            out[:, column] = sigmoid(logit) * decay(hours, self.parameters) * penalty
        for column, team in ((active.size, NURTURE), (active.size + 1, QUEUE)):
            teams = np.full(view.size, team)
            none = np.full(view.size, -1)
            touch = self._touch(view, none, teams, np.zeros(view.size))
            out[:, column] = self._probability(view, none, teams, np.zeros(view.size), touch)[0]
        return out

    def oracle_decisions(
        self,
        leads: pl.DataFrame,
        respect_capacity: bool = True,
        priority: Literal["arrival", "probability"] = "arrival",
    ) -> pl.DataFrame:
        """The truth-best destination per lead, optionally never exceeding a rep's capacity.

        Without capacity every lead simply takes its best destination (overload ignored when
        choosing, though :meth:`policy_value` will charge it). With capacity, a rep-day's seats
        go by ``priority``: ``"arrival"`` gives exactly the online greedy router that routes
        leads in time order to the best rep with a seat left (what a perfect model could do);
        ``"probability"`` gives seats to the leads the rep converts best (hindsight over the
        day, an upper-bound style router). Computed as deferred acceptance, so no loop over leads.

        Returns:
            ``lead_id``, ``team``, ``rep_id``, ``probability`` (from :meth:`conversion_matrix`).
        """
        view = lead_view(leads)
        matrix = self.conversion_matrix(leads)
        n = matrix.shape[0]
        choice = matrix.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
        if respect_capacity and n:
            seats = self._table.capacity[np.flatnonzero(self._table.active)]
            choice = deferred_acceptance(matrix, seats, view.day, view.created_us, priority)
        picked = self.destinations().select(pl.all().gather(choice))
        return pl.DataFrame({"lead_id": view.lead_id}).with_columns(
            picked["team"], picked["rep_id"], pl.Series("probability", matrix[np.arange(n), choice], dtype=pl.Float64)
        )

    # -- internals --------------------------------------------------------------------------

    def _resolve(self, leads: pl.DataFrame, decisions: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        missing = [c for c in ("lead_id", "team") if c not in decisions.columns]
        if missing:
            raise ValueError(f"decisions: missing column(s) {', '.join(missing)}")
        chosen = decisions.select(
            pl.col("lead_id").cast(pl.String),
            pl.col("team").cast(pl.String),
            (pl.col("rep_id") if "rep_id" in decisions.columns else pl.lit(None)).cast(pl.String).alias("rep_id"),
        ).filter(pl.col("lead_id").is_in(leads["lead_id"].cast(pl.String).implode()))
        duplicated = chosen.filter(pl.col("lead_id").is_duplicated())["lead_id"]
        if duplicated.len():
            raise ValueError(f"decisions: more than one decision for lead(s) {', '.join(duplicated.unique().head(3))}")
        joined = leads.select(pl.col("lead_id").cast(pl.String)).join(
            chosen.with_columns(pl.lit(True).alias("_decided")), on="lead_id", how="left", maintain_order="left"
        )
        undecided = joined.filter(pl.col("_decided").is_null())["lead_id"]
        if undecided.len():
            raise ValueError(f"decisions: no decision for {undecided.len()} lead(s), e.g. {undecided[0]}")
        codes = joined.select(
            _codes("rep_id", self._rep_index).alias("rep"),
            _codes("team", {t: i for i, t in enumerate(TEAMS)}).alias("team"),
        )
        rep, team = codes["rep"], codes["team"]
        for coded, column in ((rep, "rep_id"), (team, "team")):
            unknown = joined.filter(coded == -2)[column]
            if unknown.len():
                raise ValueError(f"decisions: unknown {column} '{unknown[0]}'")
        rep_codes = rep.to_numpy()
        team_codes = team.to_numpy().copy()
        with_rep = rep_codes >= 0
        team_codes[with_rep] = self._table.team[rep_codes[with_rep]]
        if (team_codes < 0).any():
            raise ValueError("decisions: a decision has neither a team nor a rep_id")
        return rep_codes, team_codes

    def _owners(self, view: LeadView) -> np.ndarray:
        return view.account_id.replace_strict(self._owner, default=-1, return_dtype=pl.Int64).fill_null(-1).to_numpy()

    def _load(self, view: LeadView, rep: np.ndarray) -> np.ndarray:
        with_rep = rep >= 0
        if not with_rep.any():
            return np.zeros(view.size)
        day = view.day - view.day.min()
        key = rep * (int(day.max()) + 1) + day
        counts = np.bincount(key[with_rep])
        return np.where(with_rep, counts[np.where(with_rep, key, 0)], 0).astype(np.float64)

    def _response_us(self, rep: np.ndarray, load: np.ndarray) -> np.ndarray:
        """Working time a rep needs to reach a lead: slower the fuller their day."""
        hours = self._table.response_hours[rep] * (1.0 + load / np.maximum(self._table.capacity[rep], 1))
        return np.asarray(np.round(hours * US_PER_HOUR), dtype=np.int64)

    def _calendar(self, view: LeadView) -> tuple[list[WorkingTime | None], list[np.ndarray]]:
        first, last = span_for(view.created_us, *self._anchor)
        key = (first, last)
        if key not in self._calendars:
            rep_times: list[WorkingTime | None] = []
            for i, rep_id in enumerate(self._table.rep_id):
                if not self._table.active[i]:
                    rep_times.append(None)
                    continue
                absent = self._absent_days.get(rep_id, np.array([], dtype="datetime64[D]"))
                rep_times.append(working_time(first, last, self._timezones[i], self._hours[i], absent))
            sweeps = [queue_sweeps(first, last, REGION_TIMEZONES[region]) for region in REGIONS]
            self._calendars[key] = (rep_times, sweeps)
        return self._calendars[key]

    def _touch(
        self,
        view: LeadView,
        rep: np.ndarray,
        team: np.ndarray,
        load: np.ndarray,
        handed_over_us: np.ndarray | None = None,
    ) -> np.ndarray:
        calendars, sweeps = self._calendar(view)
        arrival = view.created_us if handed_over_us is None else np.maximum(view.created_us, handed_over_us)
        touch = arrival.copy()  # nurture: the first email goes out at once
        swept = (rep < 0) & (team != NURTURE)
        inactive = (rep >= 0) & ~self._table.active[np.maximum(rep, 0)]
        region = np.maximum(view.region, 0)  # a lead without a region is queued in NA
        for code in range(len(REGIONS)):
            at = (swept | inactive) & (region == code)
            touch[at] = queue_touch(arrival[at], sweeps[code])
        # A lead given to a rep who left sits unseen until someone notices and sweeps it.
        touch[inactive] += int(self.parameters.inactive_extra_hours * US_PER_HOUR)
        for r in np.unique(rep[(rep >= 0) & ~inactive]):
            at = rep == r
            touch[at] = _advance(calendars[r], arrival[at], self._response_us(rep[at], load[at]))
        return touch

    def _probability(
        self, view: LeadView, rep: np.ndarray, team: np.ndarray, load: np.ndarray, touch: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        p = self.parameters
        quality = quality_logit(view, p)
        c = complexity(view)
        worked = (rep >= 0) & self._table.active[np.maximum(rep, 0)]
        inactive = (rep >= 0) & ~worked
        logit = quality.copy()
        at = np.flatnonzero(worked)
        worked_view = view.subset(at)
        logit[at] += rep_fit(worked_view, rep[at], self._table, self._owners(worked_view), c[at], p)
        inbox = (rep < 0) & (team < len(SALES_TEAMS))
        logit[inbox] += p.team_fit_scale * team_fit(team[inbox], c[inbox])
        logit[team == NURTURE] += nurture_shift(quality[team == NURTURE], p)
        logit[((team == QUEUE) & (rep < 0)) | inactive] += p.queue_shift
        hours = (touch - view.created_us) / US_PER_HOUR
        penalty = np.ones(view.size)
        penalty[at] = overload(load[at], self._table.capacity[rep[at]], p)
        probability = sigmoid(logit) * decay(hours, p) * penalty
        deal_team = np.where(inactive, QUEUE, team)
        seniority = np.where(worked, self._table.seniority[np.maximum(rep, 0)], -1)
        return probability, deal_size(view, deal_team, seniority, c, p)


def _advance(calendar: WorkingTime | None, arrival: np.ndarray, response: np.ndarray) -> np.ndarray:
    if calendar is None:
        raise ValueError("an inactive rep has no working time")
    return calendar.advance(arrival, response)


def _absence_rows(absences: pl.DataFrame) -> dict[str, list[tuple[date, date]]]:
    rows: dict[str, list[tuple[date, date]]] = {}
    for rep_id, starts_on, ends_on in absences.select("rep_id", "starts_on", "ends_on").iter_rows():
        rows.setdefault(rep_id, []).append((starts_on, ends_on))
    return rows


def _codes(column: str, mapping: dict[str, int]) -> pl.Expr:
    """Code of each value: -1 when null, -2 when not in ``mapping``."""
    coded = pl.col(column).replace_strict(mapping, default=-2, return_dtype=pl.Int64)
    return pl.when(pl.col(column).is_null()).then(pl.lit(-1, pl.Int64)).otherwise(coded)
