"""Online experiments end to end on the simulated company: lead traffic through the real endpoint
split 50/50, outcomes drawn from the ground truth and sent back through ``/v1/outcomes``; the
report must pick the arm the truth says is better, declare no winner in an A/A test, and
``stop`` must promote the winner."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import pytest

from leadroute.serving.traffic import conversion_events, payloads
from models.simulation import simulate_company
from pipelines.demo import simulation_config
from pipelines.deployments import history, live_deployment
from pipelines.experiments import list_experiments, predicted_vs_realised, report, start, stop
from pipelines.policies import parse_text, register
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse
from tests.serving_support import Server, api_key, demo_workspace

QUEUE_ALL = "name: queue_all\nrules:\n  - name: everyone\n    then: {team: queue}\nfallback: {team: queue}\n"
COPIES = 3  # the demo's 2,000 leads sent three times (fresh ids, fresh outcome draws)


def _wait_serving(server: Server, experiment: str, timeout_s: float = 30.0) -> None:
    """Until the endpoint's deployment poller has picked the experiment up (it polls every 2 s)."""
    headers = {"Authorization": f"Bearer {api_key(server.settings)}"}
    deadline = time.monotonic() + timeout_s
    served: dict[str, Any] = {}
    while time.monotonic() < deadline:
        served = httpx.get(f"{server.url}/v1/deployment", headers=headers, timeout=10).json()
        if served["experiment"] == experiment:
            return
        time.sleep(0.2)
    raise AssertionError(f"the endpoint still serves {served} after {timeout_s} s")


def _run_traffic(server: Server, leads: pl.DataFrame, prefix: str, seed: int) -> pl.DataFrame:
    """Route every lead through the endpoint, then send back outcomes drawn from the truth."""
    return pl.concat([_run_once(server, leads, f"{prefix}{k}-", seed + k) for k in range(COPIES)])


def _run_once(server: Server, leads: pl.DataFrame, prefix: str, seed: int) -> pl.DataFrame:
    settings = server.settings
    config = simulation_config(Warehouse(settings.warehouse_path))
    assert config is not None
    truth = simulate_company(config).truth
    headers = {"Authorization": f"Bearer {api_key(settings)}"}
    decided: list[dict[str, Any]] = []
    with httpx.Client(base_url=server.url, headers=headers, timeout=60.0) as client:
        sent = payloads(leads, prefix)
        for start_at in range(0, len(sent), 200):
            response = client.post("/v1/route/batch", json={"leads": sent[start_at : start_at + 200]})
            assert response.status_code == 200, response.text
            decided.extend(response.json()["decisions"])
        decisions = pl.DataFrame(
            {
                "lead_id": [d["lead_id"].removeprefix(prefix) for d in decided],
                "team": [d["team"] for d in decided],
                "rep_id": [d["rep_id"] for d in decided],
                "arm": [d["arm"] for d in decided],
            }
        )
        probability = truth.conversion_probability(leads, decisions.select("lead_id", "team", "rep_id"))
        rng = np.random.default_rng(seed)
        converted = rng.random(probability.size) < probability
        events = conversion_events(prefix, decisions["lead_id"].to_list(), converted, delay_days=3)
        for start_at in range(0, len(events), 500):
            response = client.post("/v1/outcomes", json={"events": events[start_at : start_at + 500]})
            assert response.status_code == 200, response.text
    return decisions.with_columns(pl.Series("p_true", probability), pl.Series("converted", converted))


def test_experiments_pick_the_truly_better_policy_and_no_winner_in_an_a_a_test(tmp_path: Path) -> None:
    settings: Settings = demo_workspace(tmp_path / "ws")
    register(settings, parse_text(QUEUE_ALL, "queue_all.yaml"))
    config = simulation_config(Warehouse(settings.warehouse_path))
    assert config is not None
    leads = simulate_company(config).leads
    server = Server(settings, extra_args=("--no-model",)).start()
    later = datetime.now(UTC) + timedelta(days=40)
    try:
        started = start(
            settings,
            "rr-vs-queue",
            ["round_robin", "queue_all"],
            horizon_days=30,
            salt="fixed-1",
            expected_leads=COPIES * leads.height,
        )
        assert [a["arm"] for a in started["arms"]] == ["A", "B"]
        assert started["prediction"]["available"], started["prediction"]
        _wait_serving(server, "rr-vs-queue")
        outcome = _run_traffic(server, leads, "ab-", seed=3)
        true_rate = outcome.group_by("arm").agg(pl.col("p_true").mean()).sort("arm")["p_true"].to_list()
        truly_better = "A" if true_rate[0] > true_rate[1] else "B"
        assert abs(true_rate[0] - true_rate[1]) > 0.02  # a real difference in the truth

        early = report(settings, "rr-vs-queue")  # nothing has matured yet: no verdict
        assert early.verdict["winner"] is None and all(a["matured"] == 0 for a in early.arms)
        final = report(settings, "rr-vs-queue", as_of=later)
        assert final.verdict["winner"] == truly_better, final.lines()
        assert not final.srm["mismatch"]
        decided = {a["arm"]: a["decided"] for a in final.arms}
        assert decided["A"] + decided["B"] == COPIES * leads.height
        assert abs(decided["A"] / (COPIES * leads.height) - 0.5) < 0.03
        primary = next(c for c in final.comparisons if c["metric"] == "conversion")
        realised = {a["arm"]: a["conversions"] / a["matured"] for a in final.arms}
        assert primary["comparison"]["lift"] == pytest.approx(realised["B"] - realised["A"])
        assert primary["headline"]["ci_low"] <= primary["comparison"]["lift"] <= primary["headline"]["ci_high"]
        assert final.path and final.path[-1]["n"] == COPIES * leads.height
        assert any("predicted offline" in line for line in final.lines())

        stopped = stop(settings, "rr-vs-queue", as_of=later)
        assert stopped["winner"] == truly_better
        live = live_deployment(settings)
        winner_policy = "round_robin" if truly_better == "A" else "queue_all"
        assert live is not None and [a["policy"] for a in live[1]] == [winner_policy]
        assert history(settings).row(0, named=True)["reason"] == "winner of experiment rr-vs-queue"
        comparison = predicted_vs_realised(settings, "rr-vs-queue")
        assert comparison[0]["arm"] == "B" and comparison[0]["predicted"] is not None
        # The offline estimate made before launch agrees with the realised lift in sign.
        assert np.sign(comparison[0]["predicted"]["value"]) == np.sign(comparison[0]["realised"]["lift"])

        start(
            settings,
            "a-a",
            ["round_robin", "round_robin"],
            horizon_days=30,
            salt="fixed-2",
            predict=False,
            expected_leads=COPIES * leads.height,
        )
        _wait_serving(server, "a-a")
        _run_traffic(server, leads, "aa-", seed=5)
        aa = report(settings, "a-a", as_of=later)
        assert aa.verdict["winner"] is None, aa.lines()
        assert "no difference" in aa.verdict["message"]
        assert list_experiments(settings)["status"].to_list() == ["running", "stopped"]
    finally:
        server.stop()
