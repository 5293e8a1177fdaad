"""What every page needs: the workspace settings and its warehouse (never opened at import)."""

from __future__ import annotations

import polars as pl

from pipelines.settings import Settings
from pipelines.warehouse import Warehouse


def workspace() -> tuple[Settings, Warehouse]:
    settings = Settings.from_env()
    return settings, Warehouse(settings.warehouse_path)


EMPTY_HINT = "No data yet: run `leadroute demo` for the simulated company, or import files on the **Data** page."


def policy_choices(settings: Settings) -> list[str]:
    """Policy names to pick from: registered ones (latest version) first, then shipped ones."""
    from pipelines.policies import SHIPPED_DIR, list_policies

    registered = (
        list_policies(settings)["name"].unique(maintain_order=True).to_list()
        if settings.warehouse_path.exists()
        else []
    )
    shipped = sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))
    return [*registered, *[name for name in shipped if name not in registered]]


def printable(frame: pl.DataFrame) -> pl.DataFrame:
    """Datetime columns as ISO text (tz-aware datetimes into ``st.dataframe`` warn in pandas)."""
    return frame.with_columns(
        pl.col(name).dt.strftime("%Y-%m-%d %H:%M:%S")
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime)
    )
