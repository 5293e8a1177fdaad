"""The Streamlit workbench through AppTest: pages run, widgets work, numbers equal the library's."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pipelines.demo import build_demo
from pipelines.kpis import distribution_fairness, kpi_table
from pipelines.quality import quality_trend
from pipelines.settings import Settings
from pipelines.sla import sla_kpi_table
from pipelines.uploads import UploadError, import_upload, safe_upload_name
from pipelines.warehouse import Warehouse
from tests.conftest import REPO

APP = str(REPO / "app.py")


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("app") / "ws"
    build_demo(Settings(home=home), n_leads=2_000, seed=5, check_quality=True)
    return home


def test_overview_shows_the_library_numbers_and_switches_dimension(
    demo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADROUTE_HOME", str(demo_home))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    table = kpi_table(Warehouse(demo_home / "warehouse.duckdb"), "team")
    assert at.metric[0].value == f"{table['leads'].sum():,}"
    expected_rate = table["converted"].sum() / table["final_outcomes"].sum()
    assert at.metric[1].value == f"{expected_rate:.1%}"
    shown = at.dataframe[0].value
    assert list(shown["group"]) == table["group"].to_list()
    at.selectbox(key="overview_by").set_value("source").run()
    assert not at.exception
    assert (
        list(at.dataframe[0].value["group"])
        == kpi_table(Warehouse(demo_home / "warehouse.duckdb"), "source")["group"].to_list()
    )


def test_overview_shows_sla_fairness_and_notification_numbers_from_the_library(
    demo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADROUTE_HOME", str(demo_home))
    monkeypatch.delenv("LEADROUTE_ENDPOINT_URL", raising=False)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    settings = Settings(home=demo_home)
    sla = sla_kpi_table(settings, "team")
    due, met = int(sla["due"].sum()), int(sla["met"].sum())
    shown = {m.label: m.value for m in at.metric}
    assert shown["SLA breaches"] == f"{due - met:,}"
    fairness = distribution_fairness(Warehouse(demo_home / "warehouse.duckdb"))
    assert fairness.height == 3 and (fairness["gini"] >= 0).all() and (fairness["gini"] < 1).all()
    tables = [d.value for d in at.dataframe]
    fair_shown = next(t for t in tables if "gini" in t.columns)
    assert list(fair_shown["team"]) == fairness["team"].to_list()
    assert list(fair_shown["gini"]) == pytest.approx(fairness["gini"].to_list())
    assert shown["API 5xx error rate"] == "—"  # no endpoint configured: says how to connect one


def test_data_page_lists_imports_and_their_rejected_rows(demo_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADROUTE_HOME", str(demo_home))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("workbench/data.py").run()
    assert not at.exception
    assert at.title[0].value == "Data"
    trend = at.dataframe[1].value  # workspace tables, then the data-quality trend
    assert "completeness" in trend.columns
    assert len(trend) == quality_trend(Warehouse(demo_home / "warehouse.duckdb")).height
    leads_import = 3  # the demo imports reps, accounts, leads, decisions, outcomes in that order
    at.selectbox(key="data_import").set_value(leads_import).run()
    rejects = at.dataframe[-1].value
    assert len(rejects) > 0
    assert set(rejects["entity"]) == {"leads"}
    assert all(isinstance(reason, str) and reason for reason in rejects["reason"])


def test_empty_workspace_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADROUTE_HOME", str(tmp_path / "empty"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "leadroute demo" in at.info[0].value


@pytest.mark.parametrize("name", ["../../etc/passwd.csv", "..\\..\\x.csv", "/abs/path/leads.csv", ".hidden.csv"])
def test_upload_names_cannot_leave_the_uploads_folder(tmp_path: Path, name: str) -> None:
    settings = Settings(home=tmp_path / "ws")
    safe = safe_upload_name(name)
    assert "/" not in safe and "\\" not in safe and not safe.startswith(".")
    summary = import_upload(settings, "leads", name, b"lead_id,created_at\nU1,2025-01-01\n")
    assert summary.counts.loaded == 1
    stored = Path(summary.source_file).resolve()
    assert stored.parent == (settings.imports_dir / "uploads").resolve()


def test_upload_refuses_unknown_mappings_and_formats(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "ws")
    with pytest.raises(UploadError, match="not one of the shipped mapping files"):
        import_upload(settings, "leads", "a.csv", b"x", "../../secret.yaml")
    with pytest.raises(UploadError, match="cannot tell the format"):
        import_upload(settings, "leads", "a.exe", b"x")
    assert not (settings.imports_dir / "uploads").exists() or not any((settings.imports_dir / "uploads").iterdir())


def test_leadroute_app_serves_the_workbench_on_localhost(demo_home: Path) -> None:
    """A real `streamlit run` through the CLI, bound to 127.0.0.1 on a free port."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exe = Path(sys.executable).with_name("leadroute")
    env = {**os.environ, "LEADROUTE_HOME": str(demo_home)}
    server = subprocess.Popen(
        [str(exe), "app", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        healthy = False
        while time.monotonic() < deadline and not healthy:
            try:
                healthy = httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).text == "ok"
            except httpx.TransportError:
                time.sleep(0.3)
        assert healthy, "the workbench did not become healthy"
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "<html" in page.text.lower()
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert f"workbench: http://127.0.0.1:{port}" in output
