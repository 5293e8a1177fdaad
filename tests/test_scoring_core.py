"""The pure scoring core: metrics against oracles, drift, features without leakage, the
promotion rule, the schedule with an injected clock, and the workspace config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score

from models.scoring.drift import categorical_stability_index, population_stability_index
from models.scoring.features import (
    ExtraFeature,
    account_conversions_before,
    decode_extras,
    infer_extra_features,
    lead_features,
)
from models.scoring.metrics import (
    classification_metrics,
    expected_calibration_error,
    ranking_agreement,
    top_decile_lift,
)
from models.scoring.training import promotion_decision, temporal_split
from pipelines.config import ConfigError, load_config
from pipelines.schedule import next_fire_time, run_schedule
from pipelines.settings import Settings

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


# -- metrics ---------------------------------------------------------------------------------


def test_ece_matches_a_hand_computation_with_sklearn_bins() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 5000)
    y = (rng.uniform(0, 1, 5000) < p**1.5).astype(float)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="uniform")
    counts = np.histogram(p, bins=np.linspace(0, 1, 11))[0]
    expected = float(np.sum(counts[counts > 0] * np.abs(observed - predicted)) / counts.sum())
    assert expected_calibration_error(y, p, 10) == pytest.approx(expected, abs=1e-12)
    # A forecast drawn from itself is calibrated up to sampling noise.
    y_calibrated = (rng.uniform(0, 1, 200_000) < (q := rng.uniform(0, 1, 200_000))).astype(float)
    assert expected_calibration_error(y_calibrated, q) < 0.01


def test_metrics_agree_with_sklearn_and_degenerate_input_says_why() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 0.5, 2000)
    y = (rng.uniform(0, 1, 2000) < p).astype(float)
    result = classification_metrics(y, p)
    assert result.roc_auc == pytest.approx(roc_auc_score(y, p))
    assert result.n == 2000 and result.positives == int(y.sum())
    single = classification_metrics(np.zeros(10), np.full(10, 0.1))
    assert single.roc_auc is None and "one class" in single.note
    assert classification_metrics(np.zeros(0), np.zeros(0)).note == "no leads to evaluate"


def test_top_decile_lift_and_ranking_agreement_invariants() -> None:
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1], dtype=float)
    p = np.array([0.9, 0.1, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2])
    assert top_decile_lift(y, p) == pytest.approx(1.0 / 0.2)  # the top lead converted; base rate 0.2
    reference = np.random.default_rng(3).uniform(size=(50, 7))
    same = ranking_agreement(reference * 2 + 1, reference)  # a monotone transform keeps the order
    assert same.mean_spearman == pytest.approx(1.0) and same.top1_agreement == 1.0 and same.top1_regret == 0.0
    reverse = ranking_agreement(-reference, reference)
    assert reverse.mean_spearman == pytest.approx(-1.0) and reverse.top1_agreement == 0.0


def test_population_stability() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(0, 1, 20_000)
    assert population_stability_index(base, rng.normal(0, 1, 20_000)) < 0.01
    assert population_stability_index(base, rng.normal(1, 1, 20_000)) > 0.25
    a = pl.Series(["x"] * 500 + ["y"] * 500)
    assert categorical_stability_index(a, a) == pytest.approx(0.0)
    assert categorical_stability_index(a, pl.Series(["x"] * 900 + ["z"] * 100)) > 0.25


# -- features and leakage --------------------------------------------------------------------


def _leads() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "lead_id": ["a", "b", "c", "d"],
            "created_at": [T0, T0 + timedelta(days=1), T0 + timedelta(days=10), T0 + timedelta(days=20)],
            "email": ["x@acme.com", "y@gmail.com", None, "z@acme.com"],
            "account_id": ["A1", None, "A1", "A1"],
            "industry": ["software", None, "retail", "software"],
            "employees": [100, None, 5000, 120],
            "extra": [
                '{"web_visits":"3","demo_requested":"yes","plan":"pro","duration":"200"}',
                '{"web_visits":"0","demo_requested":"no","plan":"free"}',
                None,
                '{"web_visits":"","plan":"pro","duration":"15"}',
            ],
        }
    )


def test_extras_are_unpacked_typed_and_excluded_on_request() -> None:
    leads = _leads()
    extras = infer_extra_features(decode_extras(leads), exclude=["duration"])
    assert extras == (
        ExtraFeature("web_visits", "numeric"),
        ExtraFeature("demo_requested", "numeric"),
        ExtraFeature("plan", "categorical"),
    )
    frame = lead_features(leads, extras)
    assert frame["web_visits"].to_list() == [3.0, 0.0, None, None]
    assert frame["demo_requested"].to_list() == [1.0, 0.0, None, None]
    assert frame["plan"].to_list() == ["pro", "free", "(missing)", "pro"]
    assert frame["free_mail"].to_list() == [0.0, 1.0, None, 0.0]
    assert "duration" not in frame.columns


def test_account_history_counts_only_conversions_before_creation() -> None:
    leads = _leads()
    # Lead a (account A1) converted on day 10, exactly when lead c was created.
    conversions = pl.DataFrame({"account_id": ["A1"], "occurred_at": [T0 + timedelta(days=10)]})
    counted = account_conversions_before(leads, conversions).to_list()
    assert counted == [0.0, 0.0, 0.0, 1.0]  # c: not strictly before; d: after; a: its own, later


def test_no_feature_sees_anything_after_the_lead_was_created() -> None:
    """Features of each lead built from the full history equal those built from the history as
    it stood at the lead's creation: information from after ``created_at`` cannot enter."""
    rng = np.random.default_rng(5)
    n = 300
    created = [T0 + timedelta(hours=float(h)) for h in np.sort(rng.uniform(0, 24 * 90, n))]
    leads = pl.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n)],
            "created_at": created,
            "account_id": [f"A{k}" for k in rng.integers(0, 15, n)],
            "employees": rng.integers(1, 5000, n),
            "extra": [f'{{"web_visits":"{v}"}}' for v in rng.integers(0, 9, n)],
        }
    )
    won = rng.uniform(size=n) < 0.3
    conversions = pl.DataFrame(
        {
            "account_id": leads["account_id"].filter(pl.Series(won)),
            "occurred_at": [c + timedelta(days=float(d)) for c, d in zip(
                leads["created_at"].filter(pl.Series(won)), rng.uniform(1, 60, int(won.sum())), strict=True)],
        }
    )  # fmt: skip
    extras = (ExtraFeature("web_visits", "numeric"),)
    full = lead_features(leads, extras, conversions)
    assert full["account_prior_conversions"].sum() > 0  # the check below is not vacuous
    for i in rng.choice(n, 25, replace=False):
        moment = created[i]
        known_leads = leads.filter(pl.col("created_at") <= moment)
        known_conversions = conversions.filter(pl.col("occurred_at") <= moment)
        then = lead_features(known_leads, extras, known_conversions).filter(pl.col("lead_id") == f"L{i}")
        assert then.equals(full.filter(pl.col("lead_id") == f"L{i}")), f"lead L{i} sees the future"


