"""What the endpoint is doing now: its decision log read by DuckDB directly, and its /metrics.

The endpoint appends every decision to JSON-lines files under ``settings.decision_log_dir``
(``docs/serving.md``) and deliveries of owner notifications to ``<home>/notifications``; this
module reads them with an in-memory DuckDB connection (the warehouse is never opened, so the
endpoint and the loader are never blocked). Optionally it scrapes the endpoint's Prometheus
``/metrics`` for request latency, errors and notification failures, which the log does not hold.

Windows are anchored at the latest logged decision: ``recent`` is the last ``window`` before it,
``previous`` the ``window`` before that; the destination mix of the two is compared by the
population stability index (``models.scoring.drift``) and a chi-square test of homogeneity.

Alerts are simple, stated thresholds (``ALERT_RULES``), never a model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import polars as pl
from scipy.stats import chi2_contingency

from models.scoring.drift import categorical_stability_index, drift_level
from pipelines.logfiles import log_files
from pipelines.settings import Settings
from pipelines.warehouse import query_frame

DECISIONS = "decisions"
SENT = "sent"
NOTIFY_GRACE = timedelta(minutes=5)
"""A notification not delivered this long after its decision counts as failed (the sender
retries with backoff for at most a minute between attempts)."""
PSI_WARN, PSI_ALERT = 0.1, 0.25
CHI2_P = 0.001
MIN_WINDOW_DECISIONS = 50
P99_ALERT_S = 0.25
ERROR_RATE_ALERT = 0.01
QUEUE_SHARE_ALERT = 0.5
ALERT_RULES: tuple[str, ...] = (
    f"destination mix drift: PSI of the recent window against the previous one ≥ {PSI_WARN} warns,"
    f" ≥ {PSI_ALERT} alerts (with at least {MIN_WINDOW_DECISIONS} decisions in each window)",
    f"destination mix change: chi-square test of homogeneity p < {CHI2_P} (same minimum)",
    f"notifications: a decision with notify not delivered {int(NOTIFY_GRACE.total_seconds() // 60)} minutes"
    " after it was made",
    f"queue: more than {QUEUE_SHARE_ALERT:.0%} of recent decisions went to a queue team",
    "traffic: no decision for longer than the window while the endpoint is configured",
    f"latency (endpoint /metrics): p99 of routing requests above {P99_ALERT_S * 1000:.0f} ms",
    f"errors (endpoint /metrics): more than {ERROR_RATE_ALERT:.0%} of requests answered 5xx",
    "stuck leads (endpoint /metrics, SLA timer): any lead past its SLA with no action alerts; leads waiting"
    " in a queue, with an absent owner or an owner over capacity warn",
)
_STREAM_COLUMNS = (
    "decided_at",
    "lead_id",
    "team",
    "rep_id",
    "action",
    "score",
    "policy",
    "policy_version",
    "arm",
    "rule",
    "method",
    "notify",
    "propensity",
    "decision_id",
)


def decision_files(settings: Settings) -> list[Path]:
    return log_files(settings.decision_log_dir, DECISIONS)


def _read(files: list[Path], columns: tuple[str, ...]) -> pl.DataFrame:
    """The named fields of every complete record (``read_json`` with the file list bound)."""
    if not files:
        return pl.DataFrame()
    con = duckdb.connect()
    try:
        frame = query_frame(
            con,
            "SELECT * FROM read_json(?, format = 'newline_delimited', union_by_name = true, ignore_errors = true)",
            [[str(p) for p in files]],
        )
    finally:
        con.close()
    frame = frame.with_columns(pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t == pl.Object)
    present = [c for c in columns if c in frame.columns]
    return frame.select(present) if present else pl.DataFrame()


def load_decisions(settings: Settings) -> pl.DataFrame:
    """Every logged decision (``_STREAM_COLUMNS`` that exist), ``decided_at`` as UTC datetime, oldest first."""
    frame = _read(decision_files(settings), _STREAM_COLUMNS)
    if frame.is_empty() or "decided_at" not in frame.columns:
        return pl.DataFrame()
    when = frame["decided_at"]
    if when.dtype == pl.String:
        when = when.str.to_datetime(time_zone="UTC", strict=False)
    elif isinstance(when.dtype, pl.Datetime):
        when = when.dt.replace_time_zone("UTC") if when.dtype.time_zone is None else when.dt.convert_time_zone("UTC")
    return frame.with_columns(when.alias("decided_at")).sort("decided_at", maintain_order=True)


def decision_stream(settings: Settings, limit: int = 200) -> pl.DataFrame:
    """The latest ``limit`` decisions, newest first."""
    frame = load_decisions(settings)
    return frame.reverse().head(limit) if not frame.is_empty() else frame


@dataclass(frozen=True)
class MixDrift:
    """Destination mix of the recent window against the previous one."""

    recent_start: datetime
    previous_start: datetime
    end: datetime
    table: pl.DataFrame  # team, previous, recent (counts), previous_share, recent_share
    n_recent: int
    n_previous: int
    psi: float | None
    level: str | None
    chi2: float | None
    p_value: float | None
    note: str = ""


@dataclass(frozen=True)
class Notifications:
    """Owner notifications: decisions with ``notify``, delivered, and overdue (not delivered
    ``NOTIFY_GRACE`` after the decision)."""

    requested: int
    delivered: int
    overdue: int
    pending: int


@dataclass(frozen=True)
class EndpointMetrics:
    """From the endpoint's /metrics (Prometheus text)."""

    requests: int
    errors_5xx: int
    client_errors_4xx: int
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    notifications_sent: float
    notification_failures: float
    latency_route: str
    stuck_leads: dict[str, int] = field(default_factory=dict)  # SLA timer: kind → leads

    @property
    def error_rate(self) -> float:
        return self.errors_5xx / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Alert:
    level: str  # "alert" or "warning"
    what: str
    message: str


