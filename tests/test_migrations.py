"""Forward schema migrations: an older workspace opens in a newer leadroute with its data intact."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.ingest import ingest_file
from pipelines.migrations import LATEST_VERSION, MIGRATIONS
from pipelines.warehouse import SchemaTooNewError, Warehouse, migrate, query_frame, schema_version
from tests.conftest import write


def test_versions_are_consecutive() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))


def test_a_v1_workspace_is_migrated_forward_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:  # what release 1 wrote
        assert migrate(con, target=1) == 1
        con.execute(
            "INSERT INTO leads (lead_id, created_at, company, extra)"
            " VALUES ('old-1', '2024-05-01 10:00:00+00', 'Acme', '{\"x\":\"1\"}')"
        )
        con.execute(
            "INSERT INTO decisions (decision_id, lead_id, decided_at, team, policy, propensity)"
            " VALUES ('d1', 'old-1', '2024-05-01 10:00:01+00', 'smb', 'legacy', 0.5)"
        )
        assert "accounts" not in {t for (t,) in con.execute("SHOW TABLES").fetchall()}
    warehouse = Warehouse(path)
    with warehouse.connect() as con:
        assert schema_version(con) == LATEST_VERSION
        decision = query_frame(con, "SELECT * FROM decisions").to_dicts()[0]
        lead = query_frame(con, "SELECT lead_id, company, extra FROM leads").rows()
        applied = [v for (v,) in con.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()]
    assert lead == [("old-1", "Acme", '{"x":"1"}')]
    assert decision["policy"] == "legacy"
    assert decision["propensity"] == 0.5
    assert decision["policy_version"] is None
    assert decision["reasons"] is None
    assert applied == list(range(1, LATEST_VERSION + 1))
    # and the migrated workspace is fully usable
    summary = ingest_file(warehouse, "leads", write(tmp_path / "l.csv", "lead_id,created_at\nnew-1,2025-01-01\n"))
    assert summary.counts.loaded == 1
    assert warehouse.table_counts()["accounts"] == 0


def test_migrating_twice_is_a_no_op(warehouse: Warehouse) -> None:
    with warehouse.connect() as con:
        assert migrate(con) == LATEST_VERSION
        assert migrate(con) == LATEST_VERSION
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchall()[0][0] == LATEST_VERSION


def test_a_workspace_from_a_newer_release_is_refused(warehouse: Warehouse) -> None:
    with warehouse.connect() as con:
        con.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', now())", [LATEST_VERSION + 1])
    with pytest.raises(SchemaTooNewError, match="upgrade leadroute"), warehouse.connect():
        pass


def test_read_only_open_of_an_old_workspace_asks_for_a_migration(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        migrate(con, target=1)
    with pytest.raises(SchemaTooNewError, match="open it once read-write"), Warehouse(path).connect(read_only=True):
        pass
