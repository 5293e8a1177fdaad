"""KPIs against truth we can compute by hand, and intervals against scipy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from models.intervals import wilson_interval
from pipelines.ingest import ingest_file
from pipelines.kpis import kpi_table
from pipelines.warehouse import Warehouse
from tests.conftest import write


@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (7, 40), (40, 40), (513, 4_000)])
def test_wilson_interval_matches_scipy(k: int, n: int) -> None:
    low, high = wilson_interval(k, n)
    oracle = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert float(low) == pytest.approx(oracle.low, abs=1e-12)
    assert float(high) == pytest.approx(oracle.high, abs=1e-12)


def test_no_trials_is_no_interval_not_a_zero_rate() -> None:
    low, high = wilson_interval(np.array([0, 1]), np.array([0, 2]))
    assert np.isnan(low[0]) and np.isnan(high[0])
    assert not np.isnan(low[1])


def test_kpis_by_team_on_a_hand_checked_history(warehouse: Warehouse, tmp_path: Path) -> None:
    ingest_file(warehouse, "reps", write(tmp_path / "r.csv", "rep_id,name,team\nr1,Ann,smb\nr2,Bo,enterprise\n"))
    ingest_file(
        warehouse,
        "leads",
        write(
            tmp_path / "l.csv",
            "lead_id,created_at,source\n"
            "a,2025-01-06T09:00:00Z,web\nb,2025-01-06T10:00:00Z,web\nc,2025-01-07T09:00:00Z,event\nd,2025-01-07T09:00:00Z,event\n",
        ),
    )
    ingest_file(
        warehouse,
        "decisions",
        write(
            tmp_path / "d.csv",
            "lead_id,decided_at,rep_id\na,2025-01-06T09:00:01Z,r1\nb,2025-01-06T10:00:01Z,r1\n"
            "c,2025-01-07T09:00:01Z,r2\nd,2025-01-07T09:00:01Z,r2\n",
        ),
    )
    ingest_file(
        warehouse,
        "outcomes",
        write(
            tmp_path / "o.csv",
            "lead_id,event,occurred_at,value\n"
            "a,contacted,2025-01-06T09:10:00Z,\na,converted,2025-02-01,500\n"
            "b,contacted,2025-01-06T10:30:00Z,\nb,lost,2025-02-01,\n"
            "c,contacted,2025-01-07T11:00:00Z,\nc,converted,2025-03-01,1000\n",
        ),
    )
    rows = {r["group"]: r for r in kpi_table(warehouse, "team").to_dicts()}
    smb, enterprise = rows["smb"], rows["enterprise"]
    assert (smb["leads"], smb["final_outcomes"], smb["converted"], smb["revenue"]) == (2, 2, 1, 500.0)
    assert smb["conversion_rate"] == 0.5
    assert smb["median_minutes_to_touch"] == pytest.approx(20.0)  # 10 and 30 minutes
    # d has no outcome yet: it counts as a lead, not as a loss
    assert (enterprise["leads"], enterprise["final_outcomes"], enterprise["converted"]) == (2, 1, 1)
    assert enterprise["conversion_rate"] == 1.0 and enterprise["ci_low"] < 1.0
    weeks = kpi_table(warehouse, "week")
    assert weeks["group"].to_list() == ["2025-01-06"] and weeks["leads"].to_list() == [4]
