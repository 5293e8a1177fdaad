"""Another process holding the warehouse makes a writer wait, never fail with a raw lock error."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.ingest import ingest_file
from pipelines.warehouse import Warehouse, WarehouseBusyError
from tests.conftest import REPO, write

HOLDER = """
import sys, time
from pathlib import Path
from pipelines.warehouse import Warehouse
with Warehouse(Path(sys.argv[1])).connect() as con:
    con.execute("SELECT 1").fetchall()
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "holding"
    return process


def test_an_import_waits_for_another_process_and_then_succeeds(warehouse: Warehouse, tmp_path: Path) -> None:
    with warehouse.connect():
        pass
    holder = hold(warehouse.path, 1.5)
    started = time.monotonic()
    summary = ingest_file(warehouse, "leads", write(tmp_path / "l.csv", "lead_id,created_at\nA,2025-01-01\n"))
    waited = time.monotonic() - started
    holder.communicate(timeout=30)
    assert summary.counts.loaded == 1
    assert waited > 0.5  # it really had to wait for the other process


def test_waiting_too_long_is_one_clear_message(warehouse: Warehouse) -> None:
    with warehouse.connect():
        pass
    holder = hold(warehouse.path, 3)
    try:
        impatient = Warehouse(warehouse.path, busy_timeout_s=0.3)
        with pytest.raises(WarehouseBusyError, match="busy: another leadroute process kept it"), impatient.connect():
            pass
    finally:
        holder.communicate(timeout=30)
