"""Firmographic enrichment from an external HTTP provider, within a time budget, politely.

The provider contract (a thin adapter can map a vendor's API onto it)::

    GET {base_url}/companies?domain=acme.com   (Authorization: Bearer KEY when a key is set)
    200 {"industry": "...", "employees": 120, "annual_revenue": 3.5e6, "country": "US"}
    404 the domain is unknown            429 slow down (Retry-After: seconds or an HTTP date)

Routing must never wait on the provider beyond its budget, so every lookup has a deadline:
the HTTP timeout, retries with exponential backoff (seeded jitter) and waits for the rate limit
all fit inside it, and what does not fit returns a ``failed`` answer with the reason. A
client-side token bucket keeps under the provider's rate, a 429 pauses all calls until its
``Retry-After``, and after ``failure_threshold`` consecutive failures a circuit breaker stops
calling for ``cooldown_s`` (an outage costs one fast "unavailable" per lead, not a timeout).
Answers (found and not found, never failures) are cached: in memory, or in the warehouse's
``enrichment_cache`` table so batch runs and later processes reuse them.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol

import httpx
import polars as pl

from models.quality.enrich import ENRICHABLE
from pipelines.warehouse import Warehouse, query_frame

AnswerStatus = Literal["found", "not_found", "failed"]


@dataclass(frozen=True)
class ProviderConfig:
    """How to reach the provider and how hard to try (the API key is never printed)."""

    base_url: str
    name: str = "provider"
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 0.5
    """Budget of one lookup, retries and waits included: the most routing can be delayed."""
    max_retries: int = 2
    backoff_s: float = 0.05
    rate_per_s: float = 10.0
    burst: int = 5
    failure_threshold: int = 5
    cooldown_s: float = 30.0
    cache_ttl_days: float = 30.0


@dataclass(frozen=True)
class ProviderAnswer:
    """What the provider said about one domain (``values`` holds only well-typed fields)."""

    domain: str
    status: AnswerStatus
    values: Mapping[str, object]
    reason: str
    from_cache: bool = False
    attempts: int = 0


class EnrichmentCache(Protocol):
    def get(self, provider: str, domains: Iterable[str]) -> dict[str, ProviderAnswer]: ...
    def put(self, provider: str, answers: Iterable[ProviderAnswer]) -> None: ...


class MemoryCache:
    """A process-local cache (the endpoint's, which must not hold the warehouse)."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], ProviderAnswer] = {}
        self._lock = threading.Lock()

    def get(self, provider: str, domains: Iterable[str]) -> dict[str, ProviderAnswer]:
        with self._lock:
            return {
                d: replace(self._answers[(provider, d)], from_cache=True, reason="cached answer", attempts=0)
                for d in domains
                if (provider, d) in self._answers
            }

    def put(self, provider: str, answers: Iterable[ProviderAnswer]) -> None:
        with self._lock:
            for answer in answers:
                if answer.status != "failed":
                    self._answers[(provider, answer.domain)] = answer


class WarehouseCache:
    """The ``enrichment_cache`` table: answers younger than ``ttl_days`` are reused."""

    def __init__(self, warehouse: Warehouse, ttl_days: float = 30.0) -> None:
        self.warehouse = warehouse
        self.ttl_days = ttl_days

    def get(self, provider: str, domains: Iterable[str]) -> dict[str, ProviderAnswer]:
        wanted = pl.DataFrame({"domain": sorted(set(domains))}, schema={"domain": pl.String()})
        if wanted.is_empty():
            return {}
        since = datetime.now(UTC) - timedelta(days=self.ttl_days)
        with self.warehouse.connect() as con:
            con.register("wanted_domains", wanted.to_arrow())
            try:
                rows = query_frame(
                    con,
                    """SELECT c.domain, c.status, c.payload FROM enrichment_cache c
                       JOIN wanted_domains w USING (domain) WHERE c.provider = ? AND c.fetched_at >= ?""",
                    [provider, since],
                )
            finally:
                con.unregister("wanted_domains")
        return {
            d: ProviderAnswer(d, s, json.loads(p) if p else {}, "cached answer", from_cache=True)
            for d, s, p in rows.iter_rows()
        }

    def put(self, provider: str, answers: Iterable[ProviderAnswer]) -> None:
        kept = [a for a in answers if a.status != "failed" and not a.from_cache]
        if not kept:
            return
        staged = pl.DataFrame(
            {
                "provider": [provider] * len(kept),
                "domain": [a.domain for a in kept],
                "status": [a.status for a in kept],
                "payload": [json.dumps(dict(a.values), default=str) for a in kept],
            }
        ).unique(subset=["domain"], keep="last")
        with self.warehouse.connect() as con:
            con.register("staged_answers", staged.to_arrow())
            try:
                con.execute(
                    """INSERT OR REPLACE INTO enrichment_cache (provider, domain, status, payload, fetched_at)
                       SELECT provider, domain, status, payload, now() FROM staged_answers"""
                )
            finally:
                con.unregister("staged_answers")


class RateLimiter:
    """A token bucket plus a pause imposed by the provider (429 + Retry-After); thread-safe."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_s
        self.burst = max(1, burst)
        self._clock = clock
        self._tokens = float(self.burst)
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def reserve(self, deadline: float) -> float | None:
        """Take a token; returns how long to wait before calling, or None (taking nothing) if
        that wait would end after ``deadline``."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            start = max(now, self._paused_until)
            shortfall = max(0.0, 1.0 - self._tokens)
            start = max(start, now + shortfall / self.rate)
            if start > deadline:
                return None
            self._tokens -= 1.0
            return start - now

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)


