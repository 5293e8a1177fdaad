"""Enrichment against a real HTTP provider on 127.0.0.1: slow, failing and rate-limiting variants."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import polars as pl
import pytest

from models.simulation import SimulationConfig, export_files, simulate_company
from pipelines.enrichment import (
    EnrichmentClient,
    MemoryCache,
    ProviderConfig,
    RateLimiter,
    WarehouseCache,
    _retry_after,
    load_reference,
)
from pipelines.ingest import ingest_frame
from pipelines.quality import run_quality
from pipelines.warehouse import Warehouse

KNOWN = {"acme.com": {"industry": "software", "employees": 120, "annual_revenue": 3.5e6, "country": "US",
                      "ignored": "x"}}  # fmt: skip


class Provider:
    """A threaded HTTP server whose first path segment picks the behaviour: ``ok``, ``slow``,
    ``fail`` or ``limit`` (answers 429 with Retry-After until ``limit_until``)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, float]] = []
        self.lock = threading.Lock()
        self.limit_until = 0.0
        self.retry_after = "0.3"
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                variant = url.path.strip("/").split("/")[0]
                domain = parse_qs(url.query).get("domain", [""])[0]
                now = time.monotonic()
                with provider.lock:
                    provider.requests.append((variant, domain, now))
                if variant == "slow":
                    time.sleep(1.5)
                if variant == "fail":
                    self._send(503, {"error": "down"})
                elif variant == "limit" and now < provider.limit_until:
                    self._send(429, {"error": "slow down"}, {"Retry-After": provider.retry_after})
                elif domain in KNOWN:
                    self._send(200, KNOWN[domain])
                elif domain.endswith(".example") or variant in ("ok", "limit", "slow"):
                    payload = {"industry": "retail", "employees": 10} if domain.endswith(".example") else None
                    self._send(200 if payload else 404, payload or {})
                else:
                    self._send(404, {})

            def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout), as intended

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def url(self, variant: str) -> str:
        return f"http://127.0.0.1:{self.port}/{variant}"

    def count(self, variant: str) -> int:
        with self.lock:
            return sum(1 for v, _, _ in self.requests if v == variant)


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider()
    thread = threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def config(url: str, **overrides: float) -> ProviderConfig:
    base: dict[str, float] = {"timeout_s": 0.3, "max_retries": 2, "backoff_s": 0.01, "rate_per_s": 100.0, "burst": 10}
    base.update(overrides)
    return ProviderConfig(base_url=url, name="test", api_key="secret", **base)  # type: ignore[arg-type]


def test_answers_are_typed_and_cached_answers_reused(provider: Provider) -> None:
    with EnrichmentClient(config(provider.url("ok")), MemoryCache()) as client:
        found = client.lookup("acme.com")
        assert found.status == "found"
        assert dict(found.values) == {
            "industry": "software",
            "employees": 120,
            "annual_revenue": 3.5e6,
            "country": "US",
        }
        assert client.lookup("unknown.org").status == "not_found"
        again = client.lookup("acme.com")
        assert again.from_cache and again.values == found.values
    assert provider.count("ok") == 2
    assert "secret" not in repr(config("x"))


def test_a_slow_provider_delays_no_lead_beyond_the_timeout(provider: Provider) -> None:
    with EnrichmentClient(config(provider.url("slow"), timeout_s=0.25)) as client:
        started = time.monotonic()
        answer = client.lookup("acme.com")
        elapsed = time.monotonic() - started
    assert answer.status == "failed" and "timed out" in answer.reason
    assert elapsed < 0.25 + 0.15


def test_a_failing_provider_is_retried_with_backoff_then_the_breaker_opens(provider: Provider) -> None:
    cfg = config(provider.url("fail"), timeout_s=1.0, failure_threshold=6, cooldown_s=60)
    with EnrichmentClient(cfg) as client:
        first = client.lookup("a.com")
        assert first.status == "failed" and first.attempts == 3 and "503" in first.reason
        client.lookup("b.com")  # three more failures: the breaker opens
        started = time.monotonic()
        blocked = client.lookup("c.com")
        assert time.monotonic() - started < 0.05
    assert "circuit open" in blocked.reason
    assert provider.count("fail") == 6


def test_the_client_side_rate_limit_is_respected(provider: Provider) -> None:
    rate, burst = 20.0, 2
    with EnrichmentClient(config(provider.url("ok"), rate_per_s=rate, burst=burst)) as client:
        answers = client.lookup_many([f"d{i}.example" for i in range(10)], budget_s=5.0)
    assert all(a.status == "found" for a in answers.values())
    times = sorted(t for v, _, t in provider.requests if v == "ok")
    assert len(times) == 10
    for i, t in enumerate(times):
        # A token bucket allows `burst` at once, then one every 1/rate seconds.
        assert t - times[0] >= (i - burst + 1) / rate - 0.01


