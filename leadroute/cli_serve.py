"""``leadroute serve`` (the routing endpoint on uvicorn) and ``leadroute deploy``."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from leadroute.cli import JsonOption, _emit_json, one_line_errors, settings


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the ``leadroute`` CLI."""

    @app.command()
    @one_line_errors
    def deploy(
        policy: Annotated[str, typer.Argument(help="POLICY or POLICY@VERSION (registered).", show_default=False)],
        canary: Annotated[
            float | None, typer.Option(help="Start a canary ramp at PCT percent of traffic instead of all at once.")
        ] = None,
        steps: Annotated[str, typer.Option(help="Ramp steps in percent (with --canary).")] = "5,25,50,100",
        guardrail: Annotated[
            list[str] | None,
            typer.Option("--guardrail", "-g", help="NAME=TOLERANCE for the canary's guardrails; repeat."),
        ] = None,
        min_decisions: Annotated[int, typer.Option(help="Canary decisions per ramp step.")] = 200,
        min_step_minutes: Annotated[float, typer.Option(help="Minutes a ramp step lasts at least.")] = 0.0,
        reason: Annotated[str | None, typer.Option(help="Why (kept with the deployment).")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Send endpoint traffic to a registered policy version: all at once, or as a canary ramp with guardrails."""
        from leadroute.cli_experiments import parse_guardrails
        from pipelines.deployments import deploy as write_deployment

        deployed = write_deployment(
            settings(), policy, canary_pct=canary, steps=steps, guardrails=parse_guardrails(guardrail),
            min_decisions=min_decisions, min_step_minutes=min_step_minutes, reason=reason,
        )  # fmt: skip
        if deployed.kind == "canary":
            typer.echo(
                f"deployment {deployed.deployment_id}: canary of {deployed.policy}@v{deployed.version} at"
                f" {deployed.share:.0%} (rollout {deployed.rollout_id}; the endpoint advances it while guardrails hold)"
            )
        else:
            typer.echo(f"deployment {deployed.deployment_id}: {deployed.policy}@v{deployed.version} takes all traffic")
        if as_json:
            _emit_json(deployed.to_json())

    @app.command()
    @one_line_errors
    def serve(
        host: Annotated[str, typer.Option(help="Address to bind (localhost by default).")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=0, max=65535, help="Port to serve on.")] = 8000,
        no_model: Annotated[
            bool, typer.Option("--no-model", help="Rules read the lead's own score, even if a model is registered.")
        ] = False,
        reload_interval: Annotated[
            float,
            typer.Option(
                min=0.0, help="Seconds between checks of the live deployment (0: only POST /v1/admin/reload)."
            ),
        ] = 2.0,
        rollout_interval: Annotated[
            float,
            typer.Option(
                min=0.0,
                envvar="LEADROUTE_ROLLOUT_INTERVAL_S",
                help="Seconds between looks at a running canary (0: only leadroute rollout advance).",
            ),
        ] = 30.0,
        sla_interval: Annotated[
            float, typer.Option(min=0.0, help="Seconds between SLA timer ticks (0: no SLA timer).")
        ] = 15.0,
        notify_format: Annotated[
            str | None,
            typer.Option(
                help="Owner notifications: json, slack or teams (default: LEADROUTE_NOTIFY_FORMAT, else json).",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        """Start the routing endpoint (POST /v1/route, OpenAPI at /docs)."""
        import uvicorn

        from leadroute.serving import create_app, load_keys
        from leadroute.serving.crm import load_webhook_config
        from leadroute.serving.keys import load_admin_keys
        from leadroute.serving.notify import NOTIFY_FORMATS

        wanted = (notify_format or os.environ.get("LEADROUTE_NOTIFY_FORMAT") or "json").strip().lower()
        fmt = next((f for f in NOTIFY_FORMATS if f == wanted), None)
        if fmt is None:
            raise typer.BadParameter(f"the notification format must be one of {', '.join(NOTIFY_FORMATS)}")
        ws = settings().ensure()
        keys, admin_keys = load_keys(ws.home), load_admin_keys(ws.home)
        # Paths only: a key or secret never reaches a terminal or a log.
        for label, ring, var in (
            ("API keys", keys, "LEADROUTE_API_KEYS"),
            ("admin keys", admin_keys, "LEADROUTE_ADMIN_KEYS"),
        ):
            where = f"the {var} environment variable" if ring.source == "env" else f"the key file {ring.source}"
            typer.echo(f"{label}: from {where}", err=True)
        webhooks = load_webhook_config(ws.home)
        hubspot = "on (signature v3)" if webhooks.hubspot_secret else "off (no LEADROUTE_HUBSPOT_SECRET)"
        org = "any organisation" if webhooks.salesforce_org_id is None else "one organisation"
        typer.echo(f"HubSpot webhook: {hubspot}; Salesforce webhook: API key, {org}", err=True)
        notify_url = os.environ.get("LEADROUTE_NOTIFY_URL") or None
        api = create_app(
            ws,
            keys=keys,
            admin_keys=admin_keys,
            webhooks=webhooks,
            use_model=not no_model,
            reload_interval_s=reload_interval,
            rollout_interval_s=rollout_interval,
            sla_interval_s=sla_interval,
            notify_url=notify_url,
            notify_format=fmt,
        )
        rebuilt = api.state.rebuilt
        typer.echo(
            f"routing state rebuilt from {rebuilt.replayed:,} logged decisions"
            f" ({rebuilt.matched:,} reproduced, {rebuilt.skipped:,} skipped)",
            err=True,
        )
        typer.echo(f"endpoint: http://{host}:{port}  (docs at /docs; workspace {ws.home}; Ctrl-C stops it)", err=True)
        # Other threads (batch workers, the fsync and SLA threads, the outbox) hand the GIL to the
        # event loop after 0.5 ms instead of Python's default 5 ms, so a lead arriving while a
        # batch is routed waits less for it. Throughput was the same within noise at 0.5, 2 and
        # 5 ms (interleaved runs of benchmarks/endpoint.py's route and batch loads).
        sys.setswitchinterval(0.0005)
        uvicorn.run(api, host=host, port=port, access_log=False, log_level="warning")
