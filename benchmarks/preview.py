"""The Rules page's preview after a score-threshold change, on 100,000 historical leads.

Builds a demo workspace of ``--leads`` leads (default 100,000; simulated, imported through the
CSV pipeline, quality-checked, shipped policies registered; not timed) unless ``--home`` names
an existing one, then times, in one run:

- ``cold_seconds``: the first ``pipelines.preview.preview`` of the seed policy with an empty
  cache (load and score the history, fit the cross-fitted reward model, replay the baseline and
  the candidate) — the baseline of the caching;
- ``seconds``: the same library call after moving the seed policy's hot cut-off to each of
  ``--moves`` new values (the slowest of them; ``median_seconds`` beside it): one replay of the
  whole history with capacity, the direct-method estimate with its interval and the paired
  difference, load per rep and fairness;
- ``apptest_rerun_seconds``: a Streamlit ``AppTest`` rerun of the Rules page after moving the
  slider (the page's whole script: widgets, validation, the preview call, every table).

Target: ``seconds`` < 1 on 100,000 leads.

    python benchmarks/preview.py [--leads N] [--home DIR] [--moves K] [--json]

With ``--json`` the last line is ``{"seconds": …, "median_seconds": …, "cold_seconds": …,
"apptest_rerun_seconds": …, "leads": …, "matured": …}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.demo import build_demo
from pipelines.policies import resolve
from pipelines.preview import clear_cache, preview, score_cutoffs, source_from_raw, with_cutoffs
from pipelines.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--home", type=Path, help="an existing demo workspace (skips building one)")
    parser.add_argument("--moves", type=int, default=5, help="threshold changes timed")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print

    with tempfile.TemporaryDirectory(prefix="leadroute-preview-") as scratch:
        home = args.home or Path(scratch) / "ws"
        settings = Settings(home=home)
        if args.home is None:
            say(f"building a demo workspace of {args.leads:,} leads (not timed) …")
            build_demo(settings, n_leads=args.leads, seed=args.seed, check_quality=True, register_policies=True)
        seed = resolve(settings, "seed")
        hot = score_cutoffs(seed.raw)[0].value

        clear_cache()
        started = time.perf_counter()
        first = preview(settings, seed)
        cold = time.perf_counter() - started
        say(f"cold preview (load, score, fit the reward model, replay twice): {cold:.2f} s")

        times = []
        for k in range(args.moves):
            cut = hot - 2.0 * (k + 1)
            candidate = source_from_raw(with_cutoffs(seed.raw, {hot: cut}))
            started = time.perf_counter()
            result = preview(settings, candidate)
            times.append(time.perf_counter() - started)
            conversions = result.expected_conversions()
            shown = "—" if conversions is None else f"{conversions[0]:,.1f}"
            say(f"hot cut-off {hot:g} → {cut:g}: {times[-1]:.3f} s (expected conversions {shown})")

        os.environ["LEADROUTE_HOME"] = str(home)
        from streamlit.testing.v1 import AppTest

        app = AppTest.from_file(str(REPO / "app.py"), default_timeout=600).run()
        app.switch_page("workbench/rules.py").run()
        app.selectbox(key="rules_policy").set_value("seed").run()
        slider = app.slider[0]
        slider.set_value(float(hot) - 7.0)
        started = time.perf_counter()
        app.run()
        rerun = time.perf_counter() - started
        if app.exception:
            raise SystemExit(f"the Rules page failed: {app.exception[0].message}")
        say(f"AppTest rerun of the Rules page after moving the slider: {rerun:.3f} s")

    worst, median = max(times), statistics.median(times)
    say(
        f"{first.n_leads:,} leads ({first.n_matured:,} matured): preview after a threshold change"
        f" {median:.3f} s median, {worst:.3f} s worst (cold {cold:.2f} s); target < 1 s"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "seconds": worst,
                    "median_seconds": median,
                    "cold_seconds": cold,
                    "apptest_rerun_seconds": rerun,
                    "leads": first.n_leads,
                    "matured": first.n_matured,
                    "moves": args.moves,
                }
            )
        )


if __name__ == "__main__":
    main()
