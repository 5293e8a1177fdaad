"""Rollout: canary ramps that advance while guardrails hold and roll back by themselves when one
is breached, one-command rollback, the deployment history, the model alias moving with it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from models.policy.metrics import gini
from models.rollout import ArmOutcomes, check_guardrails, parse_steps, ramp_verdict
from pipelines.deployments import deploy, history, live_deployment, rollback
from pipelines.endpoint_logs import load_endpoint_logs
from pipelines.policies import parse_text, register
from pipelines.rollout import advance, rollouts
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse, query_frame
from tests.serving_support import Server, api_key, demo_workspace, sample_leads


def _arm(rng: np.random.Generator, n: int, overload: float, reps: int = 10) -> ArmOutcomes:
    return ArmOutcomes(
        rep_overload=(rng.random(n) < overload).astype(float),
        no_owner=np.zeros(n),
        fallback=np.zeros(n),
        touch_hours=np.full(n, np.nan),
        assigned_per_rep=np.full(reps, n / reps),
    )


def test_gini_and_steps() -> None:
    assert gini(np.array([5.0, 5.0, 5.0])) == pytest.approx(0.0)
    assert gini(np.array([0.0, 0.0, 9.0])) == pytest.approx(2 / 3)
    assert parse_steps("5,25,50,100") == (0.05, 0.25, 0.5, 1.0)
    assert parse_steps("5,25,50", first=0.10) == (0.10, 0.25, 0.5, 1.0)
    for bad in ("50,25", "0,50", "x", "150"):
        with pytest.raises(ValueError, match="--steps"):
            parse_steps(bad)


def test_guardrails_hold_on_equal_arms_and_trip_on_a_real_breach() -> None:
    tolerances = {"rep_overload": 0.02, "fairness_gini": 0.1}
    false_alarms = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        checks = check_guardrails(_arm(rng, 400, 0.03), _arm(rng, 400, 0.03), tolerances)
        false_alarms += any(c.breached for c in checks)
    assert false_alarms <= 2  # always-valid intervals: looking often does not trip an equal canary
    rng = np.random.default_rng(1)
    checks = check_guardrails(_arm(rng, 200, 0.60), _arm(rng, 200, 0.02), tolerances)
    assert [c.name for c in checks if c.breached] == ["rep_overload"]
    verdict = ramp_verdict(checks, canary_decisions=200, min_decisions=50, step_age_s=0, min_step_s=0)
    assert verdict.action == "rollback" and "rep_overload" in verdict.reason
    few = check_guardrails(_arm(rng, 10, 0.9), _arm(rng, 10, 0.0), tolerances)
    assert not any(c.breached for c in few) and not few[0].measurable
    held = ramp_verdict(few, canary_decisions=10, min_decisions=50, step_age_s=0, min_step_s=0)
    assert held.action == "hold"


def _hog(settings: Settings) -> str:
    """A policy that sends every lead to one rep and ignores capacity: it overloads that rep."""
    with Warehouse(settings.warehouse_path).connect() as con:
        rep, team = con.execute(
            "SELECT r.rep_id, r.team FROM reps r JOIN teams t USING (team) WHERE t.kind = 'sales' AND r.active"
            " ORDER BY r.rep_id LIMIT 1"
        ).fetchall()[0]
    text = (
        "name: hog\nrules:\n  - name: everyone\n"
        f"    then: {{team: {team}, reps: [{rep}], method: round_robin, respect_capacity: false}}\n"
        "fallback: {team: queue}\n"
    )
    register(settings, parse_text(text, "hog.yaml"))
    return "hog"


def _route(server: Server, leads: list[dict[str, object]]) -> None:
    headers = {"Authorization": f"Bearer {api_key(server.settings)}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as client:
        for start in range(0, len(leads), 100):
            response = client.post("/v1/route/batch", json={"leads": leads[start : start + 100]})
            assert response.status_code == 200, response.text


def _served(server: Server) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {api_key(server.settings)}"}
    return dict(httpx.get(f"{server.url}/v1/deployment", headers=headers, timeout=10.0).json())


def test_a_breached_canary_rolls_back_by_itself_and_a_healthy_one_ramps_to_full(tmp_path: Path) -> None:
    settings = demo_workspace(tmp_path / "ws")
    deploy(settings, "round_robin", reason="baseline")
    hog = _hog(settings)
    leads = sample_leads(settings, 1200)
    server = Server(settings, extra_args=("--no-model",), env={"LEADROUTE_ROLLOUT_INTERVAL_S": "0.5"}).start()
    try:
        canary = deploy(settings, hog, canary_pct=50, steps="50,100", min_decisions=100, reason="try the hog")
        assert canary.kind == "canary" and canary.share == 0.5
        deadline = time.monotonic() + 20
        while _served(server).get("deployment_id") != canary.deployment_id and time.monotonic() < deadline:
            time.sleep(0.2)
        _route(server, leads[:600])
        # The endpoint's rollout worker looks every 0.5 s: the overload breach rolls it back.
        deadline = time.monotonic() + 60
        while rollouts(settings)[0].status == "running" and time.monotonic() < deadline:
            time.sleep(0.5)
        status = rollouts(settings)[0]
        assert status.status == "rolled_back", status.line()
        assert status.verdict is not None and "rep_overload" in status.verdict.reason
        live = live_deployment(settings)
        assert live is not None
        assert [a["policy"] for a in live[1]] == ["round_robin"]
        deadline = time.monotonic() + 20
        while _served(server)["deployment_id"] != live[0] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [a["policy"] for a in _served(server)["arms"]] == ["round_robin"]  # type: ignore[index]
        top = history(settings).row(0, named=True)
        assert top["kind"] == "rollback" and top["actor"] == "rollout" and "rep_overload" in top["reason"]

        # A healthy canary (territory, which respects capacity) ramps 50% → 100% and is promoted.
        healthy = deploy(settings, "territory", canary_pct=50, steps="50,100", min_decisions=100)
        deadline = time.monotonic() + 20
        while _served(server)["deployment_id"] != healthy.deployment_id and time.monotonic() < deadline:
            time.sleep(0.2)
        _route(server, leads[600:1000])
        deadline = time.monotonic() + 60
        while rollouts(settings)[0].status == "running" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert rollouts(settings)[0].status == "completed", rollouts(settings)[0].line()
        live = live_deployment(settings)
        assert live is not None and [a["policy"] for a in live[1]] == ["territory"]
        kinds = history(settings)["kind"].to_list()
        assert kinds[:2] == ["promote", "canary"]
    finally:
        server.stop()
    # One command returns to what was live before the promotion.
    back = rollback(settings, reason="changed our mind")
    assert back.policy == "round_robin"
    live = live_deployment(settings)
    assert live is not None and [a["policy"] for a in live[1]] == ["round_robin"]
    # Every 200-answered decision reached the warehouse with its arm and deployment.
    load_endpoint_logs(settings)
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        arms = query_frame(
            con,
            "SELECT arm, count(*) AS n FROM decisions WHERE extra->>'$.deployment_id' IS NOT NULL GROUP BY arm",
        )
    assert int(arms["n"].sum()) == 1000
    assert set(arms["arm"].to_list()) == {"baseline", "canary"}


def test_rollback_without_a_rollout_and_guards(tmp_path: Path) -> None:
    settings = demo_workspace(tmp_path / "ws")
    with pytest.raises(ValueError, match="nothing is deployed"):
        rollback(settings)
    first = deploy(settings, "round_robin")
    with pytest.raises(ValueError, match="no earlier deployment"):
        rollback(settings)
    deploy(settings, "territory", reason="regions matter")
    with pytest.raises(ValueError, match="already live"):
        deploy(settings, "territory", canary_pct=10)
    back = rollback(settings, reason="regions did not matter")
    assert back.policy == "round_robin" and back.deployment_id > first.deployment_id
    frame = history(settings)
    assert frame["kind"].to_list() == ["rollback", "deploy", "deploy"]
    assert frame["status"].to_list() == ["live", "replaced", "replaced"]
    assert frame["reason"].to_list()[:2] == ["regions did not matter", "regions matter"]
    assert frame["what"].to_list()[0].startswith("round_robin@")
    with pytest.raises(ValueError, match="--canary"):
        deploy(settings, "territory", canary_pct=100)
    with pytest.raises(ValueError, match="--guardrail"):
        deploy(settings, "territory", canary_pct=5, guardrails={"latency": 1.0})
    started = deploy(settings, "territory", canary_pct=5)
    with pytest.raises(ValueError, match="still running"):
        deploy(settings, "best_fit", canary_pct=5)
    status = advance(settings)
    assert status is not None and status.status == "running" and status.verdict is not None
    assert status.verdict.action == "hold"
    rollback(settings)
    assert rollouts(settings)[0].status == "rolled_back"
    assert started.rollout_id == rollouts(settings)[0].rollout_id


def test_rollback_moves_the_champion_alias_back_with_the_deployment(tmp_path: Path) -> None:
    from pipelines import registry
    from pipelines.train import train

    settings = demo_workspace(tmp_path / "ws", train=True)
    first_model = registry.alias_version(settings, "lead-score", "champion")
    assert first_model is not None
    before = deploy(settings, "seed")
    assert before.model_version == first_model
    train(settings, promote="always")  # a new champion, then a deployment made with it
    second_model = registry.alias_version(settings, "lead-score", "champion")
    assert second_model is not None and second_model != first_model
    after = deploy(settings, "round_robin", reason="with the new model")
    assert after.model_version == second_model
    back = rollback(settings, reason="the new model misbehaves")
    assert back.policy == "seed" and back.model_version == first_model
    assert registry.alias_version(settings, "lead-score", "champion") == first_model
    assert history(settings).row(0, named=True)["model_version"] == first_model
