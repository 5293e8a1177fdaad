"""The lead-quality stage: match, deduplicate, enrich and flag leads, then store the findings.

:func:`assess_leads` is the one semantics for a batch and (via :func:`assess_lead`) for one lead:
account match → duplicates → fill missing firmographics (lead > matched account > reference
table > provider) → quality flags on the lead as it will be routed. What it needs from the
warehouse is loaded once into a :class:`QualityContext`, so the endpoint can keep one in memory
and never hold the warehouse. :func:`run_quality` is the warehouse-facing batch stage that
writes ``lead_quality``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl

from models.quality.duplicates import DuplicateConfig, DuplicateMatch, find_duplicates
from models.quality.enrich import ENRICHABLE, OFFER_SCHEMA, fill_missing
from models.quality.flags import FLAGS, QualityReport, quality_flags
from models.quality.matching import MAX_LEADS, AccountIndex, AccountMatch, MatchConfig
from models.quality.normalise import email_domain, is_free_mail
from pipelines.enrichment import EnrichmentClient
from pipelines.warehouse import Warehouse, query_frame

STORED_COLUMNS = (
    "lead_id", "matched_account_id", "match_method", "match_confidence", "matched_owner_rep_id", "match_reason",
    "duplicate_of", "duplicate_key", "previous_rep_id", "previous_team", "days_since_previous", "quality_flags",
    "completeness", *ENRICHABLE, "enriched_from", "enrichment_note",
)  # fmt: skip
"""The ``lead_quality`` columns :func:`assess_leads` produces (besides ``checked_at``)."""

_LEAD_SQL = """SELECT lead_id, created_at, email, company, account_id, industry, employees, annual_revenue,
       country, title, extra->>'$.phone' AS phone, extra->>'$.name' AS name,
       extra->>'$.first_name' AS first_name, extra->>'$.last_name' AS last_name
