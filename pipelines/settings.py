"""Typed settings, read once at the edge (CLI, endpoint, app) and passed inward."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict

DEFAULT_HOME = Path("data")


class Settings(BaseModel):
    """Where the workspace lives and where its parts are.

    Attributes:
        home: the workspace directory (``LEADROUTE_HOME``, default ``./data``).
        mlflow_tracking_uri: an explicit tracking server (``MLFLOW_TRACKING_URI``), else the
            workspace's own SQLite store.
    """

    model_config = ConfigDict(frozen=True)

    home: Path
    mlflow_tracking_uri: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("LEADROUTE_HOME") or DEFAULT_HOME).expanduser()
        return cls(home=home.resolve(), mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or None)

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def decision_log_dir(self) -> Path:
        return self.home / "decisions"

    @property
    def policies_dir(self) -> Path:
        return self.home / "policies"

    @property
    def imports_dir(self) -> Path:
        """Files the workspace itself generated for import (e.g. the demo company's exports)."""
        return self.home / "imports"

    @property
    def mlflow_dir(self) -> Path:
        return self.home / "mlflow"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        # Four slashes: an absolute path (three would make it relative to the cwd).
        return f"sqlite:///{(self.mlflow_dir / 'mlflow.db').resolve()}"

    def ensure(self) -> Settings:
        """Create the workspace directories (idempotent)."""
        for directory in (self.home, self.decision_log_dir, self.policies_dir, self.imports_dir, self.mlflow_dir):
            directory.mkdir(parents=True, exist_ok=True)
        return self
