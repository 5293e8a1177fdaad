"""Replay throughput of the seed policy against GoRules' ZEN engine, measured in one run.

Simulates the demo company with ``--leads`` leads (default 1,000,000), then times:

- ``ours``: ``Policy.replay`` of ``policies/seed.yaml`` over every lead carrying its score (ZEN
  gets the score as input too) — rule matching, round robin with capacity and absences,
  fallbacks, propensities, reasons — in time order, in-process (``leads_per_s``). Scoring all
  leads first (by default the project's logistic ``ConversionClassifier`` trained on a separate
  20,000-lead history; ``--scorer truth`` uses the simulated truth's quality percentile) is timed
  separately: ``scored_leads_per_s`` is the throughput score included;
- ``zen``: the same decision table (score tiers → team, first hit) as a JSON Decision Model
  evaluated per lead by ``zen-engine`` (Rust) on a sample of ``--zen-sample`` leads. ZEN only
  matches the table: no scoring, no assignment, so the comparison favours ZEN.
- per-lead latency: ``Policy.route_one`` on ``--latency-sample`` leads, score included
  (``p50_ms``/``p99_ms``), and with the score already on the lead (``route_p50_ms``/``route_p99_ms``).

``ratio = ours leads/s ÷ zen leads/s`` (target ≥ 100); p99 target ≤ 5 ms. ``--json`` prints, as
its last line, ``{"leads_per_s", "zen_leads_per_s", "ratio", "p50_ms", "p99_ms", ...}``.

    python benchmarks/replay.py [--leads N] [--zen-sample K] [--latency-sample K] [--json]

``zen-engine`` is a benchmark-only dependency (``pip install zen-engine``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.policy import Policy, Roster, RoutingState
from models.simulation import SimulationConfig, simulate_company
from pipelines.policies import SHIPPED_DIR, read_file
from pipelines.replay import TruthScorer


class ModelScorer:
    """The project's conversion model as a ``LeadScorer`` (0–100 percentile score)."""

    def __init__(self, seed: int) -> None:
        from models.scoring.estimator import ConversionClassifier

        history = simulate_company(SimulationConfig(n_leads=20_000, seed=seed)).matured()
        self.model = ConversionClassifier(
            categorical=("industry", "region", "source", "seniority", "product_interest"),
            numeric=("employees", "web_visits", "email_opens", "pricing_page_views"),
            kind="logistic",
            calibration="none",
        ).fit(history, history["converted"])
        from models.scoring.compiled import compile_classifier

        self.compiled = compile_classifier(self.model)

    def score(self, leads: pl.DataFrame) -> np.ndarray:
        return np.asarray(self.model.lead_score(leads), dtype=np.float64)

    def score_one(self, lead: Mapping[str, Any]) -> float:
        """The same score for one lead without a frame (what ``Policy.route_one`` uses)."""
        row = None if self.compiled is None else self.compiled.model_row(lead)
        if self.compiled is None or row is None:
            return float(self.score(pl.DataFrame([lead]))[0])
        return self.compiled.lead_score(row)


def seed_table_jdm() -> dict[str, object]:
    """The seed policy's rule table as a ZEN JSON Decision Model (first hit)."""
    rules = [
        ("hot", "> 80", "enterprise"),
        ("warm", "[50..80]", "nurture"),
        ("cold", "< 50", "smb"),
        ("fallback", "", "queue"),
    ]
    return {
        "nodes": [
            {"id": "in", "type": "inputNode", "name": "Lead", "position": {"x": 0, "y": 0}},
            {
                "id": "table",
                "type": "decisionTableNode",
                "name": "seed",
                "position": {"x": 200, "y": 0},
                "content": {
                    "hitPolicy": "first",
                    "inputs": [{"id": "score", "name": "Score", "field": "score"}],
                    "outputs": [
                        {"id": "team", "name": "Team", "field": "team"},
                        {"id": "rule", "name": "Rule", "field": "rule"},
                    ],
                    "rules": [
                        {"_id": name, "score": cell, "team": f'"{team}"', "rule": f'"{name}"'}
                        for name, cell, team in rules
                    ],
                },
            },
            {"id": "out", "type": "outputNode", "name": "Decision", "position": {"x": 400, "y": 0}},
        ],
        "edges": [
            {"id": "e1", "sourceId": "in", "targetId": "table", "type": "edge"},
            {"id": "e2", "sourceId": "table", "targetId": "out", "type": "edge"},
        ],
    }