FROM leads"""


@dataclass(frozen=True)
class QualityContext:
    """Everything checking a lead needs from the warehouse (plain data, no connection)."""

    accounts: AccountIndex
    account_firmographics: pl.DataFrame
    """``account_id`` plus the enrichable fields."""
    reference: pl.DataFrame
    """``company_reference``: ``domain``, the enrichable fields, ``source``."""
    history: pl.DataFrame
    """Earlier leads (duplicate keys' fields) with the ``rep_id``/``team`` that routed them."""
    duplicates: DuplicateConfig = field(default_factory=DuplicateConfig)


@dataclass(frozen=True)
class EnrichedValue:
    value: object
    source: str


@dataclass(frozen=True)
class LeadQuality:
    """One lead's findings, typed (the endpoint's view of one :func:`assess_leads` row)."""

    match: AccountMatch
    duplicate: DuplicateMatch
    report: QualityReport
    enriched: Mapping[str, EnrichedValue]
    note: str


@dataclass(frozen=True)
class QualityRun:
    """What :func:`run_quality` did."""

    leads: int
    methods: dict[str, int]
    duplicates: int
    enriched_fields: int
    provider_failures: int
    flags: dict[str, int]
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {**self.__dict__, "seconds": round(self.seconds, 3)}


def load_context(
    warehouse: Warehouse,
    *,
    history_since: datetime | None = None,
    match: MatchConfig | None = None,
    duplicates: DuplicateConfig | None = None,
) -> QualityContext:
    """Read accounts, the reference table and recent history (with the owners of its routing)."""
    dup = duplicates or DuplicateConfig()
    since = history_since or datetime.now(UTC) - timedelta(days=dup.window_days)
    with warehouse.connect() as con:
        accounts = query_frame(
            con,
            "SELECT account_id, name, domain, country, owner_rep_id, industry, employees, annual_revenue FROM accounts",
        )
        reference = query_frame(
            con, "SELECT domain, industry, employees, annual_revenue, country, source FROM company_reference"
        )
        history = query_frame(
            con,
            f"""WITH owner AS (
                    SELECT lead_id, arg_max(rep_id, decided_at) AS rep_id, arg_max(team, decided_at) AS team
                    FROM decisions GROUP BY lead_id)
                SELECT l.*, o.rep_id, o.team FROM ({_LEAD_SQL}) l LEFT JOIN owner o USING (lead_id)
                WHERE l.created_at >= ?""",
            [since],
        )
    return QualityContext(
        accounts=AccountIndex(accounts, match),
        account_firmographics=accounts.select("account_id", *ENRICHABLE),
        reference=reference,
        history=history,
        duplicates=dup,
    )


def assess_leads(
    leads: pl.DataFrame,
    context: QualityContext,
    *,
    provider: EnrichmentClient | None = None,
    budget_s: float | None = None,
    now: datetime | None = None,
) -> pl.DataFrame:
    """One row per lead (same order) with the :data:`STORED_COLUMNS`.

    Args:
        leads: canonical lead columns (``lead_id`` and ``created_at`` required); ``phone`` and
            ``name``/``first_name``/``last_name`` are used for duplicates when present.
        provider: optional external enrichment, asked only for leads still missing a field,
            within ``budget_s`` for the whole batch (default: the provider's per-lead timeout).
        now: UTC time for the future-timestamp flag.
    """
    if leads.height > MAX_LEADS:
        raise ValueError(f"leads: {leads.height:,} rows exceed the limit of {MAX_LEADS:,}")
    matched = context.accounts.match(leads)
    deduped = find_duplicates(matched, context.history, context.duplicates)
    offers, notes = _offers(deduped, context, provider, budget_s)
    enriched = fill_missing(deduped, offers)
    flagged = quality_flags(enriched, now=now)
    return flagged.with_columns(notes.alias("enrichment_note")).select(STORED_COLUMNS)


def assess_lead(
    lead: Mapping[str, object],
    context: QualityContext,
    *,
    provider: EnrichmentClient | None = None,
    now: datetime | None = None,
) -> LeadQuality:
    """:func:`assess_leads` for one lead (``created_at`` a timezone-aware datetime)."""
    created = lead.get("created_at")
    if not isinstance(created, datetime):
        raise TypeError("created_at: a datetime is needed")
    names = sorted(
        {"lead_id", "email", "company", "account_id", "country", "industry", "title", *lead} - {"created_at"}
    )
    frame = pl.DataFrame({n: [lead.get(n)] for n in names}, strict=False).with_columns(
        pl.lit(created).dt.convert_time_zone("UTC").alias("created_at")
    )
    row = assess_leads(frame, context, provider=provider, now=now).row(0, named=True)
    sources: dict[str, str] = json.loads(row["enriched_from"])
    return LeadQuality(
        match=AccountMatch(
            row["matched_account_id"],
            row["match_method"],
            row["match_confidence"],
            row["matched_owner_rep_id"],
            row["match_reason"],
        ),
        duplicate=DuplicateMatch(
            row["duplicate_of"],
            row["duplicate_key"],
            row["previous_rep_id"],
            row["previous_team"],
            row["days_since_previous"],
        ),
        report=QualityReport(tuple(row["quality_flags"]), row["completeness"]),
        enriched={name: EnrichedValue(row[name], source) for name, source in sources.items()},
        note=row["enrichment_note"],
    )


def _offers(
    leads: pl.DataFrame, context: QualityContext, provider: EnrichmentClient | None, budget_s: float | None
) -> tuple[pl.DataFrame, pl.Series]:
    """Enrichment offers per lead (account, reference, provider) and a note per lead."""
    email = pl.col("email").cast(pl.String) if "email" in leads.columns else pl.lit(None, pl.String())
    frame = leads.with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"),
        email_domain(email).alias("_domain"),
    ).with_columns(pl.when(~is_free_mail(pl.col("_domain"))).then(pl.col("_domain")).alias("_domain"))
    account = frame.select("_row", pl.col("matched_account_id").alias("account_id")).join(
        context.account_firmographics, on="account_id"
    )
    parts = [
        account.select(
            "_row", pl.format("account:{}", "account_id").alias("source"), pl.lit(0).alias("priority"), *ENRICHABLE
        ),
        frame.select("_row", "_domain")
        .join(context.reference, left_on="_domain", right_on="domain")
        .select("_row", pl.format("reference:{}", "source").alias("source"), pl.lit(1).alias("priority"), *ENRICHABLE),
    ]
    notes = pl.Series("enrichment_note", [None] * leads.height, dtype=pl.String)
    if provider is not None:
        known = fill_missing(leads, pl.concat(parts, how="vertical_relaxed"))
        needs = frame.filter(
            pl.col("_domain").is_not_null() & pl.any_horizontal([known[f].is_null() for f in ENRICHABLE])
        ).select("_row", "_domain")
        if needs.height:
            answers = provider.lookup_many(needs["_domain"].to_list(), budget_s=budget_s)
            name = provider.config.name
            found = [(r, a) for r, d in needs.iter_rows() if (a := answers[d]).status == "found"]
            parts.append(
                pl.DataFrame(
                    [{"_row": r, "source": f"provider:{name}", "priority": 2, **a.values} for r, a in found],
                    schema=OFFER_SCHEMA,
                )
            )
            text = {r: _note(name, d, answers[d].status, answers[d].reason) for r, d in needs.iter_rows()}
            notes = pl.Series("enrichment_note", [text.get(i) for i in range(leads.height)], dtype=pl.String)
    return pl.concat(parts, how="vertical_relaxed"), notes