@dataclass(frozen=True)
class MonitorSummary:
    n_decisions: int
    first: datetime | None
    last: datetime | None
    window: timedelta
    per_team: pl.DataFrame  # team, decisions, share (recent window)
    per_action: pl.DataFrame
    per_policy: pl.DataFrame  # policy, policy_version, arm, decisions (recent window)
    mix: MixDrift | None
    notifications: Notifications
    endpoint: EndpointMetrics | None
    endpoint_error: str | None
    alerts: list[Alert] = field(default_factory=list)


def mix_drift(decisions: pl.DataFrame, window: timedelta) -> MixDrift | None:
    """Team counts in the recent and previous windows (anchored at the latest decision), PSI and χ²."""
    if decisions.is_empty():
        return None
    end = decisions["decided_at"].max()
    assert isinstance(end, datetime)
    recent_start, previous_start = end - window, end - 2 * window
    at = pl.col("decided_at")
    recent = decisions.filter((at > recent_start) & (at <= end))
    previous = decisions.filter((at > previous_start) & (at <= recent_start))
    counts = (
        pl.concat(
            [
                recent.select(pl.col("team").fill_null("(none)"), pl.lit("recent").alias("side")),
                previous.select(pl.col("team").fill_null("(none)"), pl.lit("previous").alias("side")),
            ]
        )
        .group_by("team", "side")
        .len()
        .pivot("side", index="team", values="len")
    )
    for side in ("previous", "recent"):
        if side not in counts.columns:
            counts = counts.with_columns(pl.lit(0, pl.UInt32).alias(side))
    table = (
        counts.select(
            "team", pl.col("previous").fill_null(0).cast(pl.Int64), pl.col("recent").fill_null(0).cast(pl.Int64)
        )
        .with_columns(
            (pl.col("previous") / max(previous.height, 1)).alias("previous_share"),
            (pl.col("recent") / max(recent.height, 1)).alias("recent_share"),
        )
        .sort(["recent", "team"], descending=[True, False])
    )
    psi = chi2 = p = None
    level = None
    note = ""
    if recent.height and previous.height:
        psi = categorical_stability_index(previous["team"], recent["team"])
        level = drift_level(psi)
        observed = table.select("previous", "recent").to_numpy().T
        observed = observed[:, observed.sum(axis=0) > 0]
        if observed.shape[1] >= 2:
            stat, p_value, _, _ = chi2_contingency(observed)
            chi2, p = float(stat), float(p_value)
        else:
            chi2, p = 0.0, 1.0
    else:
        note = "no decisions in the previous window yet: nothing to compare with"
    return MixDrift(recent_start, previous_start, end, table, recent.height, previous.height, psi, level, chi2, p, note)


