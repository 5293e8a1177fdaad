"""Throughput and latency of the routing endpoint against a bare echo route, measured in one run.

Builds a small demo workspace in a temp dir, starts ``leadroute serve --no-model`` (the policy
reads the lead's own score) and, with the same uvicorn settings, a FastAPI app whose only route
echoes the body. ``wrk`` (a separate load-generator process, Debian package ``wrk``) drives
``POST /v1/route`` and the echo route on loopback with the same bodies (1,000 demo leads with
scores, in turn: every rule of the seed policy fires) and concurrency:

- ``route_rps`` / ``echo_rps`` and ``ratio`` (target ≥ 0.4): the medians of ``--rounds`` route/echo
  pairs run back to back (this machine's speed drifts by tens of percent between runs);
- ``p50_ms`` / ``p99_ms`` of ``POST /v1/route`` at half of ``route_rps``, held by an open-loop
  generator in its own process (``benchmarks/paced.py``; wrk cannot pin a rate). Beside them, the
  slow fsyncs of the decision log during that run (the endpoint's own fsync histogram in
  ``/metrics``) and the same paced run against the endpoint without fsync: the durable p99 cannot
  beat the disk's fsync stalls;
- ``batch_leads_per_s``: ``POST /v1/route/batch`` with 1,000 leads per request (pre-encoded, on
  distinct weekdays, from ``--clients`` connections).

Every decision is fsynced to the decision log before it is answered, as in production.

    python benchmarks/endpoint.py [--seconds S] [--connections C] [--rounds N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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
# The endpoint as ``leadroute serve`` builds it, but without fsync: only to show what durability
# costs in latency on this machine (never a way to run it).
_NO_FSYNC = """
import sys, uvicorn
from pathlib import Path
from leadroute.serving import create_app
from leadroute.serving.keys import KeyRing
from pipelines.settings import Settings
sys.setswitchinterval(0.0005)
keys = KeyRing((sys.argv[3].encode(),), "benchmark")
app = create_app(Settings(home=Path(sys.argv[1])), keys=keys, use_model=False, fsync=False)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=False, log_level="warning")
"""


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


def wrk(url: str, bodies: list[str], seconds: int, connections: int) -> float:
    """Requests/s of one saturating wrk run (POSTs of the bodies in turn, with the key); latency
    is measured at a held rate instead (:func:`paced`)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        listed = ",\n".join(f"[==[{body}]==]" for body in bodies)  # Lua long strings: no escaping
        script.write(
            f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {KEY}"\nbodies = {{\n{listed}\n}}\ncounter = 0\n'
            "request = function()\n  counter = counter + 1\n"
            "  return wrk.format(nil, nil, nil, bodies[(counter % #bodies) + 1])\nend\n"
        )
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"errors under load:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


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


def fsync_buckets(url: str) -> dict[float, int]:
    """The endpoint's decision-log fsync histogram from ``/metrics``: cumulative count per bound."""
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {KEY}"}, timeout=30).text
    out = {}
    for match in re.finditer(r'leadroute_decision_log_fsync_seconds_bucket\{le="([^"]+)"\} (\d+)', text):
        out[float("inf") if match[1] == "+Inf" else float(match[1])] = int(match[2])
    return out


def slow_fsyncs(before: dict[float, int], after: dict[float, int]) -> dict[str, Any]:
    """How many fsyncs between two readings took longer than 25, 50 and 100 ms."""
    total = after.get(float("inf"), 0) - before.get(float("inf"), 0)

    def over(bound: float) -> int:
        return total - (after.get(bound, 0) - before.get(bound, 0))

    slow = {f"fsyncs_over_{ms}ms": over(ms / 1000) for ms in (25, 50, 100)}
    return {"fsyncs": total, **slow}