def _note(provider: str, domain: str, status: str, reason: str) -> str:
    if status == "failed":
        return f"enrichment from {provider} unavailable for {domain}: {reason}; routed with the data known"
    if status == "not_found":
        return f"{provider} does not know {domain}"
    return f"{provider} answered for {domain}"


def run_quality(
    warehouse: Warehouse,
    *,
    lead_ids: list[str] | None = None,
    provider: EnrichmentClient | None = None,
    budget_s: float = 60.0,
    now: datetime | None = None,
) -> QualityRun:
    """Assess the warehouse's leads (all, or ``lead_ids``) and upsert ``lead_quality``."""
    started = time.perf_counter()
    with warehouse.connect() as con:
        if lead_ids is None:
            leads = query_frame(con, _LEAD_SQL + " ORDER BY created_at, lead_id LIMIT ?", [MAX_LEADS])
        else:
            if len(lead_ids) > MAX_LEADS:
                raise ValueError(f"lead_ids: {len(lead_ids):,} exceed the limit of {MAX_LEADS:,}; run in parts")
            wanted = pl.DataFrame({"lead_id": lead_ids}, schema={"lead_id": pl.String()})
            con.register("wanted_leads", wanted.to_arrow())
            try:
                leads = query_frame(con, _LEAD_SQL + " WHERE lead_id IN (SELECT lead_id FROM wanted_leads)")
            finally:
                con.unregister("wanted_leads")
    earliest = leads["created_at"].min() if leads.height else None
    window = DuplicateConfig().window_days
    since = earliest - timedelta(days=window) if isinstance(earliest, datetime) else None
    context = load_context(warehouse, history_since=since)
    result = assess_leads(leads, context, provider=provider, budget_s=budget_s, now=now or datetime.now(UTC))
    with warehouse.connect() as con:
        con.register("staged_quality", result.to_arrow())
        try:
            con.begin()
            con.execute("DELETE FROM lead_quality WHERE lead_id IN (SELECT lead_id FROM staged_quality)")
            columns = ", ".join(STORED_COLUMNS)
            con.execute(f"INSERT INTO lead_quality ({columns}, checked_at) SELECT {columns}, now() FROM staged_quality")
            con.commit()
        finally:
            con.unregister("staged_quality")
    flags = result.select(pl.col("quality_flags").explode().drop_nulls().value_counts(sort=True)).unnest(
        "quality_flags"
    )
    return QualityRun(
        leads=result.height,
        methods=dict(result["match_method"].value_counts().iter_rows()),
        duplicates=int(result["duplicate_of"].is_not_null().sum()),
        enriched_fields=int(result["enriched_from"].str.count_matches(r'"[a-z_]+":"').sum() or 0),
        provider_failures=int(result["enrichment_note"].str.contains("unavailable").fill_null(False).sum()),
        flags={str(k): int(v) for k, v in flags.iter_rows()},
        seconds=time.perf_counter() - started,
    )


_PERIODS = {"day": "1d", "week": "1w", "month": "1mo"}


def quality_trend(warehouse: Warehouse, *, every: str = "week") -> pl.DataFrame:
    """The data-quality trend for the app's Data page and the KPI notebook: per period of lead
    creation, ``leads``, mean ``completeness``, the share ``matched`` to an account, the share
    ``duplicates`` and, per flag, the share of leads carrying it (``flag_<name>``)."""
    if every not in _PERIODS:
        raise ValueError(f"every: expected one of {', '.join(_PERIODS)}, got '{every}'")
    with warehouse.connect() as con:
        rows = query_frame(
            con,
            """SELECT l.created_at, q.quality_flags, q.completeness, q.matched_account_id, q.duplicate_of
               FROM lead_quality q JOIN leads l USING (lead_id)""",
        )
    return (
        rows.group_by(pl.col("created_at").dt.truncate(_PERIODS[every]).alias("period"))
        .agg(
            pl.len().alias("leads"),
            pl.col("completeness").mean().round(4).alias("completeness"),
            pl.col("matched_account_id").is_not_null().mean().round(4).alias("matched"),
            pl.col("duplicate_of").is_not_null().mean().round(4).alias("duplicates"),
            *[pl.col("quality_flags").list.contains(f).mean().round(4).alias(f"flag_{f}") for f in FLAGS],
        )
        .sort("period")
    )
