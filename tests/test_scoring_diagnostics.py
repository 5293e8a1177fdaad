"""Reliability, gains/lift and paired model comparison: hand computations and sklearn/scipy oracles."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from models.intervals import wilson_interval
from models.scoring.diagnostics import gains_table, model_drift, paired_comparison, reliability_table
from models.scoring.drift import feature_drift, population_stability_index
from models.scoring.estimator import ConversionClassifier
from models.scoring.metrics import expected_calibration_error, top_decile_lift


def _sample(n: int = 2_000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(1.5, 8.0, n)
    y = (rng.random(n) < p).astype(np.float64)
    return y, p


def test_gains_table_by_hand() -> None:
    # 10 leads, 5 groups of 2; scores descending 0.9 … 0.0, conversions at ranks 1, 2 and 5.
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0], dtype=np.float64)
    table = gains_table(y[::-1], p[::-1], n_groups=5)  # input order does not matter
    assert table["n"].to_list() == [2, 2, 2, 2, 2]
    assert table["conversions"].to_list() == [2, 0, 1, 0, 0]
    assert table["conversion_rate"].to_list() == pytest.approx([1.0, 0.0, 0.5, 0.0, 0.0])
    assert table["lift"].to_list() == pytest.approx([1.0 / 0.3, 0.0, 0.5 / 0.3, 0.0, 0.0])
    assert table["cumulative_gain"].to_list() == pytest.approx([2 / 3, 2 / 3, 1.0, 1.0, 1.0])
    assert table["cumulative_share_of_leads"].to_list() == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert table["cumulative_lift"].to_list() == pytest.approx([1 / 0.3, 0.5 / 0.3, 0.5 / 0.3, 0.375 / 0.3, 1.0])
    assert table["max_probability"].to_list() == pytest.approx([0.9, 0.7, 0.5, 0.3, 0.1])


@pytest.mark.parametrize("n", [2_000, 1_234, 7])
def test_gains_table_invariants_and_top_decile(n: int) -> None:
    y, p = _sample(n)
    table = gains_table(y, p)
    assert table["n"].sum() == n
    assert table["conversions"].sum() == int(y.sum())
    assert table["cumulative_gain"][-1] == pytest.approx(1.0)
    assert table["cumulative_lift"][-1] == pytest.approx(1.0)
    sizes = table["n"].to_numpy()
    assert sizes.max() - sizes.min() <= 1
    # The first group is exactly the top decile every training run reports.
    if n >= 10:
        assert table["lift"][0] == pytest.approx(top_decile_lift(y, p))


def test_gains_table_without_conversions_has_null_lifts() -> None:
    table = gains_table(np.zeros(20), np.linspace(0, 1, 20))
    assert table["lift"].null_count() == table.height
    assert table["conversion_rate"].to_list() == [0.0] * 10


def test_gains_table_refuses_mismatched_input() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        gains_table(np.zeros(3), np.zeros(4))


def test_reliability_table_matches_sklearn_and_ece() -> None:
    y, p = _sample()
    table = reliability_table(y, p, n_bins=10)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="uniform")
    assert table["observed_rate"].to_list() == pytest.approx(observed.tolist())
    assert table["mean_predicted"].to_list() == pytest.approx(predicted.tolist())
    assert table["n"].sum() == y.size
    counts, gaps = table["n"].to_numpy(), table["gap"].to_numpy()
    ece = float((counts * np.abs(gaps)).sum() / counts.sum())
    assert ece == pytest.approx(expected_calibration_error(y, p, 10))
    low, high = wilson_interval(table["observed_rate"] * table["n"], table["n"])
    assert table["ci_low"].to_list() == pytest.approx(low.tolist())
    assert table["ci_high"].to_list() == pytest.approx(high.tolist())


def test_paired_comparison_matches_sklearn_and_scipy() -> None:
    y, p = _sample()
    rng = np.random.default_rng(9)
    q = np.clip(p + rng.normal(0, 0.05, p.size), 0.001, 0.999)
    result = paired_comparison(y, p, q)
    assert result.roc_auc_a == pytest.approx(roc_auc_score(y, p))
    assert result.roc_auc_diff == pytest.approx(roc_auc_score(y, q) - roc_auc_score(y, p))
    assert result.brier_diff == pytest.approx(brier_score_loss(y, q) - brier_score_loss(y, p))
    assert result.log_loss_diff == pytest.approx(log_loss(y, q) - log_loss(y, p))
    per_lead = (q - y) ** 2 - (p - y) ** 2
    low, high = stats.norm.interval(0.95, loc=per_lead.mean(), scale=stats.sem(per_lead))
    assert (result.brier_ci_low, result.brier_ci_high) == pytest.approx((low, high))


def test_paired_comparison_of_a_model_with_itself_is_zero() -> None:
    y, p = _sample(300)
    result = paired_comparison(y, p, p)
    assert result.roc_auc_diff == 0.0
    assert (result.brier_diff, result.brier_ci_low, result.brier_ci_high) == (0.0, 0.0, 0.0)


def test_paired_comparison_degenerate_inputs_say_why() -> None:
    assert paired_comparison(np.array([1.0]), np.array([0.5]), np.array([0.4])).note == "fewer than 2 leads"
    single = paired_comparison(np.zeros(5), np.full(5, 0.1), np.full(5, 0.2))
    assert single.roc_auc_diff is None and "one class" in single.note
    assert single.brier_diff == pytest.approx(0.04 - 0.01)


def test_model_drift_is_feature_drift_plus_the_score() -> None:
    rng = np.random.default_rng(5)
    n = 400
    frame = pl.DataFrame({"employees": rng.lognormal(4, 1, n), "source": rng.choice(["web", "event", "partner"], n)})
    y = (rng.random(n) < 0.3).astype(np.float64)
    model = ConversionClassifier(categorical=("source",), numeric=("employees",), kind="logistic", calibration="none")
    model.fit(frame, y)
    # Recent leads are larger companies: the numeric feature and the score move.
    recent = frame.with_columns(pl.col("employees") * 3)
    found = {d.feature: d for d in model_drift(model, frame, recent)}
    expected = {d.feature: d.psi for d in feature_drift(frame, recent, ("employees",), ("source",))}
    assert {k: found[k].psi for k in expected} == expected
    score = population_stability_index(model.predict_proba(frame)[:, 1], model.predict_proba(recent)[:, 1])
    assert found["score"].psi == pytest.approx(score)
    assert found["source"].level == "stable"
    # Without a column the model reads, no score is computed (and nothing fails).
    assert "score" not in {d.feature for d in model_drift(model, frame, recent.drop("source"))}
