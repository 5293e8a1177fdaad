"""The ground truth's conversion model: lead quality and lead×destination fit, as logits.

Every term reads decision-time fields only, and there is no per-lead noise: the probabilities
built from these terms are the best any model of the history can do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.simulation.catalog import (
    INDUSTRIES,
    LANGUAGES,
    PRODUCTS,
    REGIONS,
    REP_SENIORITIES,
    SALES_TEAMS,
)
from models.simulation.features import LeadView


@dataclass(frozen=True)
class TruthParameters:
    """Coefficients of the true conversion model (logit scale unless said otherwise)."""

    intercept: float = -3.3
    employees_per_decade: float = 0.25
    employees_missing: float = -0.15
    seniority: tuple[float, ...] = (0.50, 0.65, 0.45, 0.10, -0.55)  # SENIORITIES order
    seniority_missing: float = -0.35
    source: tuple[float, ...] = (0.35, -0.25, -0.10, -0.55, 0.15, 1.00, 0.50, -0.80)  # SOURCES
    demo_requested: float = 1.30
    pricing_views: float = 0.45  # per log1p(views)
    web_visits: float = 0.26  # per log1p(visits)
    email_opens: float = 0.08  # per log1p(opens)
    industry: tuple[float, ...] = (0.30, 0.25, -0.05, 0.0, -0.20, -0.40, -0.10, 0.05)  # INDUSTRIES
    industry_missing: float = -0.30
    product: tuple[float, ...] = (0.15, 0.0, 0.05, -0.10)  # PRODUCTS
    product_missing: float = -0.10
    free_mail: float = -0.60
    known_account: float = 0.35
    # lead × destination fit
    team_fit_scale: float = 1.0
    seniority_fit_scale: float = 1.0
    talent_scale: float = 1.0
    skill_match: float = 0.20
    region_match: float = 0.10
    language_match: float = 0.15
    language_mismatch: float = -0.10
    account_owner: float = 0.30
    nurture_base: float = 0.35
    nurture_quality_slope: float = 0.55  # extra loss per logit of quality above the reference
    nurture_quality_reference: float = -3.1
    queue_shift: float = -0.35
    # speed to lead and overload (multiplicative on the probability)
    decay_floor: float = 0.70
    decay_hours: float = 2.0
    overload_exponent: float = 0.8
    inactive_extra_hours: float = 24.0
    # deal size on conversion (currency units)
    deal_base: float = 6_000.0
    deal_employees_exponent: float = 0.5
    deal_product: tuple[float, ...] = (1.5, 1.0, 1.1, 0.6)  # PRODUCTS
    deal_value_sigma: float = 0.4  # log-normal spread of a realised deal around its expectation


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)


def _pick(table: tuple[float, ...], code: np.ndarray, missing: float) -> np.ndarray:
    values = np.append(np.asarray(table, dtype=np.float64), missing)
    return values[np.where(code >= 0, code, len(table))]


def filled_employees(view: LeadView) -> np.ndarray:
    """Employees with a missing value read as 40 (a typical small company)."""
    return np.where(np.isnan(view.employees), 40.0, np.maximum(view.employees, 1.0))


def quality_logit(view: LeadView, p: TruthParameters) -> np.ndarray:
    """How likely the lead is to buy at all, whoever works it (before fit, delay, overload)."""
    decades = np.log10(filled_employees(view)) - 2.3
    logit = (
        p.intercept
        + p.employees_per_decade * decades
        + p.employees_missing * np.isnan(view.employees)
        + _pick(p.seniority, view.seniority, p.seniority_missing)
        + _pick(p.source, view.source, 0.0)
        + p.demo_requested * view.demo_requested
        + p.pricing_views * np.log1p(view.pricing_page_views)
        + p.web_visits * np.log1p(view.web_visits)
        + p.email_opens * np.log1p(view.email_opens)
        + _pick(p.industry, view.industry, p.industry_missing)
        + _pick(p.product, view.product, p.product_missing)
        + p.free_mail * view.free_mail
        + p.known_account * view.has_account
    )
    return np.asarray(logit, dtype=np.float64)


def complexity(view: LeadView) -> np.ndarray:
    """Deal complexity: company size in decades around ~300 employees, platform deals harder."""
    size = np.clip(np.log10(filled_employees(view)) - 2.5, -1.5, 1.5)
    return np.asarray(size + 0.25 * (view.product == PRODUCTS.index("platform")), dtype=np.float64)


def team_fit(team: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Logit shift of a sales team (code into SALES_TEAMS) for leads of complexity ``c``.

    Enterprise AEs win big deals and are wasted (and slow to care) on tiny ones; smb is the
    reverse; mid-market is best in the middle.
    """
    enterprise = 0.33 * c - 0.09
    mid_market = 0.09 - 0.15 * np.abs(c - 0.2)
    smb = 0.15 - 0.27 * np.maximum(c + 0.5, 0.0)
    return np.select([team == 0, team == 1, team == 2], [enterprise, mid_market, smb], 0.0)


