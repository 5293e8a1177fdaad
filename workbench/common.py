"""What every page needs: the workspace settings and its warehouse (never opened at import)."""

from __future__ import annotations

from pipelines.settings import Settings
from pipelines.warehouse import Warehouse


def workspace() -> tuple[Settings, Warehouse]:
    settings = Settings.from_env()
    return settings, Warehouse(settings.warehouse_path)


EMPTY_HINT = "No data yet: run `leadroute demo` for the simulated company, or import files on the **Data** page."
