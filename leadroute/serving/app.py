"""The FastAPI app: thin handlers over the routing service, the outcome store and the metrics.

``create_app`` loads everything the endpoint needs with short warehouse connections (roster,
live deployment, the lead-score champion), rebuilds routing state from the decision log, and
starts a poller that swaps in a new deployment without a restart. It never keeps the
warehouse open: decisions and outcomes go to the endpoint's own log files.

Besides the client routes: CRM webhooks (HubSpot, Salesforce; see ``crm.py``) that turn
deliveries into routed leads and outcome events through the same validation, and admin routes
(reload now, routing state) that need an admin key.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any

import polars as pl
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.telemetry import TelemetryConfig
from starlette.concurrency import run_in_threadpool

from leadroute.serving.batch import Batch, batch_answer, decision_json, parse_batch, parse_lead, typed_leads
from leadroute.serving.coalesce import Coalescer
from leadroute.serving.crm import (
    Action,
    PayloadError,
    WebhookConfig,
    WebhookInbox,
    hubspot_actions,
    hubspot_key,
    load_webhook_config,
    parse_hubspot,
    parse_outbound_message,
    salesforce_actions,
    same_org,
    soap_ack,
    soap_fault,
    verify_hubspot,
)
from leadroute.serving.deployment import ModelScorer, build_deployment, load_scorer
from leadroute.serving.keys import KeyRing, load_admin_keys, load_keys
from leadroute.serving.log import Durability, JsonLog, read_records
from leadroute.serving.metrics import Metrics
from leadroute.serving.notify import NotifyFormat, Outbox
from leadroute.serving.outcomes import OUTCOMES, OutcomeStore
from leadroute.serving.records import Rejected, validate_indexed, validate_records
from leadroute.serving.router import DECISIONS, RoutingService
from leadroute.serving.schemas import (
    HUBSPOT_BODY_SCHEMA,
    AdminStateOut,
    BatchIn,
    BatchOut,
    CapacityOut,
    DecisionOut,
    DeploymentOut,
    ErrorOut,
    LeadIn,
    LogPositionOut,
    OutboxOut,
    OutcomesIn,
    OutcomesOut,
    PassesOut,
    PolicyStateOut,
    ReloadOut,
    WebhookOut,
)
from leadroute.serving.sla import SlaTimer
from models.policy.roster import UNLIMITED
from pipelines.deployments import champion_version, live_deployment
from pipelines.logfiles import log_files
from pipelines.policies import load_roster
from pipelines.rollout import RolloutWorker
from pipelines.settings import Settings

DEFAULT_MAX_BODY_BYTES = 1_000_000
HUBSPOT_ROUTE = "/v1/webhooks/hubspot"
SALESFORCE_ROUTE = "/v1/webhooks/salesforce"
ROUTES = (
    "/v1/route",
    "/v1/route/batch",
    "/v1/outcomes",
    "/v1/deployment",
    "/healthz",
    "/metrics",
    HUBSPOT_ROUTE,
    SALESFORCE_ROUTE,
    "/v1/admin/reload",
    "/v1/admin/state",
)
SOAP_TYPE = "text/xml; charset=utf-8"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Guard:
    """Pure ASGI middleware: body-size limit (413 before the app reads anything), the content
    type of a POST body (JSON; XML for the Salesforce webhook only), request counts and latency
    by route template (unknown paths count as ``other``)."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, metrics: Metrics, fast: Mapping[str, FastLane] | None = None
    ) -> None:
        self.app, self.max_body_bytes, self.metrics = app, max_body_bytes, metrics
        self.fast = dict(fast or {})

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
        content_type = dict(scope["headers"]).get(b"content-type", b"").lower()
        xml = route == SALESFORCE_ROUTE
        try:
            if body is None:
                problem = f"request body larger than {self.max_body_bytes} bytes"
                await (_soap(counting_send, 413, problem) if xml else _json(counting_send, 413, {"error": problem}))
            elif (
                scope["method"] == "POST"
                and route != "other"
                and body
                and (b"xml" if xml else b"json") not in (content_type)
            ):
                # An empty body (POST /v1/admin/reload) needs no type; a missing one is the app's 422.
                if xml:
                    await _soap(counting_send, 415, "send the message as XML (Content-Type: text/xml)")
                else:
                    await _json(counting_send, 415, {"error": "send the body as JSON (Content-Type: application/json)"})
            else:
                lane = self.fast.get(route) if scope["method"] == "POST" else None
                try:
                    answer = await lane(scope, body) if lane is not None else None
                except Exception:  # as the app's own handler: a JSON 500 without detail, traceback to stderr
                    traceback.print_exc()
                    await _json(counting_send, 500, {"error": "internal error", "fields": []})
                    return
                if answer is not None:
                    await _raw_json(counting_send, 200, answer)
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


