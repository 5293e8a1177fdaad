"""Shared types of the policy core: injected scorers and typed decisions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import polars as pl


class LeadScorer(Protocol):
    """Gives each lead a 0–100 score (higher converts better). Without one, the ``score`` column."""

    def score(self, leads: pl.DataFrame) -> np.ndarray: ...


class FitScorer(Protocol):
    """Expected value of giving each lead to each rep: an ``(n_leads, len(rep_ids))`` array."""

    def expected_value(self, leads: pl.DataFrame, rep_ids: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Decision:
    """One routed lead.

    Attributes:
        action: ``assign`` (a rep), ``inbox`` (a sales team, nobody eligible), ``nurture``, ``queue``.
        propensity: probability the policy gave this destination in the state it was decided in.
        reasons: JSON text: rule fired, its condition, method and why, exploration, fallbacks.
    """

    lead_id: str
    team: str
    rep_id: str | None
    action: str
    propensity: float
    score: float | None
    rule: str
    method: str | None
    notify: bool
    reasons: str
