"""Offline evaluation at scale: 1,000,000 logged decisions, two policies, DR with intervals.

Simulates the demo company over 48 months with enough leads that ``--leads`` (default
1,000,000) have matured outcomes (not timed), then times what ``leadroute evaluate`` does after
loading: replay both policies over every lead in time order with capacity enforced, cross-fit
the reward model (``--folds`` folds, each fitted on at most ``--max-train-rows`` rows; 50 rounds
of 15 leaves, the settings whose coverage ``ope_coverage.py`` measures), and the doubly robust
estimates with their 95% intervals and the paired difference. Target: under 30 s on a 2-core
machine.

    python benchmarks/evaluate.py [--leads N] [--policies seed,best_fit] [--json]

With ``--json`` the last line is ``{"seconds": …, "replay_seconds": …, "model_seconds": …,
"estimate_seconds": …, "leads": …}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.ope import RewardModel, compare, offline_inputs
from models.ope.reward import lead_features
from models.policy import Policy, Roster
from models.simulation import SimulationConfig, simulate_company
from pipelines.policies import SHIPPED_DIR, read_file
from pipelines.replay import TruthFit, TruthScorer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--policies", default="seed,best_fit")
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--max-train-rows", type=int, default=200_000)
    # The reward model settings of benchmarks/ope_coverage.py, whose coverage is measured.
    parser.add_argument("--max-iter", type=int, default=50, help="boosting rounds of the reward model")
    parser.add_argument("--max-leaf-nodes", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    names = [p.strip() for p in args.policies.split(",") if p.strip()]
    # Simulate enough leads over 48 months that about --leads of them have matured outcomes.
    config = SimulationConfig(n_leads=args.leads, seed=args.seed, months=48)
    span = (config.now - config.start_utc).days
    config = SimulationConfig(
        n_leads=round(args.leads * span / (span - config.conversion_window_days)), seed=args.seed, months=48
    )
    say(f"simulating {config.n_leads:,} leads over 48 months (not timed) …")
    company = simulate_company(config)
    roster = Roster.from_frames(company.reps, company.teams, company.absences, company.accounts)
    scorer, fit = TruthScorer(company), TruthFit(company)
    matured = company.matured()
    keep = company.leads["lead_id"].is_in(matured["lead_id"].implode())

    started = time.perf_counter()
    targets = {}
    for name in names:
        policy = Policy(read_file(SHIPPED_DIR / f"{name}.yaml").spec, roster, scorer=scorer, fit=fit)
        decisions = policy.replay(company.leads, rng=np.random.default_rng(args.seed)).decisions
        aligned = company.leads.select("lead_id").join(decisions, on="lead_id", how="left", maintain_order="left")
        targets[name] = aligned.filter(keep).select("team", "rep_id")
    replayed = time.perf_counter()
    leads = company.leads.filter(keep)
    logged = company.decisions.filter(keep)
    reward = matured["converted"].to_numpy().astype(np.float64)
    features, categorical, numeric = lead_features(leads)
    model = RewardModel(
        categorical=(*categorical, "team", "rep_id"),
        numeric=numeric,
        max_train_rows=args.max_train_rows,
        max_iter=args.max_iter,
        max_leaf_nodes=args.max_leaf_nodes,
        random_state=args.seed,
    )
    log, target_data = offline_inputs(
        features,
        logged.select("team", "rep_id"),
        reward,
        targets,
        propensity=logged["propensity"].to_numpy(),
        model=model,
        folds=args.folds,
        seed=args.seed,
    )
    modelled = time.perf_counter()
    result = compare(log, target_data, ["dr"])
    done = time.perf_counter()

    seconds = done - started
    first = result.policies[0].policy
    for row in result.policies:
        e = row.estimates["dr"].interval
        line = f"{row.policy:<12} dr {e.value:.4f} [{e.ci_low:.4f}, {e.ci_high:.4f}]" if e else row.policy
        d = row.diff_vs_first.get("dr")
        if d is not None and d.interval is not None:
            line += f"   vs {first}: {d.interval.value:+.4f} [{d.interval.ci_low:+.4f}, {d.interval.ci_high:+.4f}]"
        say(line)
    say(
        f"{log.n:,} matured logged decisions, {len(names)} policies: {seconds:.1f} s"
        f" (replay {replayed - started:.1f} s, reward model {modelled - replayed:.1f} s,"
        f" estimators {done - modelled:.2f} s); target < 30 s"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "seconds": seconds,
                    "replay_seconds": replayed - started,
                    "model_seconds": modelled - replayed,
                    "estimate_seconds": done - modelled,
                    "leads": args.leads,
                    "matured_decisions": log.n,
                }
            )
        )


if __name__ == "__main__":
    pl.Config.set_tbl_rows(0)
    main()
