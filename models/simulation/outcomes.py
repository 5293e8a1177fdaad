"""Outcome events sampled from the ground truth at the routing that actually happened.

Each lead gets a funnel consistent with itself: ``contacted`` at first touch (not for nurture),
then possibly ``meeting`` ⊃ ``qualified`` ⊃ ``converted``; a lead that does not convert is
``lost``. Conversion is one Bernoulli draw with the truth's probability, so the matured history
is calibrated to the truth. Every event of a lead falls within ``conversion_window_days`` of its
creation; events after ``now`` are not emitted (not matured yet).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from models.simulation.calendar import US_PER_DAY
from models.simulation.names import labels, sequential_ids
from models.simulation.truth import NURTURE, Evaluation

EVENTS: tuple[str, ...] = ("contacted", "meeting", "qualified", "converted", "lost")
QUALIFIED_TO_WON = 0.35
"""Among qualified leads about this share convert (when the probability allows)."""
MEETING_TO_WON = 0.2


def sample_outcomes(
    leads: pl.DataFrame,
    evaluation: Evaluation,
    now: datetime,
    window_days: int,
    value_sigma: float,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Draw the outcome events of every lead under its realised routing.

    Args:
        leads: the leads, aligned with ``evaluation``.
        evaluation: the truth's evaluation of the realised decisions.
        now: end of history; later events are dropped.
        window_days: terminal events happen within this many days of creation.
        value_sigma: log-normal spread of a won deal's value around its expectation.
        rng: the outcomes stream.

    Returns:
        ``event_id``, ``lead_id``, ``event``, ``occurred_at``, ``value``, sorted by time.
    """
    n = leads.height
    p = evaluation.probability
    converted = rng.random(n) < p
    # Funnel stages nest: a converted lead was qualified, a qualified one had a meeting.
    qualified_share = np.minimum(0.95, p / QUALIFIED_TO_WON)
    meeting_share = np.maximum(qualified_share, np.minimum(0.98, p / MEETING_TO_WON))
    qualified = converted | (rng.random(n) < (qualified_share - p) / np.maximum(1.0 - p, 1e-12))
    meeting = qualified | (rng.random(n) < (meeting_share - qualified_share) / np.maximum(1.0 - qualified_share, 1e-12))
    day = float(US_PER_DAY)
    to_meeting = rng.uniform(0.5, 14.0, n) * day
    to_qualified = to_meeting + rng.uniform(1.0, 21.0, n) * day
    # Won 7–90 days and lost 14–120 days after first touch, always after the funnel before it.
    to_converted = np.clip(to_qualified + rng.uniform(1.0, 55.0, n) * day, 7 * day, 90 * day)
    to_lost = np.maximum(rng.uniform(14.0, 120.0, n) * day, np.where(qualified, to_qualified, to_meeting) + day)
    value = evaluation.deal_size * np.exp(rng.normal(-0.5 * value_sigma**2, value_sigma, n))

    created = leads["created_at"].cast(pl.Datetime("us", "UTC")).dt.epoch("us").to_numpy().astype(np.int64)
    touch = evaluation.first_touch_us.astype(np.float64)
    # Squeeze a lead's whole funnel into its conversion window (rare: only very late touches).
    limit = created + window_days * day - 3_600_000_000.0
    terminal = np.where(converted, to_converted, to_lost)
    scale = np.clip((limit - touch) / terminal, 0.0, 1.0)

    def at(offset: np.ndarray) -> np.ndarray:
        # Whole seconds, as a CRM records them.
        moment = (np.minimum(touch, limit) + offset * scale).astype(np.int64) // 1_000_000 * 1_000_000
        return np.asarray(moment, dtype=np.int64)

    parts = [
        (evaluation.team != NURTURE, 0, at(np.zeros(n)), None),
        (meeting, 1, at(to_meeting), None),
        (qualified, 2, at(to_qualified), None),
        (converted, 3, at(to_converted), value),
        (~converted, 4, at(to_lost), None),
    ]
    lead_rows = np.concatenate([np.flatnonzero(mask) for mask, *_ in parts])
    event = np.concatenate([np.full(int(mask.sum()), code) for mask, code, *_ in parts])
    when = np.concatenate([moment[mask] for mask, _, moment, _ in parts])
    values = np.concatenate(
        [(v[mask] if v is not None else np.full(int(mask.sum()), np.nan)) for mask, _, _, v in parts]
    )
    now_us = int(now.timestamp() * 1_000_000)
    keep = when < now_us
    lead_rows, event, when, values = lead_rows[keep], event[keep], when[keep], values[keep]
    order = np.lexsort((event, lead_rows, when))
    count = order.size
    return pl.DataFrame(
        {
            "event_id": sequential_ids("E", count, 8),
            "lead_id": leads["lead_id"].cast(pl.String).gather(lead_rows[order]),
            "event": labels(EVENTS, event[order]),
            "occurred_at": pl.Series(when[order]).cast(pl.Datetime("us", "UTC")),
            "value": pl.Series(np.round(values[order], 2)).fill_nan(None),
        },
        schema={
            "event_id": pl.String,
            "lead_id": pl.String,
            "event": pl.String,
            "occurred_at": pl.Datetime("us", "UTC"),
            "value": pl.Float64,
        },
    )
