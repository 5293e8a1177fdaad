"""Coverage of the off-policy intervals against the simulated truth, over many independent seeds.

For each seed: simulate a company (``--leads`` leads, seed ``1000 + i``), replay the shipped
policies (capacity enforced; the first named is the baseline), estimate every policy and its
paired difference against the baseline with every estimator, and compare with the truth on the
same matured leads:

- ``no_interference`` (the estimand, :meth:`GroundTruth.counterfactual_probability`): each lead's
  true probability at the policy's destination with the logged rep-day loads;
- ``deployed`` (reported only): the policy's own routing with its own loads.

Prints, per estimator, the coverage of the 95% interval of the paired difference (pooled over
the candidate policies), its mean width, mean bias against both truths, and the coverage of the
per-policy values. ``coverage`` is the doubly robust paired difference's.

    python benchmarks/ope_coverage.py [--seeds 100] [--leads 10000] [--policies seed,best_fit,...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.ope.truth_check import check_against_truth, differences_vs_truth
from models.policy import Policy, Roster
from models.simulation import SimulationConfig, simulate_company
from pipelines.policies import SHIPPED_DIR, read_file
from pipelines.replay import TruthFit, TruthScorer

SHIPPED = ("seed", "best_fit", "territory", "account_owner", "round_robin")


def run(seeds: int, leads: int, policies: tuple[str, ...], folds: int, say: bool) -> dict[str, Any]:
    specs = {name: read_file(SHIPPED_DIR / f"{name}.yaml").spec for name in policies}
    diff: dict[str, list[tuple[bool, float, float, float]]] = {}
    level: dict[str, dict[str, list[bool]]] = {}
    level_bias: dict[str, dict[str, list[tuple[float, float]]]] = {}
    truths: dict[str, list[tuple[float, float]]] = {}
    for i in range(seeds):
        company = simulate_company(SimulationConfig(n_leads=leads, seed=1000 + i))
        roster = Roster.from_frames(company.reps, company.teams, company.absences, company.accounts)
        bound = {n: Policy(s, roster, scorer=TruthScorer(company), fit=TruthFit(company)) for n, s in specs.items()}
        check = check_against_truth(company, bound, folds=folds, seed=i, max_iter=50, max_leaf_nodes=15)
        for name in policies[1:]:
            for est, d in differences_vs_truth(check, name).items():
                diff.setdefault(est, []).append((d.covered, d.width, d.value - d.truth, d.value - d.deployed_truth))
        for row in check.comparison.policies:
            truth, deployed = check.no_interference[row.policy], check.deployed[row.policy]
            truths.setdefault(row.policy, []).append((truth, deployed))
            for est, e in row.estimates.items():
                hit = e.interval is not None and e.interval.ci_low <= truth <= e.interval.ci_high
                level.setdefault(est, {}).setdefault(row.policy, []).append(hit)
                if e.interval is not None:
                    errors = (e.interval.value - truth, e.interval.value - deployed)
                    level_bias.setdefault(est, {}).setdefault(row.policy, []).append(errors)
        if say:
            dr = diff.get("dr", [])
            print(
                f"seed {i + 1}/{seeds}: dr paired coverage so far {np.mean([c for c, *_ in dr]):.3f}", file=sys.stderr
            )
    by_estimator = {est: float(np.mean([c for c, *_ in rows])) for est, rows in diff.items()}
    n_intervals = len(diff.get("dr", []))
    covered = sum(c for c, *_ in diff.get("dr", []))
    low, high = stats.binomtest(covered, n_intervals).proportion_ci(0.95) if n_intervals else (0.0, 0.0)
    return {
        "coverage": by_estimator.get("dr"),
        "coverage_by_estimator": by_estimator,
        "seeds": seeds,
        "leads": leads,
        "policies": list(policies),
        "intervals_per_estimator": n_intervals,
        "dr_coverage_ci": [low, high],
        "mean_width_by_estimator": {est: float(np.mean([w for _, w, *_ in rows])) for est, rows in diff.items()},
        "bias_no_interference_by_estimator": {
            est: float(np.mean([b for *_, b, _ in rows])) for est, rows in diff.items()
        },
        "bias_deployed_by_estimator": {est: float(np.mean([b for *_, b in rows])) for est, rows in diff.items()},
        "truth_by_policy": {
            p: {"no_interference": float(np.mean([t for t, _ in v])), "deployed": float(np.mean([d for _, d in v]))}
            for p, v in truths.items()
        },
        "level_bias_by_estimator": {
            est: {
                p: {"no_interference": float(np.mean([a for a, _ in v])), "deployed": float(np.mean([b for _, b in v]))}
                for p, v in per.items()
            }
            for est, per in level_bias.items()
        },
        "level_coverage_by_estimator": {
            est: {p: float(np.mean(hits)) for p, hits in per.items()} for est, per in level.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--policies", default=",".join(SHIPPED), help="comma-separated; the first is the baseline")
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    policies = tuple(p.strip() for p in args.policies.split(",") if p.strip())
    if len(policies) < 2:
        parser.error("--policies: name at least two (the first is the baseline)")
    started = time.perf_counter()
    result = run(args.seeds, args.leads, policies, args.folds, say=not args.json)
    result["seconds"] = time.perf_counter() - started
    print(f"{args.seeds} seeds × {args.leads:,} leads, baseline {policies[0]} vs {', '.join(policies[1:])}")
    print(f"{'estimator':<11} {'coverage':>8} {'width':>8} {'bias(NI)':>9} {'bias(dep)':>9}   (paired difference)")
    for est, cov in result["coverage_by_estimator"].items():
        print(
            f"{est:<11} {cov:8.3f} {result['mean_width_by_estimator'][est]:8.4f}"
            f" {result['bias_no_interference_by_estimator'][est]:+9.4f}"
            f" {result['bias_deployed_by_estimator'][est]:+9.4f}"
        )
    print("coverage of the per-policy values:")
    for est, per in result["level_coverage_by_estimator"].items():
        print(f"  {est:<11} " + "  ".join(f"{p} {c:.2f}" for p, c in per.items()))
    print("mean truth per policy (no-interference / deployed) and mean bias of each value against both:")
    for p, t in result["truth_by_policy"].items():
        biases = "  ".join(
            f"{est} {per[p]['no_interference']:+.4f}/{per[p]['deployed']:+.4f}"
            for est, per in result["level_bias_by_estimator"].items()
            if p in per
        )
        print(f"  {p:<14} truth {t['no_interference']:.4f}/{t['deployed']:.4f}   bias {biases}")
    print(f"{result['seconds']:.0f} s")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
