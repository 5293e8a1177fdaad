"""Capacity-respecting assignment of leads to their best destinations, without a loop over leads."""

from __future__ import annotations

from typing import Literal

import numpy as np


def deferred_acceptance(
    matrix: np.ndarray,
    capacity: np.ndarray,
    day: np.ndarray,
    created_us: np.ndarray,
    priority: Literal["arrival", "probability"] | str = "arrival",
) -> np.ndarray:
    """Give every lead its best destination such that no rep exceeds its capacity on any day.

    Leads propose to their best destination still open to them; each rep-day keeps its
    highest-priority proposers up to capacity and turns the rest away; repeat until stable.
    With one priority order shared by all reps (arrival time) this equals serial dictatorship:
    exactly the online greedy router that takes leads in time order.

    Args:
        matrix: ``(n_leads, n_destinations)`` value of each lead at each destination; the first
            ``len(capacity)`` columns are reps, the rest (nurture, queue) have no capacity.
        capacity: seats per day of each rep column.
        day: each lead's day number (the capacity period).
        created_us: each lead's arrival, for the ``"arrival"`` priority.
        priority: ``"arrival"`` (earliest first) or ``"probability"`` (highest value at that
            rep first: hindsight over the day).

    Returns:
        The chosen column per lead.
    """
    if priority not in ("arrival", "probability"):
        raise ValueError(f"priority: must be 'arrival' or 'probability', got {priority!r}")
    n = matrix.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    day = day - day.min()
    n_days = int(day.max()) + 1
    seats = np.repeat(np.asarray(capacity, dtype=np.int64), n_days)
    # Rank 0 is served first.
    arrival_rank = np.empty(n, dtype=np.float64)
    arrival_rank[np.argsort(created_us, kind="stable")] = np.arange(n)
    banned = np.zeros_like(matrix, dtype=bool)
    choice = matrix.argmax(axis=1)
    while True:
        at_rep = np.flatnonzero(choice < capacity.size)
        key = choice[at_rep] * n_days + day[at_rep]
        rank = arrival_rank[at_rep] if priority == "arrival" else -matrix[at_rep, choice[at_rep]]
        order = np.lexsort((rank, key))
        sorted_key = key[order]
        position = np.arange(sorted_key.size) - np.searchsorted(sorted_key, sorted_key, side="left")
        turned_away = at_rep[order[position >= seats[sorted_key]]]
        if turned_away.size == 0:
            return np.asarray(choice, dtype=np.int64)
        # Each round bans at least one (lead, rep) pair, so this ends; nurture never turns anyone away.
        banned[turned_away, choice[turned_away]] = True
        choice[turned_away] = np.where(banned[turned_away], -np.inf, matrix[turned_away]).argmax(axis=1)
