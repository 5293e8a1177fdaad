"""``leadroute experiment``, ``deploy --canary``, ``rollout``, ``rollback``, ``deployments``: exit
codes, one-line errors and ``--json`` as the last line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadroute.cli import app
from leadroute.serving.traffic import simulate_traffic
from pipelines.demo import build_demo
from pipelines.settings import Settings

runner = CliRunner()


def _json(output: str) -> dict[str, object]:
    return dict(json.loads(output.strip().splitlines()[-1]))


def test_experiment_lifecycle_and_rollout_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(home=tmp_path / "ws")
    build_demo(settings, n_leads=1_000, seed=3, register_policies=True)
    monkeypatch.setenv("LEADROUTE_HOME", str(settings.home))

    empty = runner.invoke(app, ["experiment", "list"])
    assert empty.exit_code == 0 and "no experiments yet" in empty.output
    bad = runner.invoke(app, ["experiment", "start", "x", "--policy", "round_robin"])
    assert bad.exit_code == 1 and "at least two" in bad.output and len(bad.output.strip().splitlines()) == 1
    unknown = runner.invoke(app, ["experiment", "start", "x", "-p", "round_robin", "-p", "nope"])
    assert unknown.exit_code == 1 and "nope" in unknown.output

    started = runner.invoke(
        app,
        ["experiment", "start", "cli-ab", "-p", "round_robin", "-p", "territory", "--share", "1", "--share", "3",
         "--no-predict", "--horizon-days", "7", "--json"],
    )  # fmt: skip
    assert started.exit_code == 0, started.output
    body = _json(started.output)
    assert [a["share"] for a in body["arms"]] == [0.25, 0.75]  # type: ignore[index]
    canary = runner.invoke(app, ["deploy", "best_fit", "--canary", "5"])
    assert canary.exit_code == 1 and "experiment 'cli-ab' is running" in canary.output

    simulate_traffic(settings, prefix="c-", seed=2, n_leads=600)
    loaded = runner.invoke(app, ["logs", "load", "--json"])
    assert loaded.exit_code == 0, loaded.output
    counts = _json(loaded.output)
    assert counts["decisions"] == {"read": 600, "loaded": 600, "updated": 0, "rejected": 0}
    assert counts["leads"]["loaded"] == 600  # type: ignore[index]
    again = _json(runner.invoke(app, ["logs", "load", "--json"]).output)
    assert again["lines"] == 0  # only new lines are read
    later = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    report = runner.invoke(app, ["experiment", "report", "cli-ab", "--as-of", later, "--json"])
    assert report.exit_code == 0, report.output
    read = _json(report.output)
    decided = sum(a["decided"] for a in read["arms"])  # type: ignore[union-attr]
    assert decided == 600 and "sample ratio" in report.output
    clustered = runner.invoke(app, ["experiment", "report", "cli-ab", "--as-of", later, "--cluster-by", "rep_id"])
    assert clustered.exit_code == 0 and "clustered by rep_id" in clustered.output
    wrong = runner.invoke(app, ["experiment", "report", "cli-ab", "--as-of", "yesterday"])
    assert wrong.exit_code == 1 and "--as-of" in wrong.output

    stopped = runner.invoke(app, ["experiment", "stop", "cli-ab", "--winner", "B", "--as-of", later, "--json"])
    assert stopped.exit_code == 0, stopped.output
    assert _json(stopped.output)["winner"] == "B" and "territory" in stopped.output
    again = runner.invoke(app, ["experiment", "stop", "cli-ab"])
    assert again.exit_code == 1 and "not running" in again.output

    canary = runner.invoke(app, ["deploy", "best_fit", "--canary", "10", "--steps", "10,50", "--json"])
    assert canary.exit_code == 0, canary.output
    assert _json(canary.output)["kind"] == "canary"
    looked = runner.invoke(app, ["rollout", "advance", "--json"])
    assert looked.exit_code == 0 and _json(looked.output)["rollout"]["verdict"]["action"] == "hold"  # type: ignore[index]
    status = runner.invoke(app, ["rollout", "status"])
    assert "running, at 10%" in status.output
    back = runner.invoke(app, ["rollback", "--reason", "not today", "--json"])
    assert back.exit_code == 0 and _json(back.output)["policy"] == "territory"
    history = runner.invoke(app, ["deployments", "--json"])
    kinds = [d["kind"] for d in _json(history.output)["deployments"]]  # type: ignore[union-attr]
    assert kinds == ["rollback", "canary", "deploy", "experiment"]
    assert "not today" in history.output
