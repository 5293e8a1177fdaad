"""Helpers for the whole-system hardening tests: demo workspaces built once per test session and
copied per test, the ``leadroute`` command in a subprocess, load on the endpoint, generated files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.settings import Settings
from tests.conftest import REPO
from tests.serving_support import Server, api_key, demo_workspace

# `python -m leadroute.cli` would run cli.py as __main__ and re-import it (a circular import).
ENTRY = "from leadroute.cli import main; main()"

_TEMPLATES: dict[bool, Path] = {}


def workspace_copy(factory: pytest.TempPathFactory, dest: Path, *, train: bool) -> Settings:
    """A demo workspace (2,000 leads, shipped policies registered, models trained if ``train``)
    built once per session and copied to ``dest``. The MLflow store keeps the template's artifact
    folder (an absolute path), so every copy loads the same model files and writes new runs there:
    harmless, since each copy has its own registry database."""
    if train not in _TEMPLATES:
        home = factory.getbasetemp() / f"hardening-template-{'trained' if train else 'plain'}" / "ws"
        if not (home / "warehouse.duckdb").exists():
            demo_workspace(home, train=train)
        _TEMPLATES[train] = home
    shutil.copytree(_TEMPLATES[train], dest)
    return Settings(home=dest)


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADROUTE_", "MLFLOW_"))}
    return env | {"LEADROUTE_HOME": str(settings.home)} | extra


def cli(settings: Settings, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """Run ``leadroute ARGS`` to completion in a subprocess (cwd: the repository)."""
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *args],
        env=cli_env(settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_process(settings: Settings, *args: str) -> subprocess.Popen[str]:
    """Start ``leadroute ARGS`` (stderr piped line by line, stdout kept) without waiting."""
    return subprocess.Popen(
        [sys.executable, "-u", "-c", ENTRY, *args],
        env=cli_env(settings),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(process: subprocess.Popen[str], needle: str, seen: list[str]) -> bool:
    """Read ``process``'s stderr until a line holds ``needle`` (True) or the stream ends (False)."""
    assert process.stderr is not None
    for line in process.stderr:
        seen.append(line)
        if needle in line:
            return True
    return False


def leads_csv(path: Path, n: int, *, prefix: str, big_field: int = 0) -> Path:
    """A canonical leads CSV of ``n`` valid leads with ids ``{prefix}{i}`` (``big_field``: the
    length of an extra ``notes`` column, to make a file large without more rows)."""
    industries = ("Software", "Retail", "Finance", "Healthcare", "Manufacturing")
    countries = ("US", "DE", "FR", "GB", "BR")
    pad = "x" * big_field
    with path.open("w", encoding="utf-8") as out:
        out.write("lead_id,created_at,industry,employees,country,source,score" + (",notes" if big_field else "") + "\n")
        for i in range(n):
            row = (
                f"{prefix}{i},2026-0{1 + i % 9}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z,"
                f"{industries[i % 5]},{(i * 37) % 5000},{countries[i % 5]},web,{(i * 13) % 100}"
            )
            out.write(row + (f",{pad}" if big_field else "") + "\n")
    return path


@dataclass
class Load:
    """Threads posting ``/v1/route`` to ``server`` until :meth:`stop`; every answer is kept as
    ``(status, body or error text)``."""

    server: Server
    leads: list[dict[str, Any]]
    n_threads: int = 4
    tag: str = "load"
    answers: list[tuple[int | None, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        headers = {"Authorization": f"Bearer {api_key(self.server.settings)}"}

        def worker(offset: int) -> None:
            with httpx.Client(base_url=self.server.url, headers=headers, timeout=30.0) as client:
                i = offset
                while not self._stop.is_set():
                    lead = dict(self.leads[i % len(self.leads)], lead_id=f"{self.tag}-{offset}-{i}")
                    try:
                        response = client.post("/v1/route", json=lead)
                    except httpx.TransportError as exc:
                        self.answers.append((None, repr(exc)))
                        return
                    ok = response.status_code == 200
                    self.answers.append((response.status_code, response.json() if ok else response.text))
                    i += self.n_threads

        self._threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(self.n_threads)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def ok(self) -> list[dict[str, Any]]:
        return [body for status, body in self.answers if status == 200]

    def failures(self) -> list[tuple[int | None, Any]]:
        return [(status, body) for status, body in self.answers if status != 200]