class EnrichmentClient:
    """Looks domains up at the provider within a deadline (see the module docstring)."""

    def __init__(
        self,
        config: ProviderConfig,
        cache: EnrichmentCache | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        seed: int = 0,
    ) -> None:
        self.config = config
        self.cache: EnrichmentCache = cache if cache is not None else MemoryCache()
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.Client(base_url=config.base_url, headers=headers, transport=transport)
        self._limiter = RateLimiter(config.rate_per_s, config.burst)
        self._random = random.Random(seed)  # noqa: S311 (jitter only; seeded so runs repeat)
        self._failures = 0
        self._open_until = 0.0
        self._lock = threading.Lock()
        self.calls = 0
        """HTTP requests sent so far (tests and metrics read it)."""

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EnrichmentClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def lookup(self, domain: str, *, budget_s: float | None = None) -> ProviderAnswer:
        """One domain: the cache, else the provider within ``budget_s`` (default the timeout)."""
        return self.lookup_many([domain], budget_s=budget_s)[domain]

    def lookup_many(self, domains: Iterable[str], *, budget_s: float | None = None) -> dict[str, ProviderAnswer]:
        """Many domains, cache first, then one request per domain until the budget is spent;
        the rest are answered ``failed`` with the reason (nothing is dropped)."""
        wanted = list(dict.fromkeys(domains))
        answers = self.cache.get(self.config.name, wanted)
        budget = self.config.timeout_s if budget_s is None else budget_s
        deadline = time.monotonic() + budget
        fresh: list[ProviderAnswer] = []
        for domain in wanted:
            if domain in answers:
                continue
            answer = self._fetch(domain, min(deadline, time.monotonic() + self.config.timeout_s))
            answers[domain] = answer
            fresh.append(answer)
        self.cache.put(self.config.name, fresh)
        return answers

    def _fetch(self, domain: str, deadline: float) -> ProviderAnswer:
        if time.monotonic() < self._open_until:
            return ProviderAnswer(domain, "failed", {}, "provider unavailable (circuit open after repeated failures)")
        reason = "no attempt fitted in the time budget"
        attempts = 0
        for attempt in range(self.config.max_retries + 1):
            wait = self._limiter.reserve(deadline)
            if wait is None:
                return ProviderAnswer(
                    domain, "failed", {}, f"rate limit: no slot within the budget ({reason})", attempts=attempts
                )
            time.sleep(wait)
            remaining = deadline - time.monotonic()
            if remaining <= 0.001:
                break
            attempts += 1
            self.calls += 1
            try:
                response = self._http.get("/companies", params={"domain": domain}, timeout=httpx.Timeout(remaining))
            except httpx.TimeoutException:
                reason = f"provider timed out after {remaining:.2f} s"
                self._record(ok=False)
            except httpx.HTTPError as exc:
                reason = f"provider unreachable ({type(exc).__name__})"
                self._record(ok=False)
            else:
                if response.status_code == 200:
                    self._record(ok=True)
                    return ProviderAnswer(domain, "found", _values(response), "provider answered", attempts=attempts)
                if response.status_code == 404:
                    self._record(ok=True)
                    return ProviderAnswer(
                        domain, "not_found", {}, "provider does not know the domain", attempts=attempts
                    )
                if response.status_code == 429:
                    pause = _retry_after(response.headers.get("Retry-After"))
                    self._limiter.pause(pause)
                    reason = f"provider rate limit (429, Retry-After {pause:g} s)"
                    continue  # the limiter now waits for the pause, or gives up at the deadline
                if response.status_code < 500:
                    return ProviderAnswer(
                        domain, "failed", {}, f"provider refused ({response.status_code})", attempts=attempts
                    )
                reason = f"provider error ({response.status_code})"
                self._record(ok=False)
            backoff = self.config.backoff_s * 2**attempt * (0.5 + self._random.random())
            if time.monotonic() + backoff >= deadline:
                break
            time.sleep(backoff)
        return ProviderAnswer(domain, "failed", {}, reason, attempts=attempts)

    def _record(self, *, ok: bool) -> None:
        with self._lock:
            self._failures = 0 if ok else self._failures + 1
            if self._failures >= self.config.failure_threshold:
                self._open_until = time.monotonic() + self.config.cooldown_s
                self._failures = 0


