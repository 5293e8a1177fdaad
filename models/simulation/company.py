"""Assemble the whole simulated company: world, leads, logged routing, outcomes, truth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from models.simulation.config import SimulationConfig, streams
from models.simulation.leads import simulate_leads
from models.simulation.logging_policy import LoggingPolicy
from models.simulation.outcomes import sample_outcomes
from models.simulation.truth import GroundTruth
from models.simulation.world import World, build_world


@dataclass(frozen=True)
class SimulatedCompany:
    """A B2B sales org with a known ground truth and a year of logged history.

    Attributes:
        config: what was simulated.
        now: end of history (``start + months``); outcomes after it are not emitted.
        teams: ``team``, ``kind`` (sales, nurture, queue), ``description``.
        reps: canonical rep columns plus ``timezone``, ``languages``, ``working_hours``.
        absences: ``rep_id``, ``starts_on``, ``ends_on`` (inclusive), ``reason``.
        accounts: canonical account columns.
        leads: clean leads sorted by ``created_at``, canonical columns plus engagement extras.
        decisions: the logged historical routing, one per lead, with propensities.
        outcomes: ``event_id``, ``lead_id``, ``event``, ``occurred_at``, ``value``.
        truth: the true conversion model.
        logging_policy: the policy that produced ``decisions``.
    """

    config: SimulationConfig
    now: datetime
    teams: pl.DataFrame
    reps: pl.DataFrame
    absences: pl.DataFrame
    accounts: pl.DataFrame
    leads: pl.DataFrame
    decisions: pl.DataFrame
    outcomes: pl.DataFrame
    truth: GroundTruth
    logging_policy: LoggingPolicy

    def matured(self) -> pl.DataFrame:
        """Leads whose conversion window closed by ``now``, with ``converted`` (bool) and
        ``revenue`` (0.0 unless converted): the labelled history a model may learn from."""
        cutoff = self.now - timedelta(days=self.config.conversion_window_days)
        won = self.outcomes.filter(pl.col("event") == "converted").select("lead_id", pl.col("value").alias("revenue"))
        return (
            self.leads.filter(pl.col("created_at") <= cutoff)
            .join(won, on="lead_id", how="left", maintain_order="left")
            .with_columns(pl.col("revenue").is_not_null().alias("converted"), pl.col("revenue").fill_null(0.0))
        )


DEFAULT_CONFIG = SimulationConfig()
"""20,000 leads over 12 months from 2025-11-01, seed 7, 15% exploration."""


def ground_truth(config: SimulationConfig = DEFAULT_CONFIG) -> GroundTruth:
    """The truth of the company ``simulate_company(config)`` builds, without simulating leads.

    The world (reps, absences, accounts, hidden rep traits) depends only on the seed, so this is
    cheap (about 0.1 s) and gives exactly ``simulate_company(config).truth``.
    """
    world = build_world(config, streams(config.seed))
    return _truth(config, world)


def _truth(config: SimulationConfig, world: World) -> GroundTruth:
    return GroundTruth(
        reps=world.reps,
        rep_traits=world.rep_traits,
        absences=world.absences,
        accounts=world.accounts,
        start=config.start_utc,
        now=config.now,
    )


def simulate_company(config: SimulationConfig = DEFAULT_CONFIG) -> SimulatedCompany:
    """Simulate the demo company: deterministic for a config, vectorised, seconds for 1M leads.

    Args:
        config: what to simulate; the default is 20,000 leads over 12 months, seed 7.
    """
    rngs = streams(config.seed)
    world = build_world(config, rngs)
    truth = _truth(config, world)
    policy = LoggingPolicy(world.reps, world.absences, config.exploration)
    leads = simulate_leads(config, world, rngs["leads"])
    decisions = policy.sample(leads, rngs["logging"])
    evaluation = truth.evaluate(leads, decisions)
    outcomes = sample_outcomes(
        leads,
        evaluation,
        now=config.now,
        window_days=config.conversion_window_days,
        value_sigma=truth.parameters.deal_value_sigma,
        rng=rngs["outcomes"],
    )
    return SimulatedCompany(
        config=config,
        now=config.now,
        teams=world.teams,
        reps=world.reps,
        absences=world.absences,
        accounts=world.accounts,
        leads=leads,
        decisions=decisions,
        outcomes=outcomes,
        truth=truth,
        logging_policy=policy,
    )