def test_time_based_split_holds_out_the_latest_months() -> None:
    created = pl.Series([T0 + timedelta(days=d) for d in range(0, 200, 5)])
    split = temporal_split(created, holdout_months=2)
    assert split.holdout_start == datetime(2026, 5, 19, 9, 0, tzinfo=UTC)  # last lead: July 19
    assert created.filter(pl.Series(split.train)).max() <= split.holdout_start  # type: ignore[operator]
    assert created.filter(pl.Series(split.holdout)).min() > split.holdout_start  # type: ignore[operator]
    with pytest.raises(ValueError, match="more history"):
        temporal_split(pl.Series([T0, T0 + timedelta(days=1)]), holdout_months=2)


# -- promotion rule --------------------------------------------------------------------------


def _metrics(auc: float, ece: float) -> object:
    rng = np.random.default_rng(0)
    del rng
    from models.scoring.metrics import ClassificationMetrics

    return ClassificationMetrics(auc, 0.3, 0.25, 0.07, ece, 3.0, 1000, 100, 0.1)


def test_promotion_rule() -> None:
    champion = _metrics(0.75, 0.010)
    better, worse = _metrics(0.76, 0.012), _metrics(0.74, 0.005)
    assert promotion_decision(better, champion, "auto", 0.002, 0.005).promote  # type: ignore[arg-type]
    refused = promotion_decision(worse, champion, "auto", 0.002, 0.005)  # type: ignore[arg-type]
    assert not refused.promote and "below the margin" in refused.reason
    miscalibrated = promotion_decision(_metrics(0.8, 0.05), champion, "auto", 0.002, 0.005)  # type: ignore[arg-type]
    assert not miscalibrated.promote and "ECE" in miscalibrated.reason
    assert promotion_decision(worse, None, "auto", 0.002, 0.005).promote  # type: ignore[arg-type]
    assert promotion_decision(worse, champion, "always", 0.002, 0.005).promote  # type: ignore[arg-type]
    assert not promotion_decision(better, champion, "never", 0.002, 0.005).promote  # type: ignore[arg-type]


# -- schedule --------------------------------------------------------------------------------


class FakeClock:
    """Time moves only when the schedule sleeps (or a cycle takes time)."""

    def __init__(self, start: datetime) -> None:
        self.moment = start
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.moment += timedelta(seconds=seconds)


def test_schedule_fires_cycles_at_cron_times_and_survives_a_failure() -> None:
    clock = FakeClock(datetime(2026, 11, 27, 10, 30, tzinfo=UTC))  # a Friday
    calls: list[datetime] = []

    def cycle() -> int:
        calls.append(clock.now())
        clock.moment += timedelta(minutes=5)  # a cycle takes time
        if len(calls) == 2:
            raise RuntimeError("warehouse busy\nmore detail")
        return len(calls)

    outcomes = run_schedule("0 3 * * 1", cycle, clock, max_cycles=3)  # Mondays 03:00 UTC
    assert calls == [datetime(2026, 11, 30, 3, 0, tzinfo=UTC) + timedelta(weeks=k) for k in range(3)]
    assert [o.result for o in outcomes] == [1, None, 3]
    assert outcomes[1].error == "warehouse busy"
    assert next_fire_time("*/15 * * * *", datetime(2026, 1, 1, 0, 15, tzinfo=UTC)) == datetime(
        2026, 1, 1, 0, 30, tzinfo=UTC
    )


# -- config ----------------------------------------------------------------------------------


def test_config_defaults_file_and_errors(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert load_config(settings).scoring.holdout_months == 2
    (tmp_path / "leadroute.yaml").write_text("scoring:\n  holdout_months: 3\n  extra_features: [a, b]\n")
    scoring = load_config(settings).scoring
    assert scoring.holdout_months == 3 and scoring.extra_features == ["a", "b"]
    (tmp_path / "leadroute.yaml").write_text("scoring:\n  holdout_monts: 3\n")
    with pytest.raises(ConfigError, match=r"scoring\.holdout_monts"):
        load_config(settings)
    (tmp_path / "leadroute.yaml").write_text("scoring:\n  schedule: every monday\n")
    with pytest.raises(ConfigError, match=r"scoring\.schedule"):
        load_config(settings)