def notifications(settings: Settings, decisions: pl.DataFrame, now: datetime) -> Notifications:
    """Decisions with ``notify`` against the sender's delivery log."""
    if decisions.is_empty() or "notify" not in decisions.columns:
        return Notifications(0, 0, 0, 0)
    wanted = decisions.filter(pl.col("notify").fill_null(False).cast(pl.Boolean))
    sent = _read(log_files(settings.home / "notifications", SENT), ("decision_id", "sent_at"))
    delivered_ids = (
        sent["decision_id"].cast(pl.String) if "decision_id" in sent.columns else pl.Series([], dtype=pl.String)
    )
    delivered = wanted["decision_id"].cast(pl.String).is_in(delivered_ids.implode())
    undelivered = wanted.filter(~delivered)
    overdue = int((undelivered["decided_at"] < now - NOTIFY_GRACE).sum())
    return Notifications(wanted.height, int(delivered.sum()), overdue, undelivered.height - overdue)


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Samples of the exposition text: ``(name, labels, value)``."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match["labels"] or ""))
        try:
            out.append((match["name"], labels, float(match["value"])))
        except ValueError:
            continue
    return out


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' ``histogram_quantile``: linear interpolation inside the cumulative bucket."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside > 0 else 1.0)
        lower, below = bound, count
    return lower


