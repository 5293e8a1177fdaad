"""Every notebook runs top to bottom against a small demo workspace, prints the library's
numbers, and is stored without outputs."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pipelines.demo import build_demo
from pipelines.kpis import lead_history
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse
from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: clear outputs before committing"
            assert cell.execution_count is None


def run_notebook(path: Path, parameters: dict[str, object]) -> str:
    """Execute with the parameters cell replaced (as papermill would), return all stdout."""
    notebook = nbformat.read(path, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    return "\n".join(
        output.get("text", "")
        for c in notebook.cells
        if c.cell_type == "code"
        for output in c.outputs
        if output.get("output_type") == "stream"
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("notebooks") / "ws"
    build_demo(Settings(home=home), n_leads=1_500, seed=4, check_quality=True)
    return home


def test_kpi_overview_runs_and_prints_the_library_numbers(workspace: Path) -> None:
    output = run_notebook(
        REPO / "notebooks" / "kpi_overview.ipynb",
        {"workspace": str(workspace), "start": "2026-01-01", "end": None, "window_days": 120},
    )
    match = re.search(r"HEADLINE leads=(\d+) final_outcomes=(\d+) converted=(\d+) conversion_rate=([\d.]+)", output)
    assert match, output
    from datetime import UTC, datetime

    history = lead_history(Warehouse(workspace / "warehouse.duckdb"), datetime(2026, 1, 1, tzinfo=UTC))
    final = history.filter(history["final"])
    assert int(match[1]) == history.height
    assert int(match[2]) == final.height
    assert int(match[3]) == int(final["converted"].sum())
    assert float(match[4]) == pytest.approx(final["converted"].mean(), abs=1e-6)
