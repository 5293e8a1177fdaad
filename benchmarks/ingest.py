"""Ingest throughput against DuckDB's raw CSV load of the same file, measured in one run.

Generates a lead CSV (default 1,000,000 rows, canonical columns plus engagement extras, about
0.1% deliberately bad rows), then times:

- ``raw``: ``CREATE TABLE … AS SELECT * FROM read_csv(file)`` in a fresh DuckDB file — no
  validation, no keys, no bookkeeping;
- ``ours``: ``leadroute ingest leads`` semantics (parse, validate every field, reject with
  reasons, upsert by id, record the import) into a fresh workspace.

The figure is ``ratio = ours leads/s ÷ raw leads/s`` (target ≥ 0.3). ``--json`` prints one JSON
object as the last line: ``{"leads_per_s", "raw_leads_per_s", "ratio", ...}``.

    python benchmarks/ingest.py [--leads N] [--repeat K] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.ingest import ingest_file
from pipelines.warehouse import Warehouse


def generate_leads_csv(path: Path, n: int, seed: int = 0) -> int:
    """Write ``n`` lead rows (a few of them invalid) and return how many are invalid."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2025-01-01T00:00:00", "ms")
    created = start + rng.integers(0, 365 * 86400, n).astype("timedelta64[s]").astype("timedelta64[ms]")
    employees = np.exp(rng.normal(4.5, 1.6, n)).astype(np.int64)
    frame = pl.DataFrame(
        {
            "lead_id": [f"L{i:08d}" for i in range(n)],
            "created_at": pl.Series(np.sort(created)).dt.to_string("%Y-%m-%dT%H:%M:%SZ"),
            "email": [f"person{i}@company{i % 50_000}.com" for i in range(n)],
            "company": [f"Company {i % 50_000}" for i in range(n)],
            "industry": rng.choice(["software", "finance", "healthcare", "retail", "manufacturing"], n),
            "employees": employees.astype(str),
            "annual_revenue": np.round(employees * rng.uniform(5e4, 3e5, n), 2).astype(str),
            "country": rng.choice(["US", "DE", "GB", "FR", "JP", "BR"], n),
            "region": rng.choice(["NA", "EMEA", "APAC", "LATAM"], n),
            "source": rng.choice(["web_form", "webinar", "referral", "paid_search", "event"], n),
            "title": rng.choice(["CEO", "VP Sales", "Director IT", "Manager", "Engineer"], n),
            "web_visits": rng.poisson(3, n).astype(str),
            "demo_requested": rng.choice(["true", "false"], n, p=[0.1, 0.9]),
        }
    )
    bad = rng.choice(n, size=max(1, n // 1000), replace=False)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()).is_in(bad)).then(pl.lit("n/a")).otherwise(pl.col("employees")).alias("employees")
    )
    frame.write_csv(path)
    return len(bad)


def time_raw(csv: Path, workdir: Path) -> float:
    with duckdb.connect(str(workdir / "raw.duckdb")) as con:
        started = time.perf_counter()
        con.execute("CREATE TABLE leads AS SELECT * FROM read_csv(?)", [str(csv)])
        return time.perf_counter() - started


def time_ours(csv: Path, workdir: Path, expected_bad: int) -> float:
    warehouse = Warehouse(workdir / "ws" / "warehouse.duckdb")
    with warehouse.connect():
        pass  # create and migrate outside the timed part, as a real workspace already is
    started = time.perf_counter()
    summary = ingest_file(warehouse, "leads", csv)
    seconds = time.perf_counter() - started
    if summary.counts.rejected != expected_bad:
        raise SystemExit(f"expected {expected_bad} rejects, got {summary.counts.rejected}")
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of K runs of each")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="leadroute-bench-") as tmp:
        workdir = Path(tmp)
        csv = workdir / "leads.csv"
        bad = generate_leads_csv(csv, args.leads)
        raw_times, our_times = [], []
        for attempt in range(args.repeat):
            run = workdir / f"run{attempt}"
            run.mkdir()
            raw_times.append(time_raw(csv, run))
            our_times.append(time_ours(csv, run, bad))
    raw_s, ours_s = min(raw_times), min(our_times)
    figures = {
        "leads": args.leads,
        "leads_per_s": round(args.leads / ours_s),
        "raw_leads_per_s": round(args.leads / raw_s),
        "ratio": round(raw_s / ours_s, 3),
        "seconds": round(ours_s, 3),
        "raw_seconds": round(raw_s, 3),
        "target_ratio": 0.3,
    }
    print(
        f"ingest {args.leads:,} leads: ours {ours_s:.2f} s ({figures['leads_per_s']:,}/s), "
        f"raw DuckDB read_csv {raw_s:.2f} s ({figures['raw_leads_per_s']:,}/s), "
        f"ratio {figures['ratio']} (target ≥ 0.3)"
    )
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
