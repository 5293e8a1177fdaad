"""The endpoint's parts in process: the durable log, keys, arm assignment, metrics text."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from leadroute.serving import Arm, Deployment, JsonLog, load_keys, log_files, read_records
from leadroute.serving.metrics import Metrics
from leadroute.serving.router import _RandomIds, decision_seed
from models.policy import Policy, Roster, parse_policy


def test_log_rotates_by_size_and_cuts_a_torn_tail_at_start(tmp_path: Path) -> None:
    log = JsonLog(tmp_path, "decisions", max_bytes=200)
    for i in range(10):
        log.write([{"i": i, "pad": "x" * 40}])
    log.close()
    files = log_files(tmp_path, "decisions")
    assert len(files) > 1 and all(p.stat().st_size <= 200 for p in files)
    with files[-1].open("ab") as handle:
        handle.write(b'{"i": 99, "torn')  # a crash mid-write: never fsynced, never acknowledged
    assert [r["i"] for r in read_records(tmp_path, "decisions")] == list(range(10))
    again = JsonLog(tmp_path, "decisions")
    again.write([{"i": 10}])
    again.close()
    assert files[-1].read_bytes().endswith(b"\n")
    assert [r["i"] for r in read_records(tmp_path, "decisions")] == list(range(11))


def test_keys_from_env_or_an_owner_only_file(tmp_path: Path) -> None:
    ring = load_keys(tmp_path, {"LEADROUTE_API_KEYS": "a1, b2"})
    assert ring.source == "env" and ring.accepts("Bearer b2") and not ring.accepts("Bearer a")
    assert not ring.accepts(None) and not ring.accepts("b2") and not ring.accepts("Basic b2")
    made = load_keys(tmp_path / "ws", {})
    key_file = Path(made.source)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert made.accepts("Bearer " + key_file.read_text().strip())
    assert load_keys(tmp_path / "ws", {}).keys == made.keys  # created once, then reused
    os.chmod(key_file, 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        load_keys(tmp_path / "ws", {})


def _policy(name: str) -> Policy:
    import polars as pl

    spec = parse_policy({"name": name, "rules": [], "fallback": {"team": "queue"}})
    reps = pl.DataFrame({"rep_id": ["r1"], "name": ["R"], "team": ["sales"]})
    return Policy(spec, Roster.from_frames(reps, pl.DataFrame({"team": ["queue"], "kind": ["queue"]})), version=1)


def test_arm_assignment_is_sticky_and_follows_the_shares() -> None:
    deployment = Deployment(7, (Arm(_policy("a"), 0.8, "control"), Arm(_policy("b"), 0.2, "canary")), "exp", "salt")
    picks = [deployment.pick(f"lead-{i}").label for i in range(5000)]
    assert picks == [deployment.pick(f"lead-{i}").label for i in range(5000)]
    assert picks.count("canary") / len(picks) == pytest.approx(0.2, abs=0.02)
    assert [a["share"] for a in deployment.to_json()["arms"]] == pytest.approx([0.8, 0.2])


def test_metrics_text_has_counters_and_a_cumulative_histogram() -> None:
    metrics = Metrics()
    metrics.inc("leadroute_requests_total", "Requests.", route="/v1/route", status="200")
    for seconds in (0.002, 0.02, 3.0):
        metrics.observe_latency("/v1/route", seconds)
    text = metrics.render()
    assert 'leadroute_requests_total{route="/v1/route",status="200"} 1' in text
    assert 'leadroute_request_duration_seconds_bucket{route="/v1/route",le="0.0025"} 1' in text
    assert 'leadroute_request_duration_seconds_bucket{route="/v1/route",le="+Inf"} 3' in text
    assert 'leadroute_request_duration_seconds_count{route="/v1/route"} 3' in text


def test_decision_ids_are_distinct_version_4_uuids_across_refills() -> None:
    ids = _RandomIds(chunk=64)  # four ids a read: the test crosses many refills
    drawn = [ids.next() for _ in range(1000)]
    assert len({text for text, _ in drawn}) == 1000
    for text, seed in drawn:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert seed == decision_seed(text)