# A fast lane answers the well-formed, authorised request of a hot route without FastAPI's
# routing and dependency solving; it returns None for anything else, which then takes the
# normal path (the same key check, validation and error bodies).
FastLane = Callable[[Scope, bytes], Awaitable[bytes | None]]


async def _raw_json(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _bearer(header: str) -> str:
    """The key of an ``Authorization: Bearer KEY`` header ('' for any other header)."""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


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


async def _soap(send: Send, status: int, problem: str) -> None:
    body = soap_fault(problem)
    headers = [(b"content-type", SOAP_TYPE.encode()), (b"content-length", str(len(body)).encode())]
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
    admin_keys: KeyRing | None = None,
    webhooks: WebhookConfig | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    reload_interval_s: float = 2.0,
    use_model: bool = True,
    fsync: bool = True,
    notify_url: str | None = None,
    notify_format: NotifyFormat = "json",
    rollout_interval_s: float = 30.0,
    sla_interval_s: float = 15.0,
) -> FastAPI:
    """Build the endpoint for a workspace.

    Args:
        settings: the workspace (must hold a warehouse with teams and reps).
        keys: accepted API keys (default: :func:`load_keys` on the workspace).
        admin_keys: keys for the admin routes (default: :func:`load_admin_keys`); they also work
            on the client routes.
        webhooks: CRM webhook secrets and checks (default: :func:`load_webhook_config`).
        max_body_bytes: larger request bodies get 413.
        reload_interval_s: how often the live deployment is checked (0: never).
        use_model: score with the ``lead-score`` champion when one is registered.
        fsync: False only for benchmarks that measure what durability costs.
        notify_url: where owner notifications go (a generic JSON, Slack or Teams incoming
            webhook); none are sent without it.
        notify_format: ``json``, ``slack`` (blocks) or ``teams`` (an Adaptive Card).
        rollout_interval_s: how often a running canary is looked at (advanced, held or rolled
            back, :mod:`pipelines.rollout`); 0: never (``leadroute rollout advance`` by hand).
        sla_interval_s: how often the SLA timer ticks (reminders, re-assignments, stuck leads); 0: never.
    """
    keys = keys or load_keys(settings.home)
    admin_keys = admin_keys or load_admin_keys(settings.home)
    webhooks = webhooks or load_webhook_config(settings.home)
    metrics = Metrics()
    roster = load_roster(settings)
    live: dict[str, Any] = {"scorer": load_scorer(settings) if use_model else None}
    deployment = build_deployment(settings, roster, live["scorer"], live_deployment(settings))
    decision_log = JsonLog(
        settings.decision_log_dir,
        DECISIONS,
        fsync=fsync,
        # The disk's share of a decision's latency: every answer waits for one of these.
        on_sync=lambda seconds: metrics.observe(
            "leadroute_decision_log_fsync_seconds", "Time the decision log's fsyncs took.", seconds
        ),
    )
    durable = Durability(decision_log)
    service = RoutingService(settings, roster, deployment, decision_log)
    rebuilt = service.rebuild()
    coalescer = Coalescer(service)
    outcomes = OutcomeStore(JsonLog(settings.home / "outcomes", OUTCOMES, fsync=fsync))
    inbox = WebhookInbox(settings.home / "webhooks", fsync=fsync)
    # Lead ids already routed: a CRM that sends the same lead again (a retry after a crash, a
    # Salesforce edit) does not get it routed twice.
    routed_leads = {str(r.get("lead_id")) for r in read_records(settings.decision_log_dir, DECISIONS)}
    outbox = (
        Outbox(settings.home, settings.decision_log_dir, notify_url, metrics, fmt=notify_format) if notify_url else None
    )
    stop = threading.Event()
    reload_lock = threading.Lock()
    rollout_worker = RolloutWorker(
        settings,
        rollout_interval_s,
        on_error=lambda: metrics.inc("leadroute_rollout_errors_total", "Failed looks at the running canary."),
    )
    sla = SlaTimer(service, metrics=metrics, notify=outbox.enqueue if outbox is not None else None, fsync=fsync)

    def reload(model_too: bool) -> int | None:
        """Swap in the live deployment (and the champion); returns the previous deployment id."""
        with reload_lock:
            previous = service.deployment.deployment_id
            scorer = (load_scorer(settings) if use_model else None) if model_too else live["scorer"]
            row = live_deployment(settings)
            changed = (row[0] if row else None) != previous
            if changed and use_model and not model_too:
                # A rollback may have moved the champion alias back with the deployment.
                current = scorer.version if scorer is not None else None
                if champion_version(settings) != current:
                    scorer = load_scorer(settings)
            if model_too or changed:
                service.deployment = build_deployment(settings, roster, scorer, row)
                live["scorer"] = scorer
            return previous

    def warehouse_stamp() -> tuple[tuple[int, int], ...]:
        """(mtime, size) of the warehouse and its WAL: unchanged means nothing was written since."""
        path = settings.warehouse_path
        stamps = []
        for file in (path, path.with_name(path.name + ".wal")):
            try:
                info = file.stat()
            except OSError:
                stamps.append((0, 0))
            else:
                stamps.append((info.st_mtime_ns, info.st_size))
        return tuple(stamps)

    def poll() -> None:
        # Opening the warehouse costs ~40 ms of CPU; a deployment is a write, so an unchanged
        # warehouse (a stat of two files) means there is nothing to look at.
        seen: tuple[tuple[int, int], ...] | None = None
        while not stop.wait(reload_interval_s):
            stamp = warehouse_stamp()
            if stamp == seen:
                continue
            try:
                if reload(model_too=False) != service.deployment.deployment_id:
                    metrics.inc("leadroute_deployment_reloads_total", "Deployments picked up without a restart.")
                seen = stamp
            except Exception:  # a busy or broken workspace must not stop serving
                metrics.inc("leadroute_deployment_reload_errors_total", "Failed checks of the live deployment.")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        poller = threading.Thread(target=poll, name="deployment-poller", daemon=True)
        if reload_interval_s > 0:
            poller.start()
        coalescer.start()
        durable.start()
        if outbox is not None:
            outbox.start()
        rollout_worker.start()
        if sla_interval_s > 0:
            sla.start(sla_interval_s)
        yield
        stop.set()
        rollout_worker.stop()
        sla.stop()
        coalescer.stop()
        durable.stop()
        if outbox is not None:
            outbox.stop()
        decision_log.close()
        outcomes.log.close()
        inbox.log.close()

    # FastAPI's own OpenTelemetry is off: the endpoint exports Prometheus text at /metrics, and
    # checking for OTel providers on every request cost ~8% of routing one lead.
    off: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    app = FastAPI(title="leadroute routing endpoint", version="1", lifespan=lifespan, telemetry=off)
    app.state.service, app.state.outcomes, app.state.metrics, app.state.rebuilt = service, outcomes, metrics, rebuilt
    bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")

    def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
        return credentials.credentials if credentials is not None and credentials.scheme.lower() == "bearer" else ""

    def any_key(token: str) -> bool:
        """A client or an admin key. Both rings are always checked (``|``, not ``or``): the time
        taken does not tell a client key from an admin one."""
        return keys.accepts_token(token) | admin_keys.accepts_token(token)

    async def require_key(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
        if not any_key(_token(credentials)):
            # The message never repeats what was sent: a wrong key must not end up in a client log.
            raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})

    def require_admin(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
        token = _token(credentials)
        client, admin = keys.accepts_token(token), admin_keys.accepts_token(token)
        if admin:
            return
        if client:
            raise HTTPException(403, "this route needs an admin key")
        raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        if request.url.path == SALESFORCE_ROUTE:
            return _fault(422, "invalid request: " + "; ".join(str(e.get("msg")) for e in errors))
        # FastAPI parses the body before the key dependency runs: an anonymous caller must learn
        # that its key is missing, not how its body is wrong (HubSpot signs instead of a key).
        if request.url.path != HUBSPOT_ROUTE and not any_key(_bearer(request.headers.get("authorization", ""))):
            return JSONResponse(
                {"error": "missing or wrong API key", "fields": []},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"error": "the body is not valid JSON", "fields": []}, status_code=400)
        fields = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body", "problem": str(e.get("msg"))}
            for e in errors
        ]
        return JSONResponse({"error": "invalid request", "fields": fields}, status_code=422)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        # No detail: an internal message could carry request data. The traceback goes to stderr.
        if request.url.path == SALESFORCE_ROUTE:
            return _fault(500, "internal error", code="soapenv:Server")
        return JSONResponse({"error": "internal error", "fields": []}, status_code=500)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path == SALESFORCE_ROUTE:
            return _fault(exc.status_code, str(exc.detail))
        return JSONResponse({"error": str(exc.detail), "fields": []}, status_code=exc.status_code, headers=exc.headers)

    def decide(leads: list[dict[str, Any]], batch: bool, prefix: str = "leads") -> list[dict[str, Any]]:
        """Decide from a worker thread (a sync handler): the logged records, durable."""
        return settle(coalescer.decide(leads), batch, prefix)

    async def decide_async(leads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Decide one request on the event loop (~0.1-0.2 ms of work, less than handing it to a
        thread and back), then await its fsync, shared with every request waiting meanwhile."""
        rows, rejects = validate_indexed("leads", leads)
        if rejects:
            return settle(([], rejects), False, "leads")
        decided = service.try_decide([row for _, row in rows])
        if decided is None:  # a batch holds the state: wait for it off the loop
            return settle(await coalescer.decide_async(leads), False, "leads")
        records, ticket = decided
        await durable.wait(ticket)
        return settle((records, []), False, "leads")

    def settle(outcome: tuple[list[dict[str, Any]], list[Rejected]], batch: bool, prefix: str) -> list[dict[str, Any]]:
        """Refuse the request's rejects (422 naming the fields), or count and queue its decisions."""
        records, rejects = outcome
        if rejects:
            raise _Unprocessable(_problems(rejects, prefix, batch))
        routed_leads.update(str(r["lead_id"]) for r in records)
        if outbox is not None:
            outbox.enqueue(records)  # only queued: a slow receiver never delays the answer
        for record in records:
            count_decisions(record["policy"], record["policy_version"], record["team"], record["action"])
        return records

    def count_decisions(policy: str, version: int | None, team: str, action: str, amount: int = 1) -> None:
        metrics.inc(
            "leadroute_decisions_total",
            "Decisions by policy and destination.",
            amount,
            policy=f"{policy}@{version}",
            team=str(team),
            action=str(action),
        )

    def decide_frame(leads: list[dict[str, Any]] | Batch) -> bytes:
        """A batch as one replay (:mod:`leadroute.serving.batch`): the answer's body."""
        typed, rejects = typed_leads(leads)
        if rejects:
            raise _Unprocessable(_problems(rejects, "leads", batch=True))
        records = service.route_frame(typed)
        routed_leads.update(records["lead_id"].to_list())
        if outbox is not None:
            wanted = records.filter(pl.col("notify")).to_dicts()
            outbox.enqueue([r | {"lead": json.loads(r["lead"])} for r in wanted])
        counts = records.group_by("policy", "policy_version", "team", "action").len()
        for policy, version, team, action, n in counts.iter_rows():
            count_decisions(policy, version, team, action, n)
        return batch_answer(records)

    @app.exception_handler(_Unprocessable)
    async def unprocessable(request: Request, exc: _Unprocessable) -> Response:
        if request.url.path == SALESFORCE_ROUTE:
            return _fault(422, "invalid record: " + "; ".join(f"{f['field']}: {f['problem']}" for f in exc.fields))
        return JSONResponse({"error": "invalid record", "fields": exc.fields}, status_code=422)

    responses: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorOut},
        413: {"model": ErrorOut},
        422: {"model": ErrorOut},
    }
    admin_responses: dict[int | str, dict[str, Any]] = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}}

    @app.post("/v1/route", response_model=DecisionOut, dependencies=[Depends(require_key)], responses=responses)
    async def route(lead: LeadIn) -> Response:
        """Route one lead with the live deployment; the decision is logged before it is returned."""
        record = (await decide_async([lead.model_dump()]))[0]
        return Response(decision_json(record), media_type="application/json")

    @app.post("/v1/route/batch", response_model=BatchOut, dependencies=[Depends(require_key)], responses=responses)
    async def route_batch(body: BatchIn) -> Response:
        """Route many leads with one deployment: in time order (``created_at``, ties in the order
        sent), as replay routes history; the decisions come back in the order sent."""
        leads = [lead.model_dump() for lead in body.leads]
        return Response(await run_in_threadpool(decide_frame, leads), media_type="application/json")

    @app.post("/v1/outcomes", response_model=OutcomesOut, dependencies=[Depends(require_key)], responses=responses)
    def take_outcomes(body: OutcomesIn) -> OutcomesOut:
        """Outcome events; an ``event_id`` seen before is acknowledged and not stored again."""
        result = outcomes.add([e.model_dump() for e in body.events])
        if result.rejected:
            raise _Unprocessable(_problems(result.rejected, "events", batch=True))
        metrics.inc("leadroute_outcomes_total", "Outcome events stored.", float(result.accepted))
        return OutcomesOut(accepted=result.accepted, duplicates=result.duplicates)

    def deployment_out() -> DeploymentOut:
        scorer: ModelScorer | None = live["scorer"]
        model = (
            {"name": "lead-score", "alias": "champion", "version": scorer.version}
            if scorer is not None
            else {"name": None, "source": "the lead's own score"}
        )
        return DeploymentOut.model_validate(service.deployment.to_json() | {"model": model})

    @app.get("/v1/deployment", response_model=DeploymentOut, dependencies=[Depends(require_key)], responses=responses)
    def deployment_info() -> DeploymentOut:
        """What is live: policy versions, traffic shares and the scoring model."""
        return deployment_out()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness (no key needed)."""
        return {"status": "ok"}

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=[Depends(require_key)])
    def metrics_text() -> PlainTextResponse:
        """Prometheus text metrics."""
        return PlainTextResponse(metrics.render() + sla.metrics_text(), media_type="text/plain; version=0.0.4")

    # -- CRM webhooks ---------------------------------------------------------------------

    def count(source: str, result: str, amount: int = 1) -> None:
        if amount:
            metrics.inc(
                "leadroute_webhook_items_total",
                "CRM webhook items by source and result.",
                float(amount),
                source=source,
                result=result,
            )

    def refused(source: str, reason: str) -> None:
        metrics.inc(
            "leadroute_webhook_refused_total", "Refused CRM deliveries by reason.", source=source, reason=reason
        )

    def apply(source: str, actions: list[Action], received: int, duplicates: int, prefix: str) -> WebhookOut:
        """Route the new leads and store the outcomes of ``actions`` (hold ``inbox.lock``); all
        or nothing: any invalid lead or outcome refuses the whole delivery, naming the field."""
        leads: list[tuple[int, dict[str, Any]]] = []
        notes = [f"{a.index}: {a.note}" for a in actions if a.kind == "ignored"]
        ignored = len(notes)
        for action in actions:
            if action.lead is None:
                continue
            lead_id = str(action.lead.get("lead_id", "")).strip()
            if lead_id in routed_leads or any(lead_id == str(other.get("lead_id")).strip() for _, other in leads):
                if not action.outcomes:
                    ignored += 1
                    notes.append(f"{action.index}: lead {lead_id} was routed before")
                continue
            leads.append((action.index, action.lead))
        events = [(a.index, o) for a in actions for o in a.outcomes]
        at = f"{prefix}." if prefix else ""  # fields named by the item's position in the delivery
        problems = [
            {"field": f"{at}{leads[r.index][0]}.{field}", "problem": problem}
            for r in (validate_records("leads", [lead for _, lead in leads])[1] if leads else [])
            for field, problem in _split(r.reason)
        ] + [
            {"field": f"{at}{events[r.index][0]}.{field}", "problem": problem}
            for r in (validate_records("outcomes", [event for _, event in events])[1] if events else [])
            for field, problem in _split(r.reason)
        ]
        if problems:
            refused(source, "invalid_record")
            raise _Unprocessable(problems)
        decisions = decide([lead for _, lead in leads], batch=True, prefix=prefix) if leads else []
        stored = outcomes.add([event for _, event in events]) if events else None
        accepted = stored.accepted if stored is not None else 0
        inbox.record(actions)
        if accepted:
            metrics.inc("leadroute_outcomes_total", "Outcome events stored.", float(accepted))
        dupes = duplicates + (stored.duplicates if stored is not None else 0)
        count(source, "routed", len(decisions))
        count(source, "outcome", accepted)
        count(source, "duplicate", dupes)
        count(source, "ignored", ignored)
        return WebhookOut(
            received=received,
            routed=len(decisions),
            outcomes=accepted,
            duplicates=dupes,
            ignored=ignored,
            decisions=[str(d["decision_id"]) for d in decisions],
            notes=notes,
        )

    def handle_hubspot(events: list[dict[str, Any]]) -> WebhookOut:
        with inbox.lock:
            fresh, keys_now = [], set()
            for event in events:
                key = hubspot_key(event)
                if not inbox.seen(key) and key not in keys_now:
                    keys_now.add(key)
                    fresh.append(event)
            return apply(
                "hubspot", hubspot_actions(fresh, inbox.contacts_of), len(events), len(events) - len(fresh), ""
            )

    @app.post(
        HUBSPOT_ROUTE,
        response_model=WebhookOut,
        responses=admin_responses | {413: {"model": ErrorOut}, 422: {"model": ErrorOut}},
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": HUBSPOT_BODY_SCHEMA}}},
            "parameters": [
                {"name": "X-HubSpot-Signature-v3", "in": "header", "required": True, "schema": {"type": "string"}},
                {"name": "X-HubSpot-Request-Timestamp", "in": "header", "required": True, "schema": {"type": "string"}},
            ],
        },
    )
    async def hubspot_webhook(request: Request) -> WebhookOut:
        """HubSpot webhook events (signature v3; no API key: HubSpot cannot send one). Contact
        creations are routed, lifecycle / lead status / deal stage changes become outcomes."""
        body = await request.body()
        if webhooks.hubspot_secret is None:
            refused("hubspot", "not_configured")
            raise HTTPException(403, "HubSpot webhooks are not configured: set LEADROUTE_HUBSPOT_SECRET")
        uris = [str(request.url)]
        if webhooks.public_url:
            query = request.url.query
            uris.append(webhooks.public_url + request.url.path + (f"?{query}" if query else ""))
        problem = verify_hubspot(
            webhooks.hubspot_secret,
            request.method,
            uris,
            body,
            request.headers.get("x-hubspot-signature-v3"),
            request.headers.get("x-hubspot-request-timestamp"),
            int(time.time() * 1000),
        )
        if problem is not None:
            refused("hubspot", "signature")
            raise HTTPException(401, problem)
        try:
            events = parse_hubspot(body)
        except PayloadError as exc:
            refused("hubspot", "payload")
            raise _Unprocessable(exc.fields) from None
        return await run_in_threadpool(handle_hubspot, events)

    def handle_salesforce(body: bytes) -> None:
        message = parse_outbound_message(body)
        if webhooks.salesforce_org_id and not same_org(message.organization_id, webhooks.salesforce_org_id):
            refused("salesforce", "organization")
            raise HTTPException(403, "OrganizationId is not the configured Salesforce organisation")
        with inbox.lock:
            fresh, keys_now = [], set()
            for note in message.notifications:
                key = f"salesforce:{note.notification_id}"
                if not inbox.seen(key) and key not in keys_now:
                    keys_now.add(key)
                    fresh.append(note)
            duplicates = len(message.notifications) - len(fresh)
            message = type(message)(message.organization_id, fresh)
            actions = salesforce_actions(message, routed_leads.__contains__, datetime.now(UTC))
            apply("salesforce", actions, len(message.notifications) + duplicates, duplicates, "Notification")

    @app.post(
        SALESFORCE_ROUTE,
        response_class=Response,
        responses={
            200: {"content": {"text/xml": {"schema": {"type": "string"}}}, "description": "the Ack envelope"},
            **{code: {"content": {"text/xml": {"schema": {"type": "string"}}}} for code in (400, 401, 403, 413, 422)},
        },
        openapi_extra={"requestBody": {"required": True, "content": {"text/xml": {"schema": {"type": "string"}}}}},
    )
    async def salesforce_webhook(
        request: Request,
        key: Annotated[str | None, Query(description="the API key, for senders that cannot set a header")] = None,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> Response:
        """Salesforce Outbound Message (SOAP): Lead notifications are routed (new leads) and their
        Status / IsConverted stored as outcomes; answered with ``<Ack>true</Ack>``."""
        body = await request.body()
        if not any_key(_token(credentials) or (key or "")):
            refused("salesforce", "key")
            return _fault(401, "missing or wrong API key")
        try:
            await run_in_threadpool(handle_salesforce, body)
        except PayloadError as exc:
            refused("salesforce", "payload")
            return _fault(400, str(exc))
        return Response(soap_ack(), media_type=SOAP_TYPE)

    # -- admin ----------------------------------------------------------------------------

    @app.post(
        "/v1/admin/reload",
        response_model=ReloadOut,
        dependencies=[Depends(require_admin)],
        responses=admin_responses | {503: {"model": ErrorOut}},
    )
    def admin_reload() -> ReloadOut:
        """Re-read the live deployment and the ``lead-score`` champion now; answers what is live."""
        try:
            previous = reload(model_too=True)
        except Exception:
            metrics.inc("leadroute_deployment_reload_errors_total", "Failed checks of the live deployment.")
            raise HTTPException(
                503, "reload failed (the workspace could not be read); what was live stays live"
            ) from None
        metrics.inc("leadroute_admin_reloads_total", "Reloads asked for on /v1/admin/reload.")
        return ReloadOut(previous_deployment_id=previous, deployment=deployment_out())

    @app.get(
        "/v1/admin/state",
        response_model=AdminStateOut,
        dependencies=[Depends(require_admin)],
        responses=admin_responses,
    )
    def admin_state() -> AdminStateOut:
        """Routing state: stride passes (the round-robin pointers) and today's capacity use per
        rep for each policy version, the decision log's position, the notification backlog."""
        today = datetime.now(UTC).date()
        day = (today - date(1970, 1, 1)).days
        with service._lock:  # a consistent snapshot: routing holds this lock while it changes state
            states = {k: s.fork() for k, s in service.states.items()}
        reps = [str(r) for r in roster.rep_id]
        policies = []
        for name, state in sorted(states.items()):
            passes = [
                PassesOut(
                    destination=dest,
                    virtual_time=float(state.vtime.get(dest, 0.0)),
                    passes={reps[i]: float(v) for i, v in enumerate(values) if v > 0},
                )
                for dest, values in sorted(state.passes.items())
            ]
            loads = state.loads.get(day)
            capacity = [
                CapacityOut(
                    rep_id=rep,
                    used=int(loads[i]) if loads is not None else 0,
                    capacity=None if int(roster.capacity[i]) >= UNLIMITED else int(roster.capacity[i]),
                )
                for i, rep in enumerate(reps)
            ]
            policies.append(PolicyStateOut(policy=name, round_robin=passes, capacity_today=capacity))
        files = log_files(settings.decision_log_dir, DECISIONS)
        return AdminStateOut(
            deployment_id=service.deployment.deployment_id,
            today=today.isoformat(),
            policies=policies,
            decision_log=LogPositionOut(
                files=len(files),
                current_file=files[-1].name if files else None,
                bytes=files[-1].stat().st_size if files else 0,
            ),
            outbox=OutboxOut(
                configured=outbox is not None,
                format=notify_format if outbox is not None else None,
                pending=outbox.pending() if outbox is not None else 0,
            ),
            webhook_deliveries_handled=inbox.size(),
        )

    def authorised(scope: Scope) -> bool:
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        return any_key(_bearer(header.decode("latin-1")))

    async def route_fast(scope: Scope, body: bytes) -> bytes | None:
        """``POST /v1/route`` for a valid lead with a valid key; None sends it the normal way."""
        if not authorised(scope):
            return None
        lead = parse_lead(body)
        if lead is None:
            return None
        try:
            record = (await decide_async([lead]))[0]
        except _Unprocessable:
            return None  # the normal path validates again and answers 422 naming the fields
        return decision_json(record)

    async def route_batch_fast(scope: Scope, body: bytes) -> bytes | None:
        """``POST /v1/route/batch`` with plainly valid leads and a valid key, as one replay; None
        sends it the normal way."""
        if not authorised(scope):
            return None
        return await run_in_threadpool(batch_fast, body)  # milliseconds of work: off the event loop

    def batch_fast(body: bytes) -> bytes | None:
        leads = parse_batch(body)
        if leads is None:
            return None
        try:
            return decide_frame(leads)
        except _Unprocessable:
            return None  # the normal path validates again and answers 422 naming the fields

    fast = {"/v1/route": route_fast, "/v1/route/batch": route_batch_fast}
    inner_stack = app.build_middleware_stack

    def guarded_stack() -> ASGIApp:
        # The guard goes outside FastAPI's own middleware (error pages, body limit, telemetry):
        # a fast lane then skips four layers per request; everything else passes through them.
        return _Guard(inner_stack(), max_body_bytes=max_body_bytes, metrics=metrics, fast=fast)

    app.build_middleware_stack = guarded_stack  # type: ignore[method-assign]
    return app


def _split(reason: str) -> list[tuple[str, str]]:
    out = []
    for part in reason.split("; "):
        field, _, problem = part.partition(": ")
        out.append((field, problem or part))
    return out


def _fault(status: int, problem: str, code: str = "soapenv:Client") -> Response:
    return Response(soap_fault(problem, code), status_code=status, media_type=SOAP_TYPE)


class _Unprocessable(Exception):  # noqa: N818 (an HTTP status, not an error class name)
    """Records that failed canonical validation (answered 422 naming each field)."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        super().__init__("invalid record")
        self.fields = fields
