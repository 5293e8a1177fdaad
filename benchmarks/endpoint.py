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
from pathlib import Path
from typing import Any

import httpx

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--light", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "ws")
        build_demo(settings, n_leads=2000, seed=1, register_policies=True)
        leads = sample_leads(settings, 1000)
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
            headers = {"Authorization": f"Bearer {KEY}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{route_port}", headers=headers, timeout=60) as client:
                client.post("/v1/route/batch", json={"leads": leads})  # warm-up
                started, n = time.perf_counter(), 0
                while time.perf_counter() - started < args.seconds:
                    response = client.post("/v1/route/batch", json={"leads": leads})
                    response.raise_for_status()
                    n += len(leads)
                batch_leads_per_s = n / (time.perf_counter() - started)
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
