"""Monte Carlo calibration of the A/B statistics: error rates and coverage against a known truth.

Simulated experiments (seeded), each run through the production code of ``models.experiments``:

- A/A, one planned look: false-positive rate of the two-proportion test (≈ α) and of Welch's t on
  revenue per lead.
- A/A, looked at every day: a naive fixed-horizon test peeked daily (well above α) against the
  always-valid p-value of the confidence sequence (≤ α).
- A real effect: coverage of the fixed-horizon interval (last look), of the relative-lift interval,
  and of the confidence sequence at every look at once.
- SRM: false-alarm rate of the χ² check on correctly randomised splits (≈ its α, 0.001).
- CUPED on a lead score (bias, width, variance reduction, coverage) and randomisation by rep
  (lead-level against cluster-robust intervals).

``coverage`` in the JSON is the lowest of the measured coverages (fixed, relative and sequential,
conversion and revenue); with ``--json`` the last line is exactly
``{"aa_false_positive_rate", "peeking_false_positive_rate", "naive_peeking_false_positive_rate",
"coverage", "srm_false_alarm_rate"}``.

    python benchmarks/ab_calibration.py [--experiments 100000] [--days 30] [--leads-per-day 200] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.experiments import DEFAULT_SRM_ALPHA
from models.experiments.calibration import (
    Rate,
    cluster_study,
    cuped_study,
    daily_looks_mean,
    daily_looks_proportion,
    srm_false_alarms,
)


def _fmt(label: str, rate: Rate, target: str) -> str:
    low, high = rate.interval()
    return f"  {label:<46} {rate.rate:8.4f}  [{low:.4f}, {high:.4f}]  n={rate.trials:>7,}  {target}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=100_000, help="simulated conversion experiments per study")
    parser.add_argument("--revenue-experiments", type=int, default=10_000)
    parser.add_argument("--srm-experiments", type=int, default=1_000_000)
    parser.add_argument("--cuped-experiments", type=int, default=2_000)
    parser.add_argument("--cluster-experiments", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=30, help="daily looks per experiment")
    parser.add_argument("--leads-per-day", type=int, default=200, help="leads per day, both arms together")
    parser.add_argument("--baseline", type=float, default=0.10, help="control conversion rate")
    parser.add_argument("--effect", type=float, default=0.015, help="absolute lift for the coverage study")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    alpha, p0 = args.alpha, args.baseline
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()

    aa = daily_looks_proportion(rng, args.experiments, args.days, args.leads_per_day, p0, p0, alpha)
    real = daily_looks_proportion(rng, args.experiments, args.days, args.leads_per_day, p0, p0 + args.effect, alpha)
    per_arm = args.leads_per_day // 2
    revenue_aa = daily_looks_mean(rng, args.revenue_experiments, args.days, per_arm, p0, p0, alpha=alpha)
    revenue = daily_looks_mean(rng, args.revenue_experiments, args.days, per_arm, p0, p0 + args.effect, alpha=alpha)
    total = args.days * args.leads_per_day
    srm_two = srm_false_alarms(rng, args.srm_experiments, total, [0.5, 0.5], DEFAULT_SRM_ALPHA)
    srm_three = srm_false_alarms(rng, args.srm_experiments, total, [0.2, 0.4, 0.4], DEFAULT_SRM_ALPHA)
    srm_all = Rate(srm_two.hits + srm_three.hits, srm_two.trials + srm_three.trials)
    adjusted = cuped_study(rng, args.cuped_experiments, total // 2, lift=0.1, alpha=alpha)
    clustered = cluster_study(rng, args.cluster_experiments, alpha=alpha)
    clustered_effect = cluster_study(rng, args.cluster_experiments, effect=0.3, alpha=alpha)
    seconds = time.perf_counter() - started

    coverages = {
        "fixed interval, conversion (last look)": real.fixed_covered,
        "relative-lift interval, conversion": real.relative_covered,
        "confidence sequence, conversion (every look)": real.sequential_covered,
        "Welch interval, revenue (last look)": revenue.fixed_covered,
        "relative-lift interval, revenue": revenue.relative_covered,
        "confidence sequence, revenue (every look)": revenue.sequential_covered,
    }
    print(
        f"α = {alpha}; {args.days} daily looks × {args.leads_per_day} leads/day (50/50), baseline {p0:.2%}, "
        f"effect +{args.effect:.2%} points; n* = {total:,}; {seconds:.1f} s"
    )
    print(f"  {'':<46} {'rate':>8}  95% MC interval        experiments  target")
    print("A/A, one planned look")
    print(_fmt("two-proportion z test", aa.final_reject, f"≈ {alpha}"))
    print(_fmt("Welch's t, revenue per lead", revenue_aa.final_reject, f"≈ {alpha}"))
    print("A/A, looked at every day (any look rejects)")
    print(_fmt("naive fixed test, conversion", aa.naive_any_reject, f"> {alpha} (the peeking problem)"))
    print(_fmt("always-valid p-value, conversion", aa.sequential_any_reject, f"≤ {alpha}"))
    print(_fmt("naive fixed test, revenue", revenue_aa.naive_any_reject, f"> {alpha}"))
    print(_fmt("always-valid p-value, revenue", revenue_aa.sequential_any_reject, f"≤ {alpha}"))
    print("Coverage with a real effect")
    for label, rate in coverages.items():
        print(_fmt(label, rate, f"≥ {1 - alpha}"))
    print(_fmt("power at the last look, fixed test", real.final_reject, "(for reference)"))
    print(_fmt("power by the last look, sequential", real.sequential_any_reject, "(for reference)"))
    print("Sample-ratio mismatch on correct splits")
    print(_fmt("χ², 50/50", srm_two, f"≈ {DEFAULT_SRM_ALPHA}"))
    print(_fmt("χ², 20/40/40", srm_three, f"≈ {DEFAULT_SRM_ALPHA}"))
    print(f"CUPED on the lead score ({args.cuped_experiments:,} experiments, {total // 2:,} leads per arm, lift +10%)")
    print(
        f"  mean bias raw {adjusted.raw_mean_bias:+.5f}, adjusted {adjusted.adjusted_mean_bias:+.5f}; mean width raw "
        f"{adjusted.raw_mean_width:.4f}, adjusted {adjusted.adjusted_mean_width:.4f}; variance reduction "
        f"{adjusted.mean_variance_reduction:.1%}"
    )
    print(_fmt("coverage, raw", adjusted.raw_covered, f"≥ {1 - alpha}"))
    print(_fmt("coverage, adjusted", adjusted.adjusted_covered, f"≥ {1 - alpha}"))
    print("Randomised by rep (60 reps × 80 leads, rep logit sd 0.6)")
    print(_fmt("A/A false positives, lead-level interval", clustered.naive_reject, f"> {alpha} (ignores clustering)"))
    print(_fmt("A/A false positives, cluster-robust (CR1)", clustered.robust_reject, f"≈ {alpha}"))
    print(_fmt("coverage, lead-level (effect +0.3 logit)", clustered_effect.naive_covered, f"< {1 - alpha}"))
    print(_fmt("coverage, cluster-robust (effect +0.3 logit)", clustered_effect.robust_covered, f"≈ {1 - alpha}"))
    if args.json:
        print(
            json.dumps(
                {
                    "aa_false_positive_rate": aa.final_reject.rate,
                    "peeking_false_positive_rate": aa.sequential_any_reject.rate,
                    "naive_peeking_false_positive_rate": aa.naive_any_reject.rate,
                    "coverage": min(rate.rate for rate in coverages.values()),
                    "srm_false_alarm_rate": srm_all.rate,
                }
            )
        )


if __name__ == "__main__":
    main()
