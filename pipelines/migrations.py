"""The warehouse schema, as an ordered list of forward migrations.

A workspace records the versions applied in ``schema_migrations``; opening it applies the
missing ones in order, each in its own transaction, so a workspace built by an older release
opens in a newer one. Never edit a released migration: add the next one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


_AUDIT = "import_id BIGINT, updated_at TIMESTAMPTZ"

# The large history tables (leads, outcomes, decisions) have no PRIMARY KEY index: maintaining
# one costs more than the whole rest of a bulk import. Their keys stay unique by construction —
# every write goes through ``pipelines.ingest`` (deduplicate, delete changed keys, insert, in one
# transaction, one writer at a time) — and tests check uniqueness after overlapping imports.

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "history: teams, reps, leads, outcomes, decisions; import bookkeeping and rejects",
        (
            """CREATE TABLE teams (
                team VARCHAR PRIMARY KEY,
                kind VARCHAR NOT NULL DEFAULT 'sales',
                description VARCHAR,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )""",
            f"""CREATE TABLE reps (
                rep_id VARCHAR PRIMARY KEY,
                name VARCHAR NOT NULL,
                team VARCHAR NOT NULL,
                seniority VARCHAR,
                regions VARCHAR[],
                industries VARCHAR[],
                capacity_per_day BIGINT,
                weight DOUBLE,
                active BOOLEAN,
                extra JSON,
                {_AUDIT}
            )""",
            f"""CREATE TABLE leads (
                lead_id VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                email VARCHAR,
                company VARCHAR,
                account_id VARCHAR,
                industry VARCHAR,
                employees BIGINT,
                annual_revenue DOUBLE,
                country VARCHAR,
                region VARCHAR,
                source VARCHAR,
                title VARCHAR,
                seniority VARCHAR,
                product_interest VARCHAR,
                score DOUBLE,
                extra JSON,
                {_AUDIT}
            )""",
            f"""CREATE TABLE outcomes (
                event_id VARCHAR NOT NULL,
                lead_id VARCHAR NOT NULL,
                event VARCHAR NOT NULL,
                occurred_at TIMESTAMPTZ NOT NULL,
                value DOUBLE,
                extra JSON,
                {_AUDIT}
            )""",
            f"""CREATE TABLE decisions (
                decision_id VARCHAR NOT NULL,
                lead_id VARCHAR NOT NULL,
                decided_at TIMESTAMPTZ NOT NULL,
                team VARCHAR NOT NULL,
                rep_id VARCHAR,
                policy VARCHAR,
                propensity DOUBLE,
                extra JSON,
                {_AUDIT}
            )""",
            "CREATE SEQUENCE import_ids START 1",
            """CREATE TABLE imports (
                import_id BIGINT NOT NULL,
                entity VARCHAR NOT NULL,
                source_file VARCHAR NOT NULL,
                mapping VARCHAR,
                started_at TIMESTAMPTZ NOT NULL,
                finished_at TIMESTAMPTZ NOT NULL,
                read BIGINT NOT NULL,
                loaded BIGINT NOT NULL,
                updated BIGINT NOT NULL,
                rejected BIGINT NOT NULL,
                unchanged BIGINT NOT NULL,
                PRIMARY KEY (import_id, entity)
            )""",
            """CREATE TABLE rejects (
                import_id BIGINT NOT NULL,
                entity VARCHAR NOT NULL,
                row_number BIGINT,
                reason VARCHAR NOT NULL,
                raw VARCHAR
            )""",
        ),
    ),
    Migration(
        2,
        "accounts (firmographics and owners) and rep absences",
        (
            f"""CREATE TABLE accounts (
                account_id VARCHAR PRIMARY KEY,
                name VARCHAR NOT NULL,
                domain VARCHAR,
                owner_rep_id VARCHAR,
                industry VARCHAR,
                employees BIGINT,
                annual_revenue DOUBLE,
                country VARCHAR,
                extra JSON,
                {_AUDIT}
            )""",
            """CREATE TABLE rep_absences (
                rep_id VARCHAR NOT NULL,
                starts_on DATE NOT NULL,
                ends_on DATE NOT NULL,
                reason VARCHAR,
                PRIMARY KEY (rep_id, starts_on)
            )""",
        ),
    ),
    Migration(
        3,
        "policy lifecycle: decision provenance (version, experiment, arm, reasons), policies,"
        " deployments, experiments, workspace metadata",
        (
            "ALTER TABLE decisions ADD COLUMN action VARCHAR",
            "ALTER TABLE decisions ADD COLUMN policy_version BIGINT",
            "ALTER TABLE decisions ADD COLUMN experiment VARCHAR",
            "ALTER TABLE decisions ADD COLUMN arm VARCHAR",
            "ALTER TABLE decisions ADD COLUMN reasons VARCHAR",
            "ALTER TABLE decisions ADD COLUMN score DOUBLE",
            """CREATE TABLE policies (
                name VARCHAR NOT NULL,
                version BIGINT NOT NULL,
                content_hash VARCHAR NOT NULL,
                spec VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                created_by VARCHAR,
                PRIMARY KEY (name, version)
            )""",
            """CREATE TABLE deployments (
                deployment_id BIGINT PRIMARY KEY,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                arms JSON NOT NULL,
                status VARCHAR NOT NULL,
                actor VARCHAR,
                reason VARCHAR
            )""",
            """CREATE TABLE experiments (
                experiment_id VARCHAR PRIMARY KEY,
                started_at TIMESTAMPTZ NOT NULL,
                stopped_at TIMESTAMPTZ,
                status VARCHAR NOT NULL,
                config JSON NOT NULL,
                winner VARCHAR
            )""",
            """CREATE TABLE workspace_meta (
                key VARCHAR PRIMARY KEY,
                value JSON NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )""",
        ),
    ),
    Migration(
        4,
        "lead quality: account match, duplicates, flags and enrichment per lead; firmographic reference"
        " table; enrichment provider cache",
        (
            """CREATE TABLE lead_quality (
                lead_id VARCHAR PRIMARY KEY,
                checked_at TIMESTAMPTZ NOT NULL,
                matched_account_id VARCHAR,
                match_method VARCHAR NOT NULL,
                match_confidence DOUBLE NOT NULL,
                matched_owner_rep_id VARCHAR,
                match_reason VARCHAR,
                duplicate_of VARCHAR,
                duplicate_key VARCHAR,
                previous_rep_id VARCHAR,
                previous_team VARCHAR,
                days_since_previous DOUBLE,
                quality_flags VARCHAR[],
                completeness DOUBLE,
                industry VARCHAR,
                employees BIGINT,
                annual_revenue DOUBLE,
                country VARCHAR,
                enriched_from JSON,
                enrichment_note VARCHAR
            )""",
            """CREATE TABLE company_reference (
                domain VARCHAR PRIMARY KEY,
                industry VARCHAR,
                employees BIGINT,
                annual_revenue DOUBLE,
                country VARCHAR,
                source VARCHAR NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL
            )""",
            """CREATE TABLE enrichment_cache (
                provider VARCHAR NOT NULL,
                domain VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                payload JSON,
                fetched_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (provider, domain)
            )""",
        ),
    ),
    Migration(
        5,
        "offline evaluation runs: inputs, policy versions and results of each leadroute evaluate",
        (
            """CREATE TABLE evaluation_runs (
                run_id VARCHAR PRIMARY KEY,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                created_by VARCHAR,
                policies JSON NOT NULL,
                estimators JSON NOT NULL,
                inputs JSON NOT NULL,
                n_leads BIGINT NOT NULL,
                result JSON NOT NULL
            )""",
        ),
    ),
    Migration(
        6,
        "rollout and experiments: deployment kinds and pinned model versions, canary ramps, final experiment"
        " results, endpoint log load offsets",
        (
            "ALTER TABLE deployments ADD COLUMN kind VARCHAR",
            "ALTER TABLE deployments ADD COLUMN rollout_id BIGINT",
            "ALTER TABLE deployments ADD COLUMN model_version BIGINT",
            "ALTER TABLE experiments ADD COLUMN result JSON",
            """CREATE TABLE rollouts (
                rollout_id BIGINT PRIMARY KEY,
                policy VARCHAR NOT NULL,
                version BIGINT NOT NULL,
                baseline JSON NOT NULL,
                steps JSON NOT NULL,
                step BIGINT NOT NULL,
                status VARCHAR NOT NULL,
                guardrails JSON NOT NULL,
                started_at TIMESTAMPTZ NOT NULL,
                step_started_at TIMESTAMPTZ NOT NULL,
                ended_at TIMESTAMPTZ,
                actor VARCHAR,
                reason VARCHAR,
                verdict JSON
            )""",
            """CREATE TABLE endpoint_log_offsets (
                file VARCHAR PRIMARY KEY,
                bytes BIGINT NOT NULL,
                loaded_at TIMESTAMPTZ NOT NULL
            )""",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version
