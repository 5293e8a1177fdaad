"""The command line as users and outside tests drive it: exit codes, one-line errors, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadroute.cli import app
from tests.conftest import MAPPINGS, REPO, write

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    home = tmp_path / "ws"
    monkeypatch.setenv("LEADROUTE_HOME", str(home))
    return {**os.environ, "LEADROUTE_HOME": str(home)}


def test_ingest_json_summary_is_the_last_line(env: dict[str, str], tmp_path: Path) -> None:
    data = write(tmp_path / "leads.csv", "lead_id,created_at\nA,2025-01-01\nB,nope\n")
    result = runner.invoke(app, ["ingest", "leads", str(data), "--json"])
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert {k: last[k] for k in ("read", "loaded", "updated", "rejected")} == {
        "read": 2,
        "loaded": 1,
        "updated": 0,
        "rejected": 1,
    }
    assert "rejected 1 × leads: created_at: … is not an ISO 8601 timestamp" in result.stdout

    shown = runner.invoke(app, ["rejects", "--json"])
    assert shown.exit_code == 0
    rejects = json.loads(shown.stdout.strip().splitlines()[-1])["rejects"]
    assert rejects[0]["row_number"] == 3
    assert "nope" in rejects[0]["raw"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "widgets", "x.csv"], "unknown entity 'widgets'"),
        (["ingest", "leads", "does-not-exist.csv"], "no such file"),
        (["ingest", "leads", "{data}", "--mapping", "nope.yaml"], "mapping nope.yaml: no such file"),
    ],
)
def test_failures_exit_non_zero_with_one_line(
    env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    data = write(tmp_path / "leads.csv", "lead_id,created_at\nA,2025-01-01\n")
    result = runner.invoke(app, [a.replace("{data}", str(data)) for a in args])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()  # progress lines may come first; the cause is one line, last
    assert [line for line in lines if line.startswith("leadroute: error:")] == [lines[-1]]
    assert message in lines[-1]


def test_status_of_an_empty_workspace_says_what_to_do(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0
    assert "run `leadroute demo`" in result.stdout
    assert json.loads(result.stdout.strip().splitlines()[-1])["exists"] is False


def test_console_script_runs_a_mapped_import(env: dict[str, str], tmp_path: Path) -> None:
    """The installed `leadroute` entry point, as a subprocess, with a shipped mapping file."""
    exe = Path(sys.executable).with_name("leadroute")
    accounts = REPO.parent / "shared" / "data" / "crm_sales_opportunities" / "accounts.csv"
    if not accounts.exists():
        pytest.skip("shared datasets not present")
    done = subprocess.run(
        [str(exe), "ingest", "accounts", str(accounts), "--mapping", str(MAPPINGS / "crm_accounts.yaml"), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["loaded"] == 85
    assert "reading accounts.csv" in done.stderr  # progress goes to stderr, keeping stdout parseable
    help_text = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60, check=True).stdout
    for command in ("demo", "ingest", "status", "rejects"):
        assert command in help_text