MAX_ANSWER_BYTES = 64_000
"""A company record is a few hundred bytes; anything far larger is not one and is ignored."""


def _values(response: httpx.Response) -> dict[str, object]:
    """The enrichable fields of a 200 answer that have the right type; others are ignored."""
    if len(response.content) > MAX_ANSWER_BYTES:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    values: dict[str, object] = {}
    for name in ENRICHABLE:
        value = body.get(name)
        if name in ("industry", "country") and isinstance(value, str) and value.strip():
            values[name] = value.strip()[:200]
        elif name in ("employees", "annual_revenue") and _is_count(value, whole=name == "employees"):
            values[name] = int(value) if name == "employees" else float(value)  # type: ignore[arg-type]
    return values


def _is_count(value: object, *, whole: bool) -> bool:
    """A finite, non-negative number (a whole one if ``whole``); booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return False
    return not whole or value == int(value)


def _retry_after(header: str | None, default: float = 1.0, cap: float = 3600.0) -> float:
    """Seconds to pause from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not header:
        return default
    try:
        return min(cap, max(0.0, float(header)))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(cap, max(0.0, (when - datetime.now(UTC)).total_seconds()))


REFERENCE_COLUMNS = ("domain", *ENRICHABLE, "source")


def load_reference(warehouse: Warehouse, frame: pl.DataFrame, *, source: str) -> int:
    """Upsert firmographics keyed by web domain into ``company_reference`` (a later load of a
    domain replaces it); returns the rows stored. ``frame`` needs ``domain`` and any of the
    enrichable fields; domains are normalised and rows without a usable one are skipped."""
    from models.quality.normalise import normalise_domain

    staged = frame.select(
        normalise_domain(pl.col("domain").cast(pl.String)).alias("domain"),
        *[
            pl.col(name).cast(dtype, strict=False) if name in frame.columns else pl.lit(None, dtype).alias(name)
            for name, dtype in ENRICHABLE.items()
        ],
        pl.lit(source).alias("source"),
    ).filter(pl.col("domain").is_not_null())
    staged = staged.unique(subset=["domain"], keep="last", maintain_order=True)
    with warehouse.connect() as con:
        con.register("staged_reference", staged.to_arrow())
        try:
            con.execute(
                """INSERT OR REPLACE INTO company_reference
                   SELECT domain, industry, employees, annual_revenue, country, source, now() FROM staged_reference"""
            )
        finally:
            con.unregister("staged_reference")
    return staged.height