def test_429_retry_after_pauses_calls_and_a_short_budget_gives_up_fast(provider: Provider) -> None:
    provider.limit_until = time.monotonic() + 0.25
    with EnrichmentClient(config(provider.url("limit"), timeout_s=1.0)) as client:
        answer = client.lookup("acme.com")
    assert answer.status == "found"
    times = [t for v, _, t in provider.requests if v == "limit"]
    assert len(times) == 2 and times[1] - times[0] >= 0.3 - 0.01  # waited for Retry-After

    provider.limit_until = time.monotonic() + 5
    provider.retry_after = "5"
    with EnrichmentClient(config(provider.url("limit"), timeout_s=0.2)) as client:
        started = time.monotonic()
        limited = client.lookup("acme.com")
        assert time.monotonic() - started < 0.3
        assert limited.status == "failed" and "429" in limited.reason
        # Within the pause nothing is sent at all.
        before = provider.count("limit")
        assert client.lookup("other.com").status == "failed"
        assert provider.count("limit") == before


def test_retry_after_parsing() -> None:
    assert _retry_after("2") == 2.0
    assert _retry_after(None) == 1.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert _retry_after("soon") == 1.0


def test_rate_limiter_refuses_waits_beyond_the_deadline() -> None:
    now = [0.0]
    limiter = RateLimiter(rate_per_s=1.0, burst=1, clock=lambda: now[0])
    assert limiter.reserve(deadline=0.5) == 0.0
    assert limiter.reserve(deadline=0.5) is None  # the next token comes at t=1
    assert limiter.reserve(deadline=2.0) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def company_files() -> dict[str, pl.DataFrame]:
    return export_files(simulate_company(SimulationConfig(n_leads=600, seed=4)))


def loaded(warehouse: Warehouse, files: dict[str, pl.DataFrame]) -> Warehouse:
    for entity in ("reps", "accounts", "leads", "decisions"):
        ingest_frame(warehouse, entity, files[entity], label=entity)
    return warehouse


def test_an_outage_loses_no_lead_and_says_why(
    provider: Provider, warehouse: Warehouse, company_files: dict[str, pl.DataFrame]
) -> None:
    loaded(warehouse, company_files)
    cfg = config(provider.url("fail"), timeout_s=0.2, failure_threshold=3, cooldown_s=60)
    with EnrichmentClient(cfg) as client:
        started = time.monotonic()
        run = run_quality(warehouse, provider=client, budget_s=2.0)
        elapsed = time.monotonic() - started
    with warehouse.connect() as con:
        leads = con.execute("SELECT count(*) FROM leads").fetchall()[0][0]
        stored = con.execute("SELECT count(*) FROM lead_quality").fetchall()[0][0]
        notes = con.execute(
            "SELECT count(*) FROM lead_quality WHERE enrichment_note LIKE '%unavailable%routed with the data known'"
        ).fetchall()[0][0]
    assert run.leads == leads == stored
    assert notes == run.provider_failures > 0
    assert provider.count("fail") == 3  # then the breaker spared the provider and the run
    assert elapsed < 10


def test_reference_table_and_provider_fill_gaps_with_their_source_and_the_cache_persists(
    provider: Provider, warehouse: Warehouse
) -> None:
    leads = pl.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3"],
            "created_at": ["2026-01-05T10:00:00Z"] * 3,
            "email": ["a@refco.com", "b@acme.com", "c@gmail.com"],
            "company": ["Refco", "Acme", "Nobody"],
            "industry": [None, None, None],
        }
    )
    ingest_frame(warehouse, "leads", leads, label="test")
    load_reference(warehouse, pl.DataFrame({"domain": ["https://www.refco.com/"], "industry": ["finance"],
                                            "employees": ["250"]}), source="crm-export")  # fmt: skip
    cache = WarehouseCache(warehouse)
    with EnrichmentClient(config(provider.url("ok")), cache) as client:
        run_quality(warehouse, provider=client)
    with warehouse.connect() as con:
        stored = con.execute("SELECT lead_id, industry, employees, enriched_from FROM lead_quality ORDER BY lead_id")
        rows = {r[0]: r[1:] for r in stored.fetchall()}
    assert rows["L1"][:2] == ("finance", 250)
    assert json.loads(rows["L1"][2]) == {"industry": "reference:crm-export", "employees": "reference:crm-export"}
    assert rows["L2"][:2] == ("software", 120)
    assert json.loads(rows["L2"][2])["industry"] == "provider:test"
    assert rows["L3"][0] is None  # free-mail: nothing to look up
    calls = provider.count("ok")
    assert calls == 2  # refco.com still misses revenue and country, acme.com everything
    with EnrichmentClient(config(provider.url("ok")), WarehouseCache(warehouse)) as fresh:
        run_quality(warehouse, provider=fresh)
        assert fresh.calls == 0
