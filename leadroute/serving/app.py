"""The FastAPI app: thin handlers over the routing service, the outcome store and the metrics.

``create_app`` loads everything the endpoint needs with short warehouse connections (roster,
live deployment, the lead-score champion), rebuilds routing state from the decision log, and
starts a poller that swaps in a new deployment without a restart. It never keeps the
warehouse open: decisions and outcomes go to the endpoint's own log files.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from leadroute.serving.coalesce import Coalescer
from leadroute.serving.deployment import ModelScorer, build_deployment, load_scorer
from leadroute.serving.keys import KeyRing, load_keys
from leadroute.serving.log import JsonLog
from leadroute.serving.metrics import Metrics
from leadroute.serving.notify import NotifyFormat, Outbox
from leadroute.serving.outcomes import OUTCOMES, OutcomeStore
from leadroute.serving.records import Rejected
from leadroute.serving.router import DECISIONS, RoutingService
from leadroute.serving.schemas import (
    BatchIn,
    BatchOut,
    DecisionOut,
    DeploymentOut,
    ErrorOut,
    LeadIn,
    OutcomesIn,
    OutcomesOut,
)
from pipelines.deployments import live_deployment
from pipelines.policies import load_roster
from pipelines.settings import Settings

DEFAULT_MAX_BODY_BYTES = 1_000_000
ROUTES = ("/v1/route", "/v1/route/batch", "/v1/outcomes", "/v1/deployment", "/healthz", "/metrics")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Guard:
    """Pure ASGI middleware: body-size limit (413 before the app reads anything), request
    counts and latency by route template (unknown paths count as ``other``)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, metrics: Metrics) -> None:
        self.app, self.max_body_bytes, self.metrics = app, max_body_bytes, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route = scope["path"] if scope["path"] in ROUTES else "other"
        status = {"code": 500}

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        body = await self._read_body(receive)
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        try:
            if scope["method"] == "POST" and route != "other" and b"json" not in content_type.lower():
                await _json(counting_send, 415, {"error": "send the body as JSON (Content-Type: application/json)"})
            elif body is None:
                await _json(counting_send, 413, {"error": f"request body larger than {self.max_body_bytes} bytes"})
            else:
                await self.app(scope, _replay(body, receive), counting_send)
        finally:
            # Counted even when the app raised (a 500): server errors must show in /metrics.
            code = str(status["code"])
            self.metrics.inc("leadroute_requests_total", "HTTP requests by route and status.", route=route, status=code)
            self.metrics.observe_latency(route, time.perf_counter() - started)

    async def _read_body(self, receive: Receive) -> bytes | None:
        # Read the whole body here, bounded: chunked uploads without a Content-Length are
        # limited the same way, and the handler then gets it in one piece.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body read by the guard, then the real channel."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()  # a disconnect, if the client goes away
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _problems(rejects: list[Rejected], prefix: str, batch: bool) -> list[dict[str, str]]:
    out = []
    for reject in rejects:
        for part in reject.reason.split("; "):
            field, _, problem = part.partition(": ")
            where = f"{prefix}.{reject.index}.{field}" if batch else field
            out.append({"field": where, "problem": problem or part})
    return out


