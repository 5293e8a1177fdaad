"""What a workspace holds, for the CLI, the app and notebooks (one query, many readers)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipelines.settings import Settings
from pipelines.warehouse import TABLES, Warehouse, query_frame, scalar, schema_version


@dataclass(frozen=True)
class WorkspaceStatus:
    """A summary of the workspace: table sizes, the history window and headline rates."""

    home: str
    exists: bool
    schema_version: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    first_lead_at: datetime | None = None
    last_lead_at: datetime | None = None
    conversion_rate: float | None = None
    converted_leads: int = 0
    leads_with_outcome: int = 0
    simulation: dict[str, Any] | None = None
    recent_imports: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "home": self.home,
            "exists": self.exists,
            "schema_version": self.schema_version,
            "tables": self.tables,
            "first_lead_at": None if self.first_lead_at is None else self.first_lead_at.isoformat(),
            "last_lead_at": None if self.last_lead_at is None else self.last_lead_at.isoformat(),
            "conversion_rate": self.conversion_rate,
            "converted_leads": self.converted_leads,
            "leads_with_outcome": self.leads_with_outcome,
            "simulation": self.simulation,
            "recent_imports": self.recent_imports,
        }

    def lines(self) -> list[str]:
        if not self.exists:
            return [f"workspace {self.home}: empty — run `leadroute demo` or `leadroute ingest …`"]
        out = [f"workspace {self.home} (schema v{self.schema_version})"]
        if self.first_lead_at and self.last_lead_at:
            out.append(f"  history: {self.first_lead_at:%Y-%m-%d} … {self.last_lead_at:%Y-%m-%d}")
        shown = ", ".join(f"{name} {n:,}" for name, n in self.tables.items() if n)
        out.append(f"  tables: {shown or 'all empty'}")
        if self.conversion_rate is not None:
            out.append(
                f"  converted {self.converted_leads:,} of {self.leads_with_outcome:,} leads with a final outcome"
                f" ({self.conversion_rate:.1%})"
            )
        if self.simulation:
            out.append(
                f"  simulated company: seed {self.simulation.get('seed')}, {self.simulation.get('n_leads'):,} leads"
            )
        return out


def workspace_status(warehouse: Warehouse, settings: Settings) -> WorkspaceStatus:
    if not warehouse.path.exists():
        return WorkspaceStatus(home=str(settings.home), exists=False)
    with warehouse.connect() as con:
        tables = {t: int(scalar(con, f'SELECT count(*) FROM "{t}"')) for t in TABLES}
        window = con.execute("SELECT min(created_at), max(created_at) FROM leads").fetchall()[0]
        final = con.execute(
            """SELECT count(DISTINCT lead_id) FILTER (event = 'converted'),
                      count(DISTINCT lead_id) FILTER (event IN ('converted', 'lost'))
               FROM outcomes"""
        ).fetchall()[0]
        meta = scalar(con, "SELECT value FROM workspace_meta WHERE key = 'simulation'")
        imports = query_frame(
            con,
            """SELECT import_id, entity, source_file, strftime(finished_at, '%Y-%m-%d %H:%M:%S') AS finished_at,
                      read, loaded, updated, rejected
               FROM imports ORDER BY import_id DESC, entity LIMIT 10""",
        ).to_dicts()
        version = schema_version(con)
    converted, finished = int(final[0]), int(final[1])
    return WorkspaceStatus(
        home=str(settings.home),
        exists=True,
        schema_version=version,
        tables=tables,
        first_lead_at=window[0],
        last_lead_at=window[1],
        conversion_rate=converted / finished if finished else None,
        converted_leads=converted,
        leads_with_outcome=finished,
        simulation=json.loads(str(meta)) if meta is not None else None,
        recent_imports=imports,
    )


def list_rejects(warehouse: Warehouse, import_id: int | None, limit: int) -> tuple[int | None, list[dict[str, Any]]]:
    """The rejected rows of one import (default: the latest import that has any)."""
    if not warehouse.path.exists():
        return None, []
    with warehouse.connect() as con:
        chosen = import_id
        if chosen is None:
            latest = scalar(con, "SELECT max(import_id) FROM rejects")
            chosen = None if latest is None else int(latest)
        if chosen is None:
            return None, []
        rows = query_frame(
            con,
            """SELECT entity, row_number, reason, raw FROM rejects
               WHERE import_id = ? ORDER BY entity, row_number LIMIT ?""",
            [chosen, limit],
        ).to_dicts()
    return chosen, rows
