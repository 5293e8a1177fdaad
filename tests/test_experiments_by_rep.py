"""Experiments randomised by rep: each sales rep serves one arm only (no shared capacity between
arms), the report clusters its intervals by rep, and a restart rebuilds each arm's state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from leadroute.serving import JsonLog, RoutingService, build_deployment
from leadroute.serving.router import DECISIONS
from leadroute.serving.traffic import simulate_traffic
from pipelines.demo import build_demo
from pipelines.deployments import live_deployment
from pipelines.experiments import report, start
from pipelines.policies import load_roster
from pipelines.settings import Settings


def test_randomised_by_rep_each_rep_serves_one_arm_and_intervals_cluster_by_rep(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "ws")
    build_demo(settings, n_leads=1_000, seed=8, register_policies=True)
    with pytest.raises(ValueError, match="--unit"):
        start(settings, "bad", ["round_robin", "territory"], unit="team", predict=False)
    started = start(settings, "by-rep", ["round_robin", "territory"], unit="rep", salt="r1", predict=False)
    reps = {a["arm"]: set(a["reps"]) for a in started["arms"]}
    roster = load_roster(settings)
    sales = {
        str(r) for r, t, a in zip(roster.rep_id, roster.team, roster.active, strict=True)
        if a and roster.teams.get(str(t), "sales") == "sales"
    }  # fmt: skip
    assert reps["A"] and reps["B"] and not reps["A"] & reps["B"] and reps["A"] | reps["B"] == sales

    traffic = simulate_traffic(settings, prefix="r-", seed=4, n_leads=800)
    assigned = traffic.decisions.filter(pl.col("rep_id").is_not_null())
    assert assigned.height > 100
    for arm, rep in zip(assigned["arm"], assigned["rep_id"], strict=True):
        assert rep in reps[arm]  # a lead of arm A never reaches a rep of arm B

    read = report(settings, "by-rep", as_of=datetime.now(UTC) + timedelta(days=40))
    primary = next(c for c in read.comparisons if c["metric"] == "conversion")
    assert primary["comparison"]["n_clusters"] is not None and primary["comparison"]["n_clusters"] >= 2
    assert read.notes[0].startswith("Randomised by rep and no rep works both arms")
    assert any(note.startswith("Intervals are clustered by rep_id") for note in read.notes)

    # A restart replays each arm with its own reps: every decision is reproduced.
    log = JsonLog(settings.decision_log_dir, DECISIONS)
    service = RoutingService(settings, roster, build_deployment(settings, roster, None, live_deployment(settings)), log)
    rebuilt = service.rebuild()
    log.close()
    assert rebuilt.replayed == 800 and rebuilt.matched == 800
