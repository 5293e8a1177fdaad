"""Run every benchmark script and write one table of its figures into the README.

Each ``benchmarks/*.py`` script (except this one) runs in its own process with ``--json`` and
prints one JSON object as its last line; this runner turns those objects into one Markdown
table — figure, value, the baseline measured in the same run, their ratio, the target from the
issues and whether it was met — and writes it into ``README.md`` between the markers
``<!-- bench:start -->`` and ``<!-- bench:end -->``. A script without a known row layout (a new
one) still runs and gets a row listing its numbers.

    python benchmarks/run_all.py                  # full sizes (what `make bench` runs); writes README.md
    python benchmarks/run_all.py --quick          # small sizes, a few minutes; prints the table only
    python benchmarks/run_all.py --quick --readme /tmp/README.md   # ... and writes it there
    python benchmarks/run_all.py --only ingest --only replay

The README is only written when every script succeeded, so a failed run never replaces figures
with a partial table; the exit code is non-zero when any script failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

# Small sizes for --quick; the full run uses each script's defaults (the sizes the targets name).
QUICK_ARGS: dict[str, list[str]] = {
    "ab_calibration": ["--experiments", "2000", "--revenue-experiments", "500", "--srm-experiments", "20000",
                       "--cuped-experiments", "100", "--cluster-experiments", "100", "--days", "10"],
    "endpoint": ["--seconds", "2", "--rounds", "1", "--batches", "40"],
    "evaluate": ["--leads", "20000", "--max-train-rows", "20000"],
    "ingest": ["--leads", "100000", "--repeat", "1"],
    "matching": ["--leads", "5000", "--accounts", "2500", "--singles", "100"],
    "ope_coverage": ["--seeds", "3", "--leads", "3000"],
    "preview": ["--leads", "5000", "--moves", "2"],
    "replay": ["--leads", "100000", "--zen-sample", "2000", "--latency-sample", "300"],
    "train": ["--leads", "20000", "--single", "100"],
}  # fmt: skip
FULL_ARGS: dict[str, list[str]] = {"ope_coverage": ["--seeds", "100"]}


@dataclass(frozen=True)
class Row:
    """One line of the table; ``met`` is None when the figure has no pass/fail target."""

    figure: str
    value: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    met: bool | None = None


@dataclass(frozen=True)
class Outcome:
    script: str
    command: str
    seconds: float
    figures: dict[str, Any] | None
    error: str | None = None


def num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def ratio_text(value: float) -> str:
    return f"{value:,.0f}×" if value >= 10 else f"{value:.2f}"


def _ingest(f: dict[str, Any]) -> list[Row]:
    return [
        Row(
            f"ingest a {num(f['leads'])}-lead CSV (validate, reject, upsert, record)",
            f"{num(f['leads_per_s'])} leads/s",
            f"DuckDB raw `read_csv` into a table: {num(f['raw_leads_per_s'])} rows/s",
            ratio_text(f["ratio"]),
            "≥ 0.3",
            f["ratio"] >= 0.3,
        )
    ]


def _replay(f: dict[str, Any]) -> list[Row]:
    return [
        Row(
            f"replay {num(f['leads'])} leads with the seed policy (score given)",
            f"{num(f['leads_per_s'])} leads/s",
            f"GoRules ZEN, same decision table per lead: {num(f['zen_leads_per_s'])} leads/s",
            ratio_text(f["ratio"]),
            "≥ 100×",
            f["ratio"] >= 100,
        ),
        Row(
            "one routing decision in-process, model score included",
            f"p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms",
            f"score given: p50 {f['route_p50_ms']:.2f} ms, p99 {f['route_p99_ms']:.2f} ms",
            "",
            "p99 ≤ 5 ms",
            f["p99_ms"] <= 5.0,
        ),
    ]


def _train(f: dict[str, Any]) -> list[Row]:
    return [
        Row(
            f"train the lead score on {num(f['train_rows'])} leads",
            f"{f['train_seconds']:.1f} s",
            f"logistic baseline {f['baseline_train_seconds']:.1f} s",
            f"{f['train_ratio_vs_baseline']:.1f}× the time",
        ),
        Row(
            "batch scoring (one OpenMP thread)",
            f"{num(f['score_rows_per_s'])} rows/s",
            f"logistic baseline {num(f['baseline_score_rows_per_s'])} rows/s",
            ratio_text(f["score_rows_per_s"] / max(f["baseline_score_rows_per_s"], 1)),
        ),
        Row(
            "score one lead in-process, features included",
            f"p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms",
            f"logistic p50 {f['baseline_p50_ms']:.2f} ms, p99 {f['baseline_p99_ms']:.2f} ms",
        ),
    ]


def _matching(f: dict[str, Any]) -> list[Row]:
    return [
        Row(
            f"match {num(f['leads'])} leads to {num(f['accounts'])} accounts",
            f"{num(f['leads_per_s'])} leads/s, precision {f['precision']:.3f}, recall {f['recall']:.3f}",
            f"exact lower-case name join: {num(f['baseline_leads_per_s'])} leads/s,"
            f" precision {f['baseline_precision']:.3f}, recall {f['baseline_recall']:.3f}",
            "",
            "precision ≥ 0.98 at recall ≥ 0.90",
            f["precision"] >= 0.98 and f["recall"] >= 0.90,
        ),
        Row("match one lead", f"p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms"),
    ]


def _evaluate(f: dict[str, Any]) -> list[Row]:
    return [
        Row(
            f"offline evaluation: {num(f['matured_decisions'])} matured logged decisions, 2 policies, DR + intervals",
            f"{f['seconds']:.1f} s",
            f"replay {f['replay_seconds']:.1f} s, reward model {f['model_seconds']:.1f} s,"
            f" estimators {f['estimate_seconds']:.2f} s",
            "",
            "< 30 s at 1,000,000",
            f["seconds"] < 30 if f["leads"] >= 1_000_000 else None,
        )
    ]


def _ope_coverage(f: dict[str, Any]) -> list[Row]:
    others = ", ".join(f"{k} {v:.3f}" for k, v in f["coverage_by_estimator"].items() if k != "dr")
    return [
        Row(
            f"coverage of DR's 95% paired-difference interval vs the simulated truth"
            f" ({f['intervals_per_estimator']} intervals, {f['seeds']} seeds)",
            f"{f['coverage']:.3f}",
            others,
            "",
            "≥ 0.90",
            f["coverage"] >= 0.90,
        )
    ]


def _endpoint(f: dict[str, Any]) -> list[Row]:
    return [
        Row(
            "endpoint `POST /v1/route`, 1,000 demo leads in turn (wrk, 16 connections, fsync on; median of 3 pairs)",
            f"{num(f['route_rps'])} req/s",
            f"bare FastAPI echo route, same server settings: {num(f['echo_rps'])} req/s",
            ratio_text(f["ratio"]),
            "≥ 0.4",
            f["ratio"] >= 0.4,
        ),
        Row(
            f"endpoint latency at half the maximum, {num(f['paced_rps'])} req/s (paced, open loop)",
            f"p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms",
            f"without fsync: p99 {f['p99_ms_without_fsync']:.1f} ms; log fsyncs over 50 ms in the run:"
            f" {f['fsyncs_over_50ms']} of {num(f['fsyncs'])}",
            "",
            "p99 ≤ 20 ms",
            f["p99_ms"] <= 20.0,
        ),
        Row(
            "endpoint batch routing (1,000 leads a request, 2 connections)",
            f"{num(f['batch_leads_per_s'])} leads/s",
            "",
            "",
            "≥ 50,000 leads/s",
            f["batch_leads_per_s"] >= 50_000,
        ),
    ]


def _preview(f: dict[str, Any]) -> list[Row]:
    return [
        Row(
            f"Rules page preview after a threshold change ({num(f['leads'])} leads)",
            f"worst {f['seconds']:.2f} s, median {f['median_seconds']:.2f} s",
            f"cold preview {f['cold_seconds']:.2f} s; AppTest rerun {f['apptest_rerun_seconds']:.2f} s",
            "",
            "< 1 s",
            f["seconds"] < 1.0,
        )
    ]


def _ab_calibration(f: dict[str, Any]) -> list[Row]:
    return [
        Row("A/A false-positive rate, one planned look", f"{f['aa_false_positive_rate']:.4f}", "", "", "≈ 0.05"),
        Row(
            "A/A false-positive rate, looked at every day: always-valid p-value",
            f"{f['peeking_false_positive_rate']:.4f}",
            f"naive fixed test peeked daily: {f['naive_peeking_false_positive_rate']:.4f}",
            "",
            "≤ 0.05",
            f["peeking_false_positive_rate"] <= 0.05,
        ),
        Row(
            "lowest interval coverage with a real effect",
            f"{f['coverage']:.4f}",
            "",
            "",
            "≥ 0.95 less Monte Carlo error",
        ),
        Row("SRM check false-alarm rate on correct splits", f"{f['srm_false_alarm_rate']:.5f}", "", "", "≈ 0.001"),
    ]


ROWS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "ingest": _ingest,
    "replay": _replay,
    "train": _train,
    "matching": _matching,
    "evaluate": _evaluate,
    "ope_coverage": _ope_coverage,
    "endpoint": _endpoint,
    "preview": _preview,
    "ab_calibration": _ab_calibration,
}


def generic_rows(script: str, figures: dict[str, Any]) -> list[Row]:
    """A script this runner does not know yet: its scalar numbers, as printed."""
    numbers = [f"{k} {v:g}" for k, v in figures.items() if isinstance(v, int | float) and not isinstance(v, bool)]
    return [Row(f"`{script}.py`", "; ".join(numbers[:6]) or "(no numeric figures)")]


def scripts(only: list[str] | None) -> list[Path]:
    found = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name and not p.name.startswith("_"))
    if only:
        unknown = sorted(set(only) - {p.stem for p in found})
        if unknown:
            raise SystemExit(f"run_all: no benchmark named {', '.join(unknown)}")
        found = [p for p in found if p.stem in only]
    return found


def run_one(path: Path, quick: bool, timeout_s: float) -> Outcome:
    args = (QUICK_ARGS if quick else FULL_ARGS).get(path.stem, [])
    command = f"python benchmarks/{path.name} {' '.join([*args, '--json'])}"
    print(f"== {command}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(path), *args, "--json"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=os.environ | {"PYTHONPATH": str(REPO)},
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(path.stem, command, time.perf_counter() - started, None, f"timed out after {timeout_s:.0f} s")
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return Outcome(path.stem, command, seconds, None, tail)
    lines = done.stdout.strip().splitlines()
    try:
        figures = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        figures = None
    if not isinstance(figures, dict):
        return Outcome(path.stem, command, seconds, None, "the last line of its output is not a JSON object")
    print(f"   {seconds:.0f} s", file=sys.stderr, flush=True)
    return Outcome(path.stem, command, seconds, figures)


def table(outcomes: list[Outcome], quick: bool) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured by `python benchmarks/run_all.py{' --quick' if quick else ''}` on {when},"
        f" {os.cpu_count()} cores, load average {load:.1f} at the end of the run."
        + (" **Quick sizes**: the targets are stated for the full sizes." if quick else ""),
        "",
        "| figure | value | baseline (same run) | ratio | target | command |",
        "|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        if outcome.figures is None:
            lines.append(f"| `{outcome.script}.py` | **failed**: {outcome.error} | | | | `{outcome.command}` |")
            continue
        build = ROWS.get(outcome.script)
        try:
            rows = build(outcome.figures) if build else generic_rows(outcome.script, outcome.figures)
        except (KeyError, TypeError, ValueError) as exc:  # the script's JSON changed shape
            rows = [*generic_rows(outcome.script, outcome.figures)]
            print(f"run_all: {outcome.script}: unexpected figures ({exc!r}); listed as printed", file=sys.stderr)
        for i, row in enumerate(rows):
            verdict = {True: " — met", False: " — **missed**", None: ""}[row.met] if row.target else ""
            command = f"`{outcome.command}`" if i == 0 else "same"
            cells = [row.figure, row.value, row.baseline, row.ratio, row.target + verdict, command]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def write_readme(path: Path, text: str) -> None:
    readme = path.read_text(encoding="utf-8")
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise SystemExit(f"run_all: {path} needs one {START} … {END} section")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (minutes); the README is not written")
    parser.add_argument("--only", action="append", help="run only this benchmark (repeat)")
    parser.add_argument("--readme", type=Path, help="write the table here (default: README.md unless --quick)")
    parser.add_argument("--no-readme", action="store_true", help="print the table only")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds one script may take")
    args = parser.parse_args(argv)
    outcomes = [run_one(path, args.quick, args.timeout) for path in scripts(args.only)]
    text = table(outcomes, args.quick)
    print(text)
    failed = [o for o in outcomes if o.figures is None]
    target = None if args.no_readme else (args.readme or (None if args.quick else REPO / "README.md"))
    if failed:
        names = ", ".join(o.script for o in failed)
        print(f"run_all: {len(failed)} benchmark(s) failed ({names}); README not written", file=sys.stderr)
        raise SystemExit(1)
    if target is not None:
        write_readme(target, text)
        print(f"run_all: table written to {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
