"""``leadroute serve`` (the routing endpoint on uvicorn) and ``leadroute deploy``."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from leadroute.cli import JsonOption, _emit_json, one_line_errors, settings


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the ``leadroute`` CLI."""

    @app.command()
    @one_line_errors
    def deploy(
        policy: Annotated[str, typer.Argument(help="POLICY or POLICY@VERSION (registered).", show_default=False)],
        reason: Annotated[str | None, typer.Option(help="Why (kept with the deployment).")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Send all endpoint traffic to one registered policy version (picked up without a restart)."""
        from pipelines.deployments import deploy as write_deployment

        deployed = write_deployment(settings(), policy, reason=reason)
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
    ) -> None:
        """Start the routing endpoint (POST /v1/route, OpenAPI at /docs)."""
        import uvicorn

        from leadroute.serving import create_app, load_keys
        from leadroute.serving.notify import NotifyFormat

        ws = settings().ensure()
        keys = load_keys(ws.home)
        # The path only: the key itself never reaches a terminal or a log.
        where = "the LEADROUTE_API_KEYS environment variable" if keys.source == "env" else f"the key file {keys.source}"
        typer.echo(f"API keys: from {where}", err=True)
        notify_url = os.environ.get("LEADROUTE_NOTIFY_URL") or None
        notify_format: NotifyFormat = "slack" if os.environ.get("LEADROUTE_NOTIFY_FORMAT") == "slack" else "json"
        api = create_app(ws, keys=keys, use_model=not no_model, notify_url=notify_url, notify_format=notify_format)
        rebuilt = api.state.rebuilt
        typer.echo(
            f"routing state rebuilt from {rebuilt.replayed:,} logged decisions"
            f" ({rebuilt.matched:,} reproduced, {rebuilt.skipped:,} skipped)",
            err=True,
        )
        typer.echo(f"endpoint: http://{host}:{port}  (docs at /docs; workspace {ws.home}; Ctrl-C stops it)", err=True)
        uvicorn.run(api, host=host, port=port, access_log=False, log_level="warning")
