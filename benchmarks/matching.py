"""Lead-to-account matching speed: a batch of leads against many accounts, and one lead at a time.

Prints throughput and single-lead latency, plus precision/recall on the (labelled, synthetic)
benchmark leads, next to a baseline measured in the same run: a naive exact match on the
lower-cased company name. With ``--json`` the last line is one JSON object of the figures.

    .venv/bin/python benchmarks/matching.py [--leads 100000] [--accounts 50000] [--singles 500] [--json]
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

from models.quality.fixture import sample_leads, score_matches, synthetic_accounts
from models.quality.matching import AccountIndex


def naive_match(leads: pl.DataFrame, accounts: pl.DataFrame) -> pl.DataFrame:
    """The baseline: exact lower-case company name, first account wins."""
    names = accounts.select(
        pl.col("name").str.to_lowercase().str.strip_chars().alias("_n"),
        pl.col("account_id").alias("matched_account_id"),
    ).unique(subset=["_n"], keep="first")
    keyed = leads.with_columns(pl.col("company").str.to_lowercase().str.strip_chars().alias("_n"))
    return keyed.join(names, on="_n", how="left", maintain_order="left").drop("_n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--singles", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    say(f"generating {args.accounts:,} accounts and {args.leads:,} labelled leads (seed {args.seed}) …")
    accounts = synthetic_accounts(args.accounts, seed=args.seed)
    leads = sample_leads(accounts, args.leads, seed=args.seed + 1)

    started = time.perf_counter()
    baseline = naive_match(leads, accounts)
    baseline_s = time.perf_counter() - started

    started = time.perf_counter()
    index = AccountIndex(accounts)
    index_s = time.perf_counter() - started
    started = time.perf_counter()
    result = index.match(leads)
    batch_s = time.perf_counter() - started

    sample = leads.sample(min(args.singles, leads.height), seed=args.seed).iter_rows(named=True)
    rows = list(sample)
    for lead in rows[:20]:
        index.match_one(lead)  # warm-up: first calls compile regexes
    latencies = []
    for lead in rows:
        t = time.perf_counter()
        index.match_one(lead)
        latencies.append((time.perf_counter() - t) * 1000)

    quality, naive = score_matches(result), score_matches(baseline)
    figures = {
        "leads": args.leads,
        "accounts": args.accounts,
        "leads_per_s": round(args.leads / batch_s),
        "index_build_s": round(index_s, 3),
        "baseline_leads_per_s": round(args.leads / baseline_s),
        "ratio": round(baseline_s / batch_s, 4),
        "p50_ms": round(float(np.percentile(latencies, 50)), 3),
        "p99_ms": round(float(np.percentile(latencies, 99)), 3),
        "precision": round(quality.precision, 4),
        "recall": round(quality.recall, 4),
        "baseline_precision": round(naive.precision, 4),
        "baseline_recall": round(naive.recall, 4),
    }
    say(f"batch: {figures['leads_per_s']:,} leads/s ({batch_s:.2f} s; index built in {index_s:.2f} s)")
    say(f"baseline (exact lower-case name): {figures['baseline_leads_per_s']:,} leads/s;"
        f" ratio matcher/baseline speed {figures['ratio']}")  # fmt: skip
    say(f"one lead: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms over {len(latencies)} leads")
    say(f"precision {figures['precision']} recall {figures['recall']}"
        f" (baseline precision {figures['baseline_precision']} recall {figures['baseline_recall']})")  # fmt: skip
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
