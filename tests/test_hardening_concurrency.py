"""The whole system at once on one workspace: the endpoint under load, a retraining cycle, an
import and the workbench's pages, for a bounded period. No lock error may reach a user, no
answered decision may be missing from the log, and every page must load."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from leadroute.serving import read_records
from pipelines.registry import alias_version
from pipelines.warehouse import Warehouse
from tests.conftest import REPO
from tests.hardening_support import Load, cli_process, leads_csv, workspace_copy
from tests.serving_support import Server, sample_leads

APP = REPO / "app.py"
WINDOW_S = 20.0  # the load runs at least this long, and until every other part has finished
CAP_S = 240.0
LOCK_WORDS = re.compile(r"\block\b|could not set lock|conflicting lock|database is locked", re.IGNORECASE)


def registered_pages() -> list[str]:
    """Every page script registered in app.py (read at test time: new pages are covered)."""
    pages = re.findall(r"st\.Page\(\s*[\"']([^\"']+\.py)[\"']", APP.read_text(encoding="utf-8"))
    assert "workbench/overview.py" in pages and "workbench/data.py" in pages
    return pages


def load_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=180).run()
    if page != "workbench/overview.py":
        at.switch_page(page).run()
    return at


@pytest.mark.slow
def test_endpoint_retrain_import_and_pages_at_once(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = workspace_copy(tmp_path_factory, tmp_path / "ws", train=True)
    champion_before = alias_version(settings, "lead-score", "champion")
    assert champion_before is not None
    leads_before = Warehouse(settings.warehouse_path).table_counts()["leads"]
    new_leads = leads_csv(tmp_path / "new_leads.csv", 3_000, prefix="conc-")
    monkeypatch.setenv("LEADROUTE_HOME", str(settings.home))

    server = Server(settings).start(timeout=120)  # with the lead-score champion
    load = Load(server, sample_leads(settings, 200), n_threads=4, tag="conc")
    page_errors: dict[str, list[str]] = {}
    loaded: set[str] = set()
    try:
        load.start()
        started = time.monotonic()
        retrain = cli_process(settings, "retrain", "--json")
        ingest = cli_process(settings, "ingest", "leads", str(new_leads), "--json")
        pages = registered_pages()
        while time.monotonic() - started < CAP_S:
            for page in pages:
                at = load_page(page)
                page_errors[page] = [str(e.value) for e in at.exception]
                loaded.add(page)
            done = retrain.poll() is not None and ingest.poll() is not None
            if done and time.monotonic() - started >= WINDOW_S:
                break
        retrain_out, retrain_err = retrain.communicate(timeout=CAP_S)
        ingest_out, ingest_err = ingest.communicate(timeout=CAP_S)
    finally:
        load.stop()
        server.stop()

    # No lock error reached a user: both commands succeeded and said nothing about locks.
    assert retrain.returncode == 0, retrain_err
    assert ingest.returncode == 0, ingest_err
    for text in (retrain_err, ingest_err, retrain_out, ingest_out, server.output()):
        assert not LOCK_WORDS.search(text), text
    imported = json.loads(ingest_out.strip().splitlines()[-1])
    assert (imported["loaded"], imported["rejected"]) == (3_000, 0)
    assert Warehouse(settings.warehouse_path).table_counts()["leads"] == leads_before + 3_000
    cycle = json.loads(retrain_out.strip().splitlines()[-1])
    assert cycle["models"]["lead-score"]["version"] > champion_before

    # Every page loaded, without an exception, while the rest ran.
    assert loaded == set(registered_pages())
    assert page_errors == {page: [] for page in loaded}

    # Every request was answered 200, and every answered decision is in the log.
    assert len(load.answers) >= 40, "the endpoint was not under load"
    assert load.failures() == []
    logged = {r["decision_id"] for r in read_records(settings.decision_log_dir, "decisions")}
    answered = {d["decision_id"] for d in load.ok()}
    assert answered <= logged
    assert len(answered) == len(load.answers)
