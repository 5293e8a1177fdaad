"""The KPI core on hand-made histories, and rep shrinkage against the simulated truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from models.kpi import cohorts, funnel, rep_performance, speed_to_lead_curve
from models.shrinkage import fit_beta_prior, shrink_rates
from models.simulation import SimulationConfig, simulate_company

T0 = datetime(2025, 1, 6, tzinfo=UTC)


def history(rows: list[dict[str, object]]) -> pl.DataFrame:
    base = {"source": "web", "region": "NA", "industry": "saas", "employees": 10, "country": "US", "team": "smb",
            "rep_id": "r1", "minutes_to_touch": None, "contacted": False, "meeting": False, "qualified": False,
            "converted": False, "final": False, "revenue": 0.0}  # fmt: skip
    data = [{"lead_id": f"L{i}", "created_at": T0, **base, **row} for i, row in enumerate(rows)]
    return pl.DataFrame(data, schema_overrides={"minutes_to_touch": pl.Float64, "created_at": pl.Datetime("us", "UTC")})


def test_speed_to_lead_curve_bands_and_never_contacted() -> None:
    frame = history(
        [
            {"minutes_to_touch": 2.0, "final": True, "converted": True},
            {"minutes_to_touch": 3.0, "final": True},
            {"minutes_to_touch": 100.0, "final": True},
            {"final": True},
            {"minutes_to_touch": 1.0},  # open: not counted
        ]
    )
    curve = speed_to_lead_curve(frame)
    assert curve.select("time_to_first_touch", "final_outcomes", "converted").rows() == [
        ("< 5 min", 2, 1),
        ("1-4 h", 1, 0),
        ("never contacted", 1, 0),
    ]
    oracle = stats.binomtest(1, 2).proportion_ci(method="wilson")
    assert curve["ci_low"][0] == pytest.approx(oracle.low)


def test_funnel_shares_by_size_band() -> None:
    frame = history(
        [
            {"employees": 10, "contacted": True, "meeting": True},
            {"employees": 20, "contacted": True},
            {"employees": 5000, "contacted": True, "meeting": True, "qualified": True, "converted": True},
            {"employees": None},
        ]
    )
    table = {r["group"]: r for r in funnel(frame, "size").to_dicts()}
    assert (table["1-49"]["leads"], table["1-49"]["contacted"], table["1-49"]["meeting_share"]) == (2, 2, 0.5)
    assert table["5000+"]["converted_share"] == 1.0
    assert table["(unknown)"]["leads"] == 1


def test_cohorts_mark_weeks_whose_window_has_not_closed() -> None:
    frame = history([{"final": True, "converted": True}, {"created_at": T0 + timedelta(days=60)}])
    table = cohorts(frame, window_days=30, now=T0 + timedelta(days=70))
    assert table["matured"].to_list() == [True, False]
    assert table["conversion_rate"].to_list() == [1.0, None]


def test_shrinkage_handles_degenerate_input_explicitly() -> None:
    prior, note = fit_beta_prior([3], [10])
    assert "full pooling" in note
    assert prior.mean == pytest.approx(3.5 / 11)
    same = shrink_rates([5, 5, 5, 5], [50, 50, 50, 50])
    assert np.allclose(same.rate, 0.1, atol=0.01)
    assert (same.low < same.rate).all()
    assert (same.rate < same.high).all()


def test_shrunk_rep_rates_are_closer_to_the_truth_than_raw_rates() -> None:
    """Over several simulated companies with thin data per rep, empirical Bayes beats raw rates."""
    raw_errors, shrunk_errors, covered, total = [], [], 0, 0
    for seed in range(4):
        company = simulate_company(SimulationConfig(n_leads=1_500, seed=seed))
        matured = company.matured()
        truth = company.truth.conversion_probability(company.leads, company.decisions)
        probability = pl.DataFrame({"lead_id": company.leads["lead_id"], "p_true": truth})
        frame = (
            matured.join(company.decisions.select("lead_id", "team", "rep_id"), on="lead_id")
            .join(probability, on="lead_id")
            .with_columns(pl.lit(True).alias("final"))
        )
        true_rates = frame.group_by("rep_id").agg(pl.col("p_true").mean().alias("true_rate"))
        table = rep_performance(frame.drop("p_true")).join(true_rates, on="rep_id")
        raw_errors.append(float(((table["raw_rate"] - table["true_rate"]) ** 2).mean()))
        shrunk_errors.append(float(((table["shrunk_rate"] - table["true_rate"]) ** 2).mean()))
        inside = (table["shrunk_low"] <= table["true_rate"]) & (table["true_rate"] <= table["shrunk_high"])
        covered += int(inside.sum())
        total += table.height
    assert np.mean(shrunk_errors) < 0.8 * np.mean(raw_errors), (raw_errors, shrunk_errors)
    assert covered / total >= 0.85, covered / total
