"""An open-loop load generator: POSTs bodies (in turn) at a fixed rate and reports latency percentiles.

wrk keeps a fixed number of requests in flight and so cannot hold a request rate ("p99 at half
the maximum throughput" needs one). This sends request ``i`` at ``start + i / rate`` over a pool
of keep-alive connections and measures each latency from that scheduled moment, so a stalled
server is charged for the requests that queue behind the stall (no coordinated omission).

    python benchmarks/paced.py URL --rate R --seconds S --body FILE [--key KEY] [--connections C]

``FILE`` holds one request body per line.

Prints one JSON object: ``{"rate", "sent", "ok", "errors", "achieved_rps", "p50_ms", "p99_ms", "max_ms"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

import numpy as np


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def run(
    url: str, bodies: list[bytes], rate: float, seconds: float, key: str, connections: int
) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [
        (
            f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]
    total = int(rate * seconds)
    due: asyncio.Queue[int] = asyncio.Queue()
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.2

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                i = await due.get()
                if i < 0:
                    return
                try:
                    status = await _exchange(reader, writer, requests[i % len(requests)])
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                if status != 200:
                    errors += 1
                latencies.append(time.perf_counter() - (start + i / rate))
        finally:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        due.put_nowait(i)
    for _ in workers:
        due.put_nowait(-1)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {
        "rate": rate,
        "sent": total,
        "ok": len(latencies) - errors,
        "errors": errors,
        "achieved_rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if ms.size else float("nan"),
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if ms.size else float("nan"),
        "max_ms": round(float(ms.max()), 2) if ms.size else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--body", required=True, help="file holding the request bodies, one a line")
    parser.add_argument("--key", default="")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with open(args.body, "rb") as handle:
        bodies = [line.strip() for line in handle if line.strip()]
    print(json.dumps(asyncio.run(run(args.url, bodies, args.rate, args.seconds, args.key, args.connections))))


if __name__ == "__main__":
    main()