def seniority_fit(seniority: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Senior reps help large, complex deals a lot and small ones barely; juniors the reverse."""
    large = np.maximum(c, 0.0)
    return np.select(
        [seniority == 2, seniority == 1, seniority == 0],
        [0.03 + 0.25 * large, 0.08 * large, 0.03 - 0.14 * large],
        0.0,
    )


@dataclass(frozen=True)
class RepTable:
    """Per-rep arrays (index = row of the reps frame) used by the truth."""

    rep_id: np.ndarray
    team: np.ndarray  # code into SALES_TEAMS
    seniority: np.ndarray  # code into REP_SENIORITIES
    regions: np.ndarray  # bitmask over REGIONS
    industries: np.ndarray  # bitmask over INDUSTRIES
    languages: np.ndarray  # bitmask over LANGUAGES
    talent: np.ndarray
    response_hours: np.ndarray
    capacity: np.ndarray
    active: np.ndarray

    @classmethod
    def from_frames(cls, reps: pl.DataFrame, traits: pl.DataFrame) -> RepTable:
        joined = reps.join(traits, on="rep_id", how="left", maintain_order="left")
        return cls(
            rep_id=joined["rep_id"].to_numpy(),
            team=np.array([SALES_TEAMS.index(t) for t in joined["team"]]),
            seniority=np.array([REP_SENIORITIES.index(s) for s in joined["seniority"]]),
            regions=_bitmask(joined["regions"], REGIONS),
            industries=_bitmask(joined["industries"], INDUSTRIES),
            languages=_bitmask(joined["languages"], LANGUAGES),
            talent=joined["talent"].to_numpy().astype(np.float64),
            response_hours=joined["response_hours"].to_numpy().astype(np.float64),
            capacity=joined["capacity_per_day"].to_numpy().astype(np.int64),
            active=joined["active"].to_numpy().astype(bool),
        )


def _bitmask(lists: pl.Series, labels: tuple[str, ...]) -> np.ndarray:
    return np.array([sum(1 << labels.index(x) for x in items if x in labels) for items in lists], dtype=np.int64)


def _has(mask: np.ndarray, code: np.ndarray) -> np.ndarray:
    return np.asarray((code >= 0) & ((mask >> np.maximum(code, 0)) & 1).astype(bool), dtype=bool)


def rep_fit(
    view: LeadView, rep: np.ndarray, reps: RepTable, owner: np.ndarray, c: np.ndarray, p: TruthParameters
) -> np.ndarray:
    """Logit fit of each lead with the rep at index ``rep`` (same length as the leads)."""
    spoken = _has(reps.languages[rep], view.language)
    fit = (
        p.team_fit_scale * team_fit(reps.team[rep], c)
        + p.seniority_fit_scale * seniority_fit(reps.seniority[rep], c)
        + p.skill_match * _has(reps.industries[rep], view.industry)
        + p.region_match * _has(reps.regions[rep], view.region)
        + np.where(spoken, p.language_match, p.language_mismatch) * (view.language != 0)
        + p.account_owner * (owner == rep)
        + p.talent_scale * reps.talent[rep]
    )
    return np.asarray(fit, dtype=np.float64)


def nurture_shift(quality: np.ndarray, p: TruthParameters) -> np.ndarray:
    """Nurture costs a strong lead dearly (no human follows up) and a weak one little."""
    return p.nurture_base - p.nurture_quality_slope * np.maximum(quality - p.nurture_quality_reference, 0.0)


def decay(hours: np.ndarray, p: TruthParameters) -> np.ndarray:
    """Speed to lead: the share of conversion left after waiting ``hours`` for a first touch."""
    left = p.decay_floor + (1.0 - p.decay_floor) * np.exp(-np.maximum(hours, 0.0) / p.decay_hours)
    return np.asarray(left, dtype=np.float64)


def overload(load: np.ndarray, capacity: np.ndarray, p: TruthParameters) -> np.ndarray:
    """Penalty on a rep-day's leads when its assignments exceed the rep's capacity."""
    ratio = np.where(load > capacity, capacity / np.maximum(load, 1), 1.0)
    return ratio**p.overload_exponent


def deal_size(view: LeadView, team: np.ndarray, seniority: np.ndarray, c: np.ndarray, p: TruthParameters) -> np.ndarray:
    """Expected revenue of a won deal, given the lead and who closes it.

    Args:
        team: code into TEAMS (0–2 sales, 3 nurture, 4 queue) of the destination.
        seniority: code into REP_SENIORITIES of the rep, -1 without a rep.
    """
    size = p.deal_base * (filled_employees(view) / 20.0) ** p.deal_employees_exponent
    product = _pick(p.deal_product, view.product, 1.0)
    large = np.maximum(c, 0.0)
    by_rep = np.select([seniority == 2, seniority == 0], [1.0 + 0.12 * large, 0.92 - 0.05 * large], 1.0)
    by_team = np.select([team == 0, team == 3, team == 4], [1.0 + 0.08 * large, 0.7, 0.9], 1.0)
    return np.asarray(size * product * by_rep * by_team, dtype=np.float64)