def endpoint_metrics(url: str, api_key: str | None, timeout_s: float = 3.0) -> EndpointMetrics:
    """Scrape ``<url>/metrics`` (``Authorization: Bearer KEY``). Raises ``httpx.HTTPError``."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    response = httpx.get(url.rstrip("/") + "/metrics", headers=headers, timeout=timeout_s)
    response.raise_for_status()
    samples = parse_prometheus(response.text)
    requests = errors = client = 0
    sent = failures = 0.0
    by_route: dict[str, list[tuple[float, float]]] = {}
    stuck: dict[str, int] = {}
    for name, labels, value in samples:
        if name == "leadroute_sla_stuck_leads" and "team" not in labels:
            stuck[labels.get("kind", "")] = int(value)
        if name == "leadroute_requests_total":
            requests += int(value)
            status = labels.get("status", "")
            errors += int(value) if status.startswith("5") else 0
            client += int(value) if status.startswith("4") else 0
        elif name == "leadroute_notifications_sent_total":
            sent += value
        elif name == "leadroute_notification_failures_total":
            failures += value
        elif name == "leadroute_request_duration_seconds_bucket":
            le = labels.get("le", "+Inf")
            by_route.setdefault(labels.get("route", ""), []).append((math.inf if le == "+Inf" else float(le), value))
    routing = [r for r in by_route if r.startswith("/v1/route")] or list(by_route)
    route = max(routing, key=lambda r: by_route[r][-1][1] if by_route[r] else 0) if routing else ""
    buckets = by_route.get(route, [])
    return EndpointMetrics(
        requests=requests,
        errors_5xx=errors,
        client_errors_4xx=client,
        p50_s=histogram_quantile(0.5, buckets),
        p95_s=histogram_quantile(0.95, buckets),
        p99_s=histogram_quantile(0.99, buckets),
        notifications_sent=sent,
        notification_failures=failures,
        latency_route=route,
        stuck_leads=stuck,
    )


def monitor(
    settings: Settings,
    *,
    window: timedelta = timedelta(hours=1),
    now: datetime | None = None,
    endpoint_url: str | None = None,
    api_key: str | None = None,
) -> MonitorSummary:
    """Everything the Monitor page shows: counts, mix drift, notifications, endpoint metrics, alerts."""
    now = now or datetime.now(UTC)
    decisions = load_decisions(settings)
    mix = mix_drift(decisions, window)
    per_team = per_action = per_policy = pl.DataFrame()
    if mix is not None:
        recent = decisions.filter(pl.col("decided_at") > mix.recent_start)
        per_team = _counts(recent, ["team"])
        per_action = _counts(recent, ["action"]) if "action" in recent.columns else pl.DataFrame()
        keys = [c for c in ("policy", "policy_version", "arm") if c in recent.columns]
        per_policy = _counts(recent, keys) if keys else pl.DataFrame()
    notes = notifications(settings, decisions, now)
    endpoint = None
    endpoint_error = None
    if endpoint_url:
        try:
            endpoint = endpoint_metrics(endpoint_url, api_key)
        except httpx.HTTPError as error:
            endpoint_error = f"could not read {endpoint_url}/metrics: {error}"
    first = decisions["decided_at"].min() if not decisions.is_empty() else None
    last = decisions["decided_at"].max() if not decisions.is_empty() else None
    summary = MonitorSummary(
        n_decisions=decisions.height,
        first=first if isinstance(first, datetime) else None,
        last=last if isinstance(last, datetime) else None,
        window=window,
        per_team=per_team,
        per_action=per_action,
        per_policy=per_policy,
        mix=mix,
        notifications=notes,
        endpoint=endpoint,
        endpoint_error=endpoint_error,
    )
    summary.alerts.extend(alerts(summary, now, settings))
    return summary


def _counts(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    total = max(frame.height, 1)
    return (
        frame.group_by(*keys)
        .len("decisions")
        .with_columns((pl.col("decisions") / total).alias("share"))
        .sort(["decisions", *keys], descending=[True, *([False] * len(keys))], nulls_last=True)
    )


def alerts(summary: MonitorSummary, now: datetime, settings: Settings | None = None) -> list[Alert]:
    """The ``ALERT_RULES`` applied to a summary (each alert names its threshold)."""
    out: list[Alert] = []
    mix = summary.mix
    enough = mix is not None and min(mix.n_recent, mix.n_previous) >= MIN_WINDOW_DECISIONS
    if mix is not None and enough and mix.psi is not None:
        if mix.psi >= PSI_ALERT:
            out.append(Alert("alert", "mix drift", f"destination mix PSI {mix.psi:.3f} ≥ {PSI_ALERT}"))
        elif mix.psi >= PSI_WARN:
            out.append(Alert("warning", "mix drift", f"destination mix PSI {mix.psi:.3f} ≥ {PSI_WARN}"))
    if mix is not None and enough and mix.p_value is not None and mix.p_value < CHI2_P:
        out.append(Alert("warning", "mix change", f"chi-square test of homogeneity p = {mix.p_value:.2g} < {CHI2_P}"))
    if summary.notifications.overdue:
        out.append(
            Alert(
                "alert",
                "notifications",
                f"{summary.notifications.overdue:,} owner notifications not delivered"
                f" {int(NOTIFY_GRACE.total_seconds() // 60)} minutes after the decision",
            )
        )
    if not summary.per_team.is_empty() and settings is not None:
        queue = _queue_share(summary.per_team, settings)
        if queue is not None and queue > QUEUE_SHARE_ALERT:
            out.append(
                Alert(
                    "warning", "queue", f"{queue:.0%} of recent decisions went to a queue (> {QUEUE_SHARE_ALERT:.0%})"
                )
            )
    if summary.last is not None and now - summary.last > summary.window:
        out.append(
            Alert(
                "warning",
                "traffic",
                f"no decision since {summary.last:%Y-%m-%d %H:%M} UTC (longer than the {_span(summary.window)} window)",
            )
        )
    e = summary.endpoint
    if e is not None:
        if e.p99_s is not None and e.p99_s > P99_ALERT_S:
            out.append(Alert("alert", "latency", f"p99 latency {e.p99_s * 1000:.0f} ms > {P99_ALERT_S * 1000:.0f} ms"))
        if e.requests and e.error_rate > ERROR_RATE_ALERT:
            out.append(
                Alert("alert", "errors", f"{e.error_rate:.1%} of requests answered 5xx (> {ERROR_RATE_ALERT:.0%})")
            )
        if e.notification_failures:
            out.append(
                Alert("warning", "notifications", f"{e.notification_failures:g} notification attempts failed (retried)")
            )
        for kind, count in sorted(e.stuck_leads.items()):
            if count:
                level = "alert" if kind == "past_sla" else "warning"
                out.append(Alert(level, "stuck leads", f"{count:,} leads {kind.replace('_', ' ')} (SLA timer)"))
    return out


def _queue_share(per_team: pl.DataFrame, settings: Settings) -> float | None:
    if not settings.warehouse_path.exists():
        return None
    from pipelines.warehouse import Warehouse

    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        queues = {str(r[0]) for r in con.execute("SELECT team FROM teams WHERE kind = ?", ["queue"]).fetchall()}
    if not queues:
        return None
    return float(per_team.filter(pl.col("team").is_in(list(queues)))["share"].sum())


def _span(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"
