"""Training and scoring speed of the lead score, against the logistic baseline in the same run.

Simulates the demo company (default 200,000 leads over 12 months), builds features in memory
(no warehouse, no MLflow: the figures are the model's), then times:

- ``train_seconds``: fitting the lead score (gradient boosting, cross-validated calibration)
  on every matured lead; ``baseline_train_seconds``: the logistic-regression baseline;
- ``score_rows_per_s``: batch scoring of all leads (``baseline_score_rows_per_s`` likewise);
- ``p50_ms`` / ``p99_ms``: one lead at a time in-process (a one-row frame, as the endpoint would
  call it), over ``--single`` calls after a warm-up.

With ``--truth`` it also prints the figures against the simulated ground truth (AUC, ECE, fit
ranking), as pinned in ``tests/test_scoring_truth.py``. ``--json`` prints one JSON object as the
last line: ``{"train_seconds", "score_rows_per_s", "p50_ms", "p99_ms", ...}``.

    python benchmarks/train.py [--leads N] [--single K] [--truth] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.scoring.estimator import ConversionClassifier
from models.scoring.features import feature_set, lead_features, usable
from models.scoring.training import Hyperparameters, fit_classifier
from models.scoring.truth_check import SIMULATED_EXTRAS, check_against_truth
from models.simulation.company import simulate_company
from models.simulation.config import SimulationConfig


def _timed_fit(frame: pl.DataFrame, y: np.ndarray, kind: str) -> tuple[ConversionClassifier, float]:
    features = usable(feature_set(SIMULATED_EXTRAS), frame)
    started = time.perf_counter()
    model = fit_classifier(frame, y, features, "hgb" if kind == "hgb" else "logistic", Hyperparameters())
    return model, time.perf_counter() - started


def _rows_per_s(model: ConversionClassifier, frame: pl.DataFrame) -> float:
    started = time.perf_counter()
    model.predict_proba(frame)
    return frame.height / (time.perf_counter() - started)


def _latencies_ms(model: ConversionClassifier, frame: pl.DataFrame, calls: int) -> np.ndarray:
    rows = [frame.slice(i % frame.height, 1) for i in range(calls + 20)]
    for row in rows[:20]:  # warm-up: first calls pay for lazy initialisation
        model.predict_proba(row)
    out = np.empty(calls)
    for i, row in enumerate(rows[20:]):
        started = time.perf_counter()
        model.predict_proba(row)
        out[i] = (time.perf_counter() - started) * 1000
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--single", type=int, default=1000, help="single-lead calls timed")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--truth", action="store_true", help="also print the figures against the ground truth")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    # About two thirds of a year's leads have matured: simulate enough to train on ``--leads``.
    company = simulate_company(SimulationConfig(n_leads=args.leads * 3 // 2 + 1_000, seed=args.seed))
    matured = company.matured()
    conversions = company.outcomes.filter(pl.col("event") == "converted").join(
        company.leads.select("lead_id", "account_id"), on="lead_id"
    )
    frame = lead_features(matured, SIMULATED_EXTRAS, conversions).head(args.leads)
    y = matured["converted"].to_numpy()[: frame.height]
    print(f"training on {frame.height:,} matured leads; conversion rate {y.mean():.3f}", file=sys.stderr)

    model, train_s = _timed_fit(frame, y, "hgb")
    baseline, baseline_s = _timed_fit(frame, y, "logistic")
    latencies = _latencies_ms(model, frame, args.single)
    baseline_latencies = _latencies_ms(baseline, frame, args.single)
    figures: dict[str, object] = {
        "train_seconds": round(train_s, 2),
        "score_rows_per_s": round(_rows_per_s(model, frame)),
        "p50_ms": round(float(np.percentile(latencies, 50)), 3),
        "p99_ms": round(float(np.percentile(latencies, 99)), 3),
        "baseline_train_seconds": round(baseline_s, 2),
        "baseline_score_rows_per_s": round(_rows_per_s(baseline, frame)),
        "baseline_p50_ms": round(float(np.percentile(baseline_latencies, 50)), 3),
        "baseline_p99_ms": round(float(np.percentile(baseline_latencies, 99)), 3),
        "train_rows": frame.height,
    }
    figures["train_ratio_vs_baseline"] = round(train_s / max(baseline_s, 1e-9), 2)
    print(
        f"lead score (HGB + calibration): trained on {frame.height:,} leads in {train_s:.1f} s"
        f" (logistic baseline {baseline_s:.1f} s); batch {figures['score_rows_per_s']:,} rows/s"
        f" (baseline {figures['baseline_score_rows_per_s']:,}); one lead p50 {figures['p50_ms']} ms,"
        f" p99 {figures['p99_ms']} ms (baseline {figures['baseline_p50_ms']} / {figures['baseline_p99_ms']} ms)"
    )
    if args.truth:
        truth_company = simulate_company(SimulationConfig(n_leads=40_000, seed=3))
        report = check_against_truth(truth_company)
        truth = {
            "score_roc_auc": report.score.roc_auc,
            "score_baseline_roc_auc": report.score_baseline.roc_auc,
            "lead_truth_roc_auc": report.lead_truth.roc_auc,
            "realised_truth_roc_auc": report.truth.roc_auc,
            "score_ece": report.score.ece,
            "fit_ranking": asdict(report.fit_ranking),
            "fit_baseline_ranking": asdict(report.fit_baseline_ranking),
            "n_holdout": report.n_holdout,
        }
        print("against the ground truth (40,000 leads, seed 3): " + json.dumps(truth))
        figures["truth"] = truth
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
