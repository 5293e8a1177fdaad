"""Helpers for the endpoint tests: a demo workspace and a real uvicorn server in a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from leadroute.serving.batch import typed_leads
from leadroute.serving.router import decision_seed
from models.policy import Policy, RoutingState
from pipelines.demo import build_demo
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse, query_frame

# `python -m leadroute.cli` would run cli.py as __main__ and re-import it (a circular import).
_ENTRY = "from leadroute.cli import main; main()"


def demo_workspace(home: Path, *, train: bool = False) -> Settings:
    settings = Settings(home=home)
    build_demo(settings, n_leads=2000, seed=1, register_policies=True, train_models=train)
    return settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """``leadroute serve`` on 127.0.0.1 in a subprocess (stdout+stderr kept in ``log_path``)."""

    settings: Settings
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.settings.home / f"server-{self.port}.out"

    def start(self, timeout: float = 60.0) -> Server:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "LEADROUTE_API_KEYS"}
        env |= {"LEADROUTE_HOME": str(self.settings.home)} | self.env
        command = [sys.executable, "-c", _ENTRY, "serve", "--port", str(self.port), *self.extra_args]
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise TimeoutError(f"server did not start: {self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def api_key(settings: Settings) -> str:
    return (settings.home / "api_keys").read_text().strip()


def sample_leads(settings: Settings, n: int, offset: int = 0) -> list[dict[str, Any]]:
    """Real demo leads as a CRM would send them (JSON values, ISO timestamps), routed 'today'."""
    with Warehouse(settings.warehouse_path).connect() as con:
        frame = query_frame(
            con,
            "SELECT lead_id, created_at, industry, employees, country, region, source, seniority, score"
            " FROM leads ORDER BY lead_id LIMIT ? OFFSET ?",
            [n, offset],
        )
    leads = []
    for row in frame.iter_rows(named=True):
        lead = {k: v for k, v in row.items() if v is not None}
        lead["created_at"] = "2026-11-27T10:00:00Z"
        lead["lead_id"] = f"api-{row['lead_id']}"
        leads.append(lead)
    return leads


def metrics_once(client: httpx.Client, needle: str, tries: int = 100) -> str:
    """``/metrics`` once it shows ``needle`` (or after ``tries`` looks 0.1 s apart)."""
    text = ""
    for _ in range(tries):
        text = client.get("/metrics").text
        if needle in text:
            break
        time.sleep(0.1)
    return text


@dataclass(frozen=True)
class Again:
    """A logged decision and what the in-process policy decides for the same lead, state and seed."""

    record: dict[str, Any]
    team: str | None
    rep_id: str | None
    action: str
    propensity: float
    reasons: str


def route_again(
    records: list[dict[str, Any]],
    policy_of: Callable[[dict[str, Any]], Policy],
    state_of: Callable[[str], RoutingState],
) -> list[Again]:
    """Re-route logged decisions in log order with the in-process policy: a single decision with
    ``route_one`` and the seed of its ``decision_id``, a batch (consecutive records sharing a
    ``replay_seed``) with ``Policy.replay`` and that seed. ``state_of(policy name)`` gives the state."""
    out: list[Again] = []
    i = 0
    while i < len(records):
        record, policy = records[i], policy_of(records[i])
        state = state_of(str(record["policy"]))
        seed = record.get("replay_seed")
        if seed is None:
            rng = np.random.default_rng(decision_seed(record["decision_id"]))
            d = policy.route_one(record["lead"], state, rng)
            out.append(Again(record, d.team, d.rep_id, d.action, d.propensity, d.reasons))
            i += 1
            continue
        j = i
        while j < len(records) and records[j].get("replay_seed") == seed:
            j += 1
        typed, rejects = typed_leads([r["lead"] for r in records[i:j]])
        assert not rejects
        decided = policy.replay(typed, rng=np.random.default_rng(int(seed)), state=state).decisions
        for r, row in zip(records[i:j], decided.iter_rows(named=True), strict=True):
            out.append(Again(r, row["team"], row["rep_id"], row["action"], row["propensity"], row["reasons"]))
        i = j
    return out