def paced(url: str, bodies: list[str], rate: float, seconds: int) -> dict[str, Any]:
    """``benchmarks/paced.py`` in its own process: latency at a fixed request rate."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as handle:
        handle.write("\n".join(bodies) + "\n")
    command = [sys.executable, str(Path(__file__).with_name("paced.py")), url, "--rate", f"{rate:.0f}"]
    command += ["--seconds", str(seconds), "--body", handle.name, "--key", KEY]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(handle.name)
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if figures["errors"]:
        raise RuntimeError(f"errors at {rate:.0f} req/s: {figures}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="route/echo pairs, run back to back")
    parser.add_argument("--batches", type=int, default=200, help="batch requests of 1,000 leads")
    parser.add_argument("--clients", type=int, default=2, help="concurrent batch connections")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "ws")
        build_demo(settings, n_leads=2000, seed=1, register_policies=True)
        leads = scored_leads(sample_leads(settings, 1000))
        nofsync = Settings(home=Path(tmp) / "ws-nofsync")
        shutil.copytree(settings.home, nofsync.home)
        env = dict(os.environ, LEADROUTE_HOME=str(settings.home), LEADROUTE_API_KEYS=KEY)
        route_port, echo_port, nofsync_port = free_port(), free_port(), free_port()
        serve = [sys.executable, "-c", _SERVE, "serve", "--no-model", "--port", str(route_port)]
        processes = [
            subprocess.Popen(serve, env=env, stderr=subprocess.DEVNULL),
            subprocess.Popen([sys.executable, "-c", _ECHO, str(echo_port)]),
            subprocess.Popen([sys.executable, "-c", _NO_FSYNC, str(nofsync.home), str(nofsync_port), KEY]),
        ]
        try:
            wait_up(f"http://127.0.0.1:{route_port}/healthz", processes[0])
            wait_up(f"http://127.0.0.1:{echo_port}/", processes[1])
            wait_up(f"http://127.0.0.1:{nofsync_port}/healthz", processes[2])
            # The 1,000 scored leads in turn: hot ones rotate over the enterprise team (then fall
            # back once the reps' day is full), warm ones go to nurture, cold ones to the juniors.
            bodies = [json.dumps(lead) for lead in leads]
            pairs = []
            for _ in range(args.rounds):  # back to back, so both sides of a pair see the same machine
                route = wrk(f"http://127.0.0.1:{route_port}/v1/route", bodies, args.seconds, args.connections)
                echo = wrk(f"http://127.0.0.1:{echo_port}/echo", bodies, args.seconds, args.connections)
                pairs.append((route, echo))
            route_rps = float(np.median([r for r, _ in pairs]))
            echo_rps = float(np.median([e for _, e in pairs]))
            ratio = float(np.median([r / e for r, e in pairs]))
            half = route_rps / 2
            before = fsync_buckets(f"http://127.0.0.1:{route_port}")
            light = paced(f"http://127.0.0.1:{route_port}/v1/route", bodies, half, args.seconds)
            disk = slow_fsyncs(before, fsync_buckets(f"http://127.0.0.1:{route_port}"))
            light_nofsync = paced(f"http://127.0.0.1:{nofsync_port}/v1/route", bodies, half, args.seconds)
            batch_leads_per_s = batch_throughput(f"http://127.0.0.1:{route_port}", leads, args.batches, args.clients)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)

    result: dict[str, Any] = {
        "route_rps": round(route_rps, 1),
        "echo_rps": round(echo_rps, 1),
        "ratio": round(ratio, 3),
        "p50_ms": light["p50_ms"],
        "p99_ms": light["p99_ms"],
        "batch_leads_per_s": round(batch_leads_per_s, 1),
        "rounds": [[round(r, 1), round(e, 1)] for r, e in pairs],
        "paced_rps": light["achieved_rps"],
        "max_ms": light["max_ms"],
        "p99_ms_without_fsync": light_nofsync["p99_ms"],
        **disk,
    }
    print(
        f"POST /v1/route {result['route_rps']:,} req/s vs echo {result['echo_rps']:,} req/s: ratio {result['ratio']}"
        f" (median of {args.rounds} back-to-back pairs: {result['rounds']})"
    )
    print(
        f"latency at {light['achieved_rps']:,.0f} req/s (half the maximum, paced): p50 {result['p50_ms']} ms,"
        f" p99 {result['p99_ms']} ms, max {result['max_ms']} ms; the same without fsync: p99"
        f" {result['p99_ms_without_fsync']} ms; the durable run's {disk['fsyncs']:,} fsyncs: "
        f"{disk['fsyncs_over_25ms']} over 25 ms, {disk['fsyncs_over_50ms']} over 50 ms,"
        f" {disk['fsyncs_over_100ms']} over 100 ms"
    )
    batch = result["batch_leads_per_s"]
    print(f"batch route: {batch:,.0f} leads/s ({args.clients} connections, 1,000 leads a request)")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