def create_app(
    settings: Settings,
    *,
    keys: KeyRing | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    reload_interval_s: float = 2.0,
    use_model: bool = True,
    fsync: bool = True,
    notify_url: str | None = None,
    notify_format: NotifyFormat = "json",
) -> FastAPI:
    """Build the endpoint for a workspace.

    Args:
        settings: the workspace (must hold a warehouse with teams and reps).
        keys: accepted API keys (default: :func:`load_keys` on the workspace).
        max_body_bytes: larger request bodies get 413.
        reload_interval_s: how often the live deployment is checked (0: never).
        use_model: score with the ``lead-score`` champion when one is registered.
        fsync: False only for benchmarks that measure what durability costs.
        notify_url: where owner notifications go (a generic JSON or Slack incoming webhook); none
            are sent without it.
        notify_format: ``json`` or ``slack`` (blocks).
    """
    keys = keys or load_keys(settings.home)
    metrics = Metrics()
    roster = load_roster(settings)
    scorer: ModelScorer | None = load_scorer(settings) if use_model else None
    deployment = build_deployment(settings, roster, scorer, live_deployment(settings))
    decision_log = JsonLog(settings.decision_log_dir, DECISIONS, fsync=fsync)
    service = RoutingService(settings, roster, deployment, decision_log)
    rebuilt = service.rebuild()
    coalescer = Coalescer(service)
    outcomes = OutcomeStore(JsonLog(settings.home / "outcomes", OUTCOMES, fsync=fsync))
    outbox = (
        Outbox(settings.home, settings.decision_log_dir, notify_url, metrics, fmt=notify_format) if notify_url else None
    )
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(reload_interval_s):
            try:
                row = live_deployment(settings)
                if (row[0] if row else None) != service.deployment.deployment_id:
                    service.deployment = build_deployment(settings, roster, scorer, row)
                    metrics.inc("leadroute_deployment_reloads_total", "Deployments picked up without a restart.")
            except Exception:  # a busy or broken workspace must not stop serving
                metrics.inc("leadroute_deployment_reload_errors_total", "Failed checks of the live deployment.")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        poller = threading.Thread(target=poll, name="deployment-poller", daemon=True)
        if reload_interval_s > 0:
            poller.start()
        coalescer.start()
        if outbox is not None:
            outbox.start()
        yield
        stop.set()
        coalescer.stop()
        if outbox is not None:
            outbox.stop()
        decision_log.close()
        outcomes.log.close()

    app = FastAPI(title="leadroute routing endpoint", version="1", lifespan=lifespan)
    app.state.service, app.state.outcomes, app.state.metrics, app.state.rebuilt = service, outcomes, metrics, rebuilt
    bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")

    def require_key(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
        bearer_ok = credentials is not None and credentials.scheme.lower() == "bearer"
        if not (bearer_ok and credentials is not None and keys.accepts_token(credentials.credentials)):
            # The message never repeats what was sent: a wrong key must not end up in a client log.
            raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"error": "the body is not valid JSON", "fields": []}, status_code=400)
        fields = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body", "problem": str(e.get("msg"))}
            for e in errors
        ]
        return JSONResponse({"error": "invalid request", "fields": fields}, status_code=422)

    @app.exception_handler(Exception)
    async def server_error(_: Request, exc: Exception) -> JSONResponse:
        # No detail: an internal message could carry request data. The traceback goes to stderr.
        return JSONResponse({"error": "internal error", "fields": []}, status_code=500)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail), "fields": []}, status_code=exc.status_code, headers=exc.headers)

    def decide(leads: list[LeadIn], batch: bool) -> list[DecisionOut]:
        records, rejects = coalescer.decide([lead.model_dump() for lead in leads])
        if rejects:
            raise _Unprocessable(_problems(rejects, "leads", batch))
        if outbox is not None:
            outbox.enqueue(records)  # only queued: a slow receiver never delays the answer
        out = []
        for record in records:
            metrics.inc(
                "leadroute_decisions_total",
                "Decisions by policy and destination.",
                policy=f"{record['policy']}@{record['policy_version']}",
                team=str(record["team"]),
                action=str(record["action"]),
            )
            out.append(DecisionOut.model_validate(record | {"reasons": json.loads(record["reasons"])}))
        return out

    @app.exception_handler(_Unprocessable)
    async def unprocessable(_: Request, exc: _Unprocessable) -> JSONResponse:
        return JSONResponse({"error": "invalid record", "fields": exc.fields}, status_code=422)

    responses: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorOut},
        413: {"model": ErrorOut},
        422: {"model": ErrorOut},
    }

    @app.post("/v1/route", response_model=DecisionOut, dependencies=[Depends(require_key)], responses=responses)
    def route(lead: LeadIn) -> DecisionOut:
        """Route one lead with the live deployment; the decision is logged before it is returned."""
        return decide([lead], batch=False)[0]

    @app.post("/v1/route/batch", response_model=BatchOut, dependencies=[Depends(require_key)], responses=responses)
    def route_batch(body: BatchIn) -> BatchOut:
        """Route many leads (in the given order) with one deployment."""
        return BatchOut(decisions=decide(body.leads, batch=True))

    @app.post("/v1/outcomes", response_model=OutcomesOut, dependencies=[Depends(require_key)], responses=responses)
    def take_outcomes(body: OutcomesIn) -> OutcomesOut:
        """Outcome events; an ``event_id`` seen before is acknowledged and not stored again."""
        result = outcomes.add([e.model_dump() for e in body.events])
        if result.rejected:
            raise _Unprocessable(_problems(result.rejected, "events", batch=True))
        metrics.inc("leadroute_outcomes_total", "Outcome events stored.", float(result.accepted))
        return OutcomesOut(accepted=result.accepted, duplicates=result.duplicates)

    @app.get("/v1/deployment", response_model=DeploymentOut, dependencies=[Depends(require_key)], responses=responses)
    def deployment_info() -> DeploymentOut:
        """What is live: policy versions, traffic shares and the scoring model."""
        model = (
            {"name": "lead-score", "alias": "champion", "version": scorer.version}
            if scorer is not None
            else {"name": None, "source": "the lead's own score"}
        )
        return DeploymentOut.model_validate(service.deployment.to_json() | {"model": model})

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness (no key needed)."""
        return {"status": "ok"}

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=[Depends(require_key)])
    def metrics_text() -> PlainTextResponse:
        """Prometheus text metrics."""
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    app.add_middleware(_Guard, max_body_bytes=max_body_bytes, metrics=metrics)
    return app


class _Unprocessable(Exception):  # noqa: N818 (an HTTP status, not an error class name)
    """Records that failed canonical validation (answered 422 naming each field)."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        super().__init__("invalid record")
        self.fields = fields
