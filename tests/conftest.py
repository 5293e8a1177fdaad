"""Shared fixtures: a real workspace (DuckDB file) in a temp dir per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.settings import Settings
from pipelines.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LEADROUTE_SHARED_DATA", REPO.parent / "shared" / "data"))
MAPPINGS = REPO / "mappings"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "workspace").ensure()


@pytest.fixture
def warehouse(settings: Settings) -> Warehouse:
    return Warehouse(settings.warehouse_path)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
