"""Empirical-Bayes shrinkage of per-rep conversion rates toward their team (pure numpy/scipy).

A rep with 4 conversions out of 10 is not a 40% closer: with few leads a raw rate is mostly
noise. Each team's reps are modelled as draws from a Beta prior whose mean and concentration
are fitted to the team by maximum marginal likelihood (beta-binomial); a rep's estimate is the
posterior mean, pulled toward the team mean in proportion to how little data the rep has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats


@dataclass(frozen=True)
class BetaPrior:
    """Beta(alpha, beta) prior; ``mean`` and ``concentration`` (alpha + beta) are what was fitted."""

    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def concentration(self) -> float:
        return self.alpha + self.beta


@dataclass(frozen=True)
class ShrunkRates:
    """Per-unit posterior means and 95% credible intervals, with the fitted prior and why."""

    rate: NDArray[np.float64]
    low: NDArray[np.float64]
    high: NDArray[np.float64]
    prior: BetaPrior
    note: str


def fit_beta_prior(successes: ArrayLike, trials: ArrayLike) -> tuple[BetaPrior, str]:
    """Maximum marginal likelihood Beta prior for several binomial units.

    Degenerate input gets an explicit answer: with fewer than two units that have trials, or no
    detectable spread between units, the prior is concentrated on the pooled rate (full pooling)
    and the note says so.
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    used = n > 0
    k, n = k[used], n[used]
    pooled = (k.sum() + 0.5) / (n.sum() + 1.0)  # Jeffreys-style: never exactly 0 or 1
    if k.size < 2:
        return _pooled(pooled), "fewer than two units with data: full pooling to the overall rate"

    def negative_log_likelihood(params: NDArray[np.float64]) -> float:
        mean = 1 / (1 + np.exp(-params[0]))
        concentration = np.exp(params[1])
        return float(-stats.betabinom.logpmf(k, n, mean * concentration, (1 - mean) * concentration).sum())

    start = np.array([np.log(pooled / (1 - pooled)), np.log(10.0)])
    result = optimize.minimize(
        negative_log_likelihood, start, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-9}
    )
    mean = float(1 / (1 + np.exp(-result.x[0])))
    concentration = float(np.exp(result.x[1]))
    if not result.success or concentration > 1e6:
        return _pooled(pooled), "no spread between units detectable: full pooling to the overall rate"
    return BetaPrior(
        mean * concentration, (1 - mean) * concentration
    ), "beta-binomial prior fitted by maximum marginal likelihood"


def conservative_prior(successes: ArrayLike, trials: ArrayLike, prior: BetaPrior) -> BetaPrior:
    """The most dispersed prior (smallest concentration) the data do not reject at 95%.

    With a handful of units the spread between them is poorly identified, and the maximum
    likelihood often says "no spread" — intervals built on that point estimate would ignore
    the uncertainty in the prior and undercover. Holding the prior mean, this takes the lower
    end of the concentration's 95% profile-likelihood interval (log-likelihood within 1.92 of
    its maximum), so intervals stay honest when the prior is weakly identified.
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    used = n > 0
    k, n = k[used], n[used]
    if k.size < 2:
        return BetaPrior(prior.mean * 2.0, (1 - prior.mean) * 2.0)  # nothing to learn the spread from
    grid = np.exp(np.linspace(np.log(1.0), np.log(max(prior.concentration, 2.0)), 240))
    mean = prior.mean
    loglik = np.array([stats.betabinom.logpmf(k, n, mean * c, (1 - mean) * c).sum() for c in grid])
    admissible = grid[loglik >= loglik.max() - stats.chi2.ppf(0.95, 1) / 2]
    concentration = float(admissible.min())
    return BetaPrior(mean * concentration, (1 - mean) * concentration)


def shrink_rates(successes: ArrayLike, trials: ArrayLike, confidence: float = 0.95) -> ShrunkRates:
    """Posterior means (under the fitted prior) and equal-tailed credible intervals (under the
    conservative prior of :func:`conservative_prior`) of each unit's rate."""
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    prior, note = fit_beta_prior(k, n)
    a, b = k + prior.alpha, n - k + prior.beta
    wide = conservative_prior(k, n, prior)
    a_wide, b_wide = k + wide.alpha, n - k + wide.beta
    tail = (1 - confidence) / 2
    return ShrunkRates(
        rate=a / (a + b),
        low=stats.beta.ppf(tail, a_wide, b_wide),
        high=stats.beta.ppf(1 - tail, a_wide, b_wide),
        prior=prior,
        note=note + "; intervals use the most dispersed prior the data allow (95% profile likelihood)",
    )


def _pooled(rate: float) -> BetaPrior:
    concentration = 1e6
    return BetaPrior(rate * concentration, (1 - rate) * concentration)
