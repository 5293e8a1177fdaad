"""``leadroute quality …``: lead data quality (matching, duplicates, enrichment, flags) on the workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadroute.cli import JsonOption, _emit_json, one_line_errors, progress, settings

quality_app = typer.Typer(
    help="Lead data quality: account matching, duplicates, enrichment, flags.", no_args_is_help=True
)


@quality_app.command("run")
@one_line_errors
def run_command(
    provider_url: Annotated[
        str | None, typer.Option("--provider-url", help="Base URL of an enrichment provider (optional).")
    ] = None,
    provider_name: Annotated[
        str, typer.Option("--provider-name", help="Name recorded as the values' source.")
    ] = "provider",
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.01, help="Seconds per provider lookup, retries included.")
    ] = 0.5,
    budget: Annotated[
        float, typer.Option("--budget", min=0.0, help="Seconds the provider may take for the whole run.")
    ] = 60.0,
    rate: Annotated[float, typer.Option("--rate", min=0.01, help="Provider requests per second at most.")] = 10.0,
    as_json: JsonOption = False,
) -> None:
    """Match, deduplicate, enrich and flag every lead in the warehouse; store the results in lead_quality.

    The provider's API key, if any, is read from LEADROUTE_ENRICHMENT_API_KEY (never printed).
    """
    import os

    from pipelines.enrichment import EnrichmentClient, ProviderConfig, WarehouseCache
    from pipelines.quality import run_quality
    from pipelines.warehouse import Warehouse

    warehouse = Warehouse(settings().ensure().warehouse_path)
    progress("checking lead quality …")
    if provider_url is None:
        result = run_quality(warehouse)
    else:
        config = ProviderConfig(
            base_url=provider_url,
            name=provider_name,
            api_key=os.environ.get("LEADROUTE_ENRICHMENT_API_KEY") or None,
            timeout_s=timeout,
            rate_per_s=rate,
        )
        with EnrichmentClient(config, WarehouseCache(warehouse, config.cache_ttl_days)) as client:
            result = run_quality(warehouse, provider=client, budget_s=budget)
    methods = ", ".join(f"{m} {n:,}" for m, n in sorted(result.methods.items()))
    typer.echo(f"leads: {result.leads:,} checked in {result.seconds:.1f} s; account match: {methods}")
    typer.echo(f"duplicates: {result.duplicates:,}; enriched values: {result.enriched_fields:,}"
               f"; provider failures: {result.provider_failures:,}")  # fmt: skip
    for flag, n in list(result.flags.items())[:10]:
        typer.echo(f"  {flag}: {n:,}")
    if as_json:
        _emit_json(result.to_json())


@quality_app.command("reference")
@one_line_errors
def reference_command(
    file: Annotated[
        Path, typer.Argument(help="CSV, Parquet or JSON lines with domain + firmographics.", show_default=False)
    ],
    source: Annotated[str, typer.Option("--source", help="Name recorded as the values' source.")] = "reference",
    as_json: JsonOption = False,
) -> None:
    """Load a firmographic reference table keyed by web domain (industry, employees, annual_revenue, country)."""
    from pipelines.enrichment import load_reference
    from pipelines.sources import read_source
    from pipelines.warehouse import Warehouse

    records = read_source(file).records
    if "domain" not in records.columns:
        raise ValueError(f"{file.name}: a 'domain' column is required")
    stored = load_reference(Warehouse(settings().ensure().warehouse_path), records, source=source)
    typer.echo(f"reference: {stored:,} domains stored from {file.name} (source '{source}')")
    if as_json:
        _emit_json({"stored": stored, "source": source})


def register(app: typer.Typer) -> None:
    """Attach ``quality`` to the main app."""
    app.add_typer(quality_app, name="quality")
