"""Randomisation by rep or team: cluster-robust variances, and when lead-level results mislead.

Leads routed by the same rep share that rep's skill, capacity and day, so their outcomes are
correlated; when the rep (or team) is the unit of randomisation the interval must treat the
cluster, not the lead, as the independent unit. The difference in means is the OLS slope of
``y ~ 1 + treatment``; its variance is the CR1 sandwich (``statsmodels`` ``cov_type="cluster"``)::

    V = G/(G − 1) · (N − 1)/(N − 2) · (X'X)⁻¹ (Σ_g X_g' e_g e_g' X_g) (X'X)⁻¹

over G clusters and N leads, inference on the normal. Clusters may span both arms (a rep who
works leads of both policies); the covariance of the two arm means is then kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

RandomisationUnit = Literal["lead", "rep", "team"]
FEW_CLUSTERS = 20
"""Below this many clusters the sandwich under-covers; say so."""


@dataclass(frozen=True)
class ClusterRobustMeans:
    """The two arm means with their cluster-robust (CR1) variances and covariance."""

    mean_control: float
    mean_treatment: float
    var_mean_control: float
    var_mean_treatment: float
    covariance: float
    n_clusters: int
    n_shared_clusters: int

    @property
    def var_difference(self) -> float:
        """Variance of ``mean_treatment − mean_control``."""
        return max(self.var_mean_control + self.var_mean_treatment - 2.0 * self.covariance, 0.0)


def cluster_robust_means(
    y_control: ArrayLike, cluster_control: ArrayLike, y_treatment: ArrayLike, cluster_treatment: ArrayLike
) -> ClusterRobustMeans:
    """CR1 sandwich for the regression ``y ~ 1 + treatment`` with the given cluster labels.

    Raises:
        ValueError: with fewer than two clusters, an empty arm, or labels not one per lead.
    """
    y_c, y_t = np.asarray(y_control, dtype=np.float64), np.asarray(y_treatment, dtype=np.float64)
    g_c, g_t = np.asarray(cluster_control), np.asarray(cluster_treatment)
    if g_c.shape != y_c.shape or g_t.shape != y_t.shape:
        raise ValueError("each arm needs one cluster label per outcome")
    if y_c.size == 0 or y_t.size == 0:
        raise ValueError("both arms need leads")
    _, codes = np.unique(np.concatenate([g_c, g_t]), return_inverse=True)
    n_clusters = int(codes.max()) + 1
    if n_clusters < 2:
        raise ValueError("cluster-robust variances need at least two clusters")
    m_c, m_t = float(y_c.mean()), float(y_t.mean())
    treated = np.concatenate([np.zeros(y_c.size), np.ones(y_t.size)])
    residual = np.concatenate([y_c - m_c, y_t - m_t])
    n, n_t = float(residual.size), float(y_t.size)
    bread = np.linalg.inv(np.array([[n, n_t], [n_t, n_t]]))
    scores = np.column_stack(
        [np.bincount(codes, weights=residual, minlength=n_clusters), np.bincount(codes, weights=residual * treated)]
    )
    correction = n_clusters / (n_clusters - 1.0) * (n - 1.0) / (n - 2.0)
    v = correction * bread @ (scores.T @ scores) @ bread
    shared = np.intersect1d(codes[: y_c.size], codes[y_c.size :]).size
    return ClusterRobustMeans(
        m_c,
        m_t,
        float(v[0, 0]),
        float(v[0, 0] + 2.0 * v[0, 1] + v[1, 1]),
        float(v[0, 0] + v[0, 1]),
        n_clusters,
        int(shared),
    )


@dataclass(frozen=True)
class InterferenceCheck:
    """Whether lead-level results may be biased by arms sharing reps, in plain words."""

    at_risk: bool
    message: str
    notes: tuple[str, ...] = field(default_factory=tuple)


def interference_risk(
    unit: RandomisationUnit, *, reps_serve_both_arms: bool, n_clusters: int | None = None
) -> InterferenceCheck:
    """Say whether the experiment's design lets one arm's routing change the other arm's outcomes.

    Args:
        unit: what was randomised: each lead, each rep (all of a rep's leads follow one policy),
            or each team.
        reps_serve_both_arms: whether any rep works leads of both arms (shared capacity, queue or
            round-robin state).
        n_clusters: reps or teams in the experiment, when randomised by cluster.
    """
    notes: list[str] = []
    if unit != "lead" and n_clusters is not None and n_clusters < FEW_CLUSTERS:
        notes.append(
            f"Only {n_clusters} {unit}s were randomised: cluster-robust intervals are too narrow with fewer than "
            f"{FEW_CLUSTERS} clusters; treat borderline results as inconclusive."
        )
    if unit != "lead":
        notes.append(f"Analyse with the {unit} as the cluster (ArmData.cluster) so intervals count {unit}s, not leads.")
    if reps_serve_both_arms:
        what = "each lead" if unit == "lead" else f"each {unit}"
        message = (
            f"Randomised by {what}, but reps work leads of both arms. A policy that sends a rep more or harder "
            "leads slows how fast that rep works the other arm's leads too, so the measured lift mixes the "
            "policy's effect with spill-over between arms and may be biased in either direction. Randomise by rep "
            "or team with each rep in one arm only, or read the lead-level result as indicative."
        )
        return InterferenceCheck(True, message, tuple(notes))
    if unit == "lead":
        message = (
            "Randomised by lead with separate reps per arm: capacity is not shared, so leads in one arm do not "
            "affect the other's outcomes."
        )
    else:
        message = (
            f"Randomised by {unit} and no rep works both arms: each arm's capacity is its own, so there is no "
            "spill-over between arms."
        )
    return InterferenceCheck(False, message, tuple(notes))
