"""Shared types of the policy core: injected scorers and typed decisions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import polars as pl


class LeadScorer(Protocol):
    """Gives each lead a 0–100 score (higher converts better). Without one, the ``score`` column.

    A scorer may also have ``score_one(lead: Mapping[str, Any]) -> float`` (see
    :class:`OneLeadScorer`): the same score for one lead without building a frame, which
    :meth:`Policy.route_one` then uses. It must equal ``score(pl.DataFrame([lead]))[0]``.
    """

    def score(self, leads: pl.DataFrame) -> np.ndarray: ...


class OneLeadScorer(Protocol):
    """The optional fast path of a :class:`LeadScorer` for one lead (a mapping of fields)."""

    def score_one(self, lead: Mapping[str, Any]) -> float: ...


class FitScorer(Protocol):
    """Expected value of giving each lead to each rep: an ``(n_leads, len(rep_ids))`` array.

    Optionally ``expected_value_one(lead: Mapping[str, Any], rep_ids) -> np.ndarray`` (see
    :class:`OneLeadFit`): the row for one lead, equal to ``expected_value(pl.DataFrame([lead]),
    rep_ids)[0]``, used by :meth:`Policy.route_one` instead of building a one-row frame.
    """

    def expected_value(self, leads: pl.DataFrame, rep_ids: Sequence[str]) -> np.ndarray: ...


class OneLeadFit(Protocol):
    """The optional fast path of a :class:`FitScorer` for one lead."""

    def expected_value_one(self, lead: Mapping[str, Any], rep_ids: Sequence[str]) -> np.ndarray: ...


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