def latency(policy: Policy, leads: list[dict[str, object]], roster: Roster) -> tuple[float, float]:
    """p50 and p99 in ms of routing each lead in turn (fresh state, after a short warm-up)."""
    state, rng = RoutingState(roster.size), np.random.default_rng(2)
    for lead in leads[:50]:
        policy.route_one(lead, state, rng)
    state = RoutingState(roster.size)
    times = []
    for lead in leads:
        started = time.perf_counter()
        policy.route_one(lead, state, rng)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--zen-sample", type=int, default=20_000)
    parser.add_argument("--latency-sample", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scorer", choices=("model", "truth"), default="model")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print

    say(f"simulating {args.leads:,} leads …")
    company = simulate_company(SimulationConfig(n_leads=args.leads, seed=args.seed))
    roster = Roster.from_frames(company.reps, company.teams, company.absences, company.accounts)
    spec = read_file(SHIPPED_DIR / "seed.yaml").spec
    scorer: ModelScorer | TruthScorer = ModelScorer(args.seed + 1) if args.scorer == "model" else TruthScorer(company)
    policy = Policy(spec, roster, scorer=scorer)
    leads = company.leads

    # ZEN receives the score as input, so the headline figure routes leads that carry their score
    # too; scoring the million leads with the model is timed on its own and reported beside it.
    started = time.perf_counter()
    scored = leads.with_columns(pl.Series("score", scorer.score(leads)))
    scoring_seconds = time.perf_counter() - started
    router = Policy(spec, roster)
    router.replay(scored.head(10_000), rng=np.random.default_rng(0))  # warm up (imports, caches)
    started = time.perf_counter()
    replay = router.replay(scored, rng=np.random.default_rng(0))
    seconds = time.perf_counter() - started
    leads_per_s = leads.height / seconds
    scored_leads_per_s = leads.height / (seconds + scoring_seconds)
    assert replay.decisions["team"].null_count() == 0
    say(f"ours: {leads.height:,} leads in {seconds:.2f} s = {leads_per_s:,.0f} leads/s (score given)")
    say(f"      with model scoring ({scoring_seconds:.2f} s): {scored_leads_per_s:,.0f} leads/s")

    import zen  # benchmark-only dependency

    decision = zen.ZenEngine().create_decision(json.dumps(seed_table_jdm()))
    rng = np.random.default_rng(1)
    sample = np.sort(rng.choice(leads.height, size=min(args.zen_sample, leads.height), replace=False))
    scores = scored["score"].gather(sample).to_list()
    decision.evaluate({"score": scores[0]})
    started = time.perf_counter()
    zen_teams = [decision.evaluate({"score": s})["result"]["team"] for s in scores]
    zen_seconds = time.perf_counter() - started
    zen_per_s = len(scores) / zen_seconds
    ours_rule_team = np.array(["enterprise", "nurture", "smb", "queue"])[router.match(scored[sample])]
    agree = float(np.mean(ours_rule_team == np.array(zen_teams)))
    say(f"zen:  {len(scores):,} leads in {zen_seconds:.2f} s = {zen_per_s:,.0f} leads/s (agreement {agree:.4f})")

    lat_rows = rng.choice(leads.height, size=min(args.latency_sample, leads.height), replace=False)
    lat_frame = leads[np.sort(lat_rows)]
    lat_leads = lat_frame.to_dicts()
    p50, p99 = latency(policy, lat_leads, roster)
    say(f"per lead (score included): p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    with_score = lat_frame.with_columns(pl.Series("score", scorer.score(lat_frame))).to_dicts()
    route_p50, route_p99 = latency(router, with_score, roster)
    say(f"per lead (score given):    p50 {route_p50:.3f} ms, p99 {route_p99:.3f} ms")
    ratio = leads_per_s / zen_per_s
    say(f"ratio ours/zen: {ratio:,.1f}× (target ≥ 100×)")
    if args.json:
        print(
            json.dumps(
                {
                    "leads_per_s": leads_per_s,
                    "zen_leads_per_s": zen_per_s,
                    "ratio": ratio,
                    "p50_ms": p50,
                    "p99_ms": p99,
                    "route_p50_ms": route_p50,
                    "route_p99_ms": route_p99,
                    "scorer": args.scorer,
                    "leads": leads.height,
                    "zen_sample": len(scores),
                    "zen_agreement": agree,
                    "replay_seconds": seconds,
                    "scoring_seconds": scoring_seconds,
                    "scored_leads_per_s": scored_leads_per_s,
                }
            )
        )


if __name__ == "__main__":
    pl.Config.set_tbl_rows(5)
    main()
