"""Throughput and latency of the routing endpoint against a bare echo route, measured in one run.

Builds a small demo workspace in a temp dir, starts ``leadroute serve --no-model`` (the policy
reads the lead's own score) and, with the same uvicorn settings, a FastAPI app whose only route
echoes the body. ``wrk`` (a separate load-generator process, Debian package ``wrk``) drives
``POST /v1/route`` and the echo route on loopback with the same body and concurrency:

- ``route_rps`` / ``echo_rps`` and ``ratio`` (target ≥ 0.4);
- ``p50_ms`` / ``p99_ms`` of ``POST /v1/route`` at ``--light`` connections (a lighter load than
  the saturating run; wrk cannot pin a request rate, so this stands in for "half the maximum");
- ``batch_leads_per_s``: ``POST /v1/route/batch`` with 1,000 leads per request (httpx, sequential).

Every decision is fsynced to the decision log before it is answered, as in production.

    python benchmarks/endpoint.py [--seconds S] [--connections C] [--light C] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.demo import build_demo
from pipelines.settings import Settings
from tests.serving_support import free_port, sample_leads

KEY = "benchmark-key"
_ECHO = """
import sys, uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
app = FastAPI()
@app.post("/echo")
async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/json")
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, log_level="warning")
"""
_SERVE = "from leadroute.cli import main; main()"


def wait_up(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(url)


def wrk(url: str, body: str, seconds: int, connections: int) -> dict[str, float]:
    """Requests/s and latency percentiles from one wrk run (POST with the body and the key)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
            f'wrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer {KEY}"\n'
        )
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"errors under load:\n{out}")
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for name, pct in (("p50_ms", "50%"), ("p99_ms", "99%")):
        value, unit = re.search(rf"{pct}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        figures[name] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return figures


def scored_leads(leads: list[dict[str, Any]], seed: int = 7) -> list[dict[str, Any]]:
    """The demo leads with a 0–100 score each (``--no-model`` routes on the lead's own score): every
    rule of the seed policy fires, so hot and cold leads go through its round robins."""
    rng = np.random.default_rng(seed)
    return [
        dict(lead, score=round(float(s), 1)) for lead, s in zip(leads, rng.uniform(0, 100, len(leads)), strict=True)
    ]


def batch_bodies(leads: list[dict[str, Any]], n: int) -> list[bytes]:
    """``n`` request bodies, each the leads on its own weekday (10:00–13:20 UTC, one a
    minute, so reps have capacity left and availability is looked up per minute)."""
    bodies: list[bytes] = []
    day = date(2026, 11, 30)
    while len(bodies) < n:
        if day.weekday() < 5:
            start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
            stamped = [
                dict(
                    lead,
                    lead_id=f"{lead['lead_id']}-{len(bodies)}",
                    created_at=(start + timedelta(minutes=i % 200)).isoformat(),
                )
                for i, lead in enumerate(leads)
            ]
            bodies.append(json.dumps({"leads": stamped}).encode())
        day += timedelta(days=1)
    return bodies


def batch_throughput(url: str, leads: list[dict[str, Any]], batches: int, clients: int) -> float:
    """Leads/s of ``POST /v1/route/batch`` over ``batches`` pre-encoded requests sent by
    ``clients`` concurrent connections (httpx; answers read whole, not parsed)."""
    bodies = batch_bodies(leads, batches + clients)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    warm, bodies = bodies[:clients], bodies[clients:]
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for body in warm:
            client.post("/v1/route/batch", content=body).raise_for_status()

    def send(share: list[bytes]) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            for body in share:
                client.post("/v1/route/batch", content=body).raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, [bodies[i::clients] for i in range(clients)]))
    return len(bodies) * len(leads) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--light", type=int, default=2)
    parser.add_argument("--batches", type=int, default=200, help="batch requests of 1,000 leads")
    parser.add_argument("--clients", type=int, default=2, help="concurrent batch connections")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "ws")
        build_demo(settings, n_leads=2000, seed=1, register_policies=True)
        leads = scored_leads(sample_leads(settings, 1000))
        env = dict(os.environ, LEADROUTE_HOME=str(settings.home), LEADROUTE_API_KEYS=KEY)
        route_port, echo_port = free_port(), free_port()
        serve = [sys.executable, "-c", _SERVE, "serve", "--no-model", "--port", str(route_port)]
        processes = [
            subprocess.Popen(serve, env=env, stderr=subprocess.DEVNULL),
            subprocess.Popen([sys.executable, "-c", _ECHO, str(echo_port)]),
        ]
        try:
            wait_up(f"http://127.0.0.1:{route_port}/healthz", processes[0])
            wait_up(f"http://127.0.0.1:{echo_port}/", processes[1])
            body = json.dumps(leads[0])
            route = wrk(f"http://127.0.0.1:{route_port}/v1/route", body, args.seconds, args.connections)
            echo = wrk(f"http://127.0.0.1:{echo_port}/echo", body, args.seconds, args.connections)
            light = wrk(f"http://127.0.0.1:{route_port}/v1/route", body, args.seconds, args.light)
            batch_leads_per_s = batch_throughput(f"http://127.0.0.1:{route_port}", leads, args.batches, args.clients)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)

    result: dict[str, Any] = {
        "route_rps": round(route["rps"], 1),
        "echo_rps": round(echo["rps"], 1),
        "ratio": round(route["rps"] / echo["rps"], 3),
        "p50_ms": round(light["p50_ms"], 2),
        "p99_ms": round(light["p99_ms"], 2),
        "light_rps": round(light["rps"], 1),
        "saturated_p99_ms": round(route["p99_ms"], 2),
        "batch_leads_per_s": round(batch_leads_per_s, 1),
    }
    print(f"POST /v1/route {result['route_rps']:,} req/s vs echo {result['echo_rps']:,} req/s: ratio {result['ratio']}")
    print(f"latency at {args.light} connections ({result['light_rps']:,} req/s): p50 {result['p50_ms']} ms,"
          f" p99 {result['p99_ms']} ms")  # fmt: skip
    print(f"batch route: {result['batch_leads_per_s']:,.0f} leads/s")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
