"""The ``leadroute`` command line: thin wiring from arguments to pipeline stages.

Every command exits non-zero with a one-line cause on failure and, with ``--json``, prints one
JSON object as its last line. Progress goes to stderr so stdout stays machine-readable.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from leadroute import __version__
from models.canonical import ENTITY_NAMES, EntityName
from pipelines.settings import Settings

app = typer.Typer(
    name="leadroute",
    help="Analytics-driven lead routing: history in DuckDB, evidence-based policies, a routing endpoint.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")]


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"leadroute: error: {message}", err=True)
    raise typer.Exit(code)


def one_line_errors(command: F) -> F:
    """Turn every failure into one line on stderr and a non-zero exit (tracebacks with
    ``LEADROUTE_DEBUG=1``)."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if os.environ.get("LEADROUTE_DEBUG"):
                traceback.print_exc()
            known = type(exc).__module__.split(".")[0] in {"pipelines", "models", "leadroute"}
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
                known = True
            _fail(text if known else f"{type(exc).__name__}: {text}")

    return wrapper  # type: ignore[return-value]


def progress(message: str) -> None:
    typer.echo(message, err=True)


def settings() -> Settings:
    return Settings.from_env()


def _emit_json(payload: dict[str, object]) -> None:
    typer.echo(json.dumps(payload, default=str, sort_keys=False))


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


@app.command()
@one_line_errors
def ingest(
    entity: Annotated[str, typer.Argument(help=f"What the file holds: {', '.join(ENTITY_NAMES)}.", show_default=False)],
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON lines file.", show_default=False)],
    mapping: Annotated[
        Path | None, typer.Option("--mapping", "-m", help="YAML mapping file for a foreign export.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Load a file into the warehouse: idempotent by id; bad rows are kept with a reason."""
    from pipelines.ingest import ingest_file
    from pipelines.warehouse import Warehouse

    if entity not in ENTITY_NAMES:
        _fail(f"unknown entity '{entity}'; expected one of {', '.join(ENTITY_NAMES)}", 2)
    ws = settings().ensure()
    summary = ingest_file(Warehouse(ws.warehouse_path), _entity(entity), file, mapping, progress=progress)
    for line in _summary_lines(summary.to_json()):
        typer.echo(line)
    if as_json:
        _emit_json(summary.to_json())


def _entity(name: str) -> EntityName:
    for candidate in ENTITY_NAMES:
        if candidate == name:
            return candidate
    raise ValueError(name)


def _summary_lines(result: dict[str, Any]) -> list[str]:
    def counts(name: str, c: dict[str, Any]) -> str:
        return (
            f"{name}: read {c['read']:,}, loaded {c['loaded']:,}, updated {c['updated']:,}"
            f" (unchanged {c['unchanged']:,}), rejected {c['rejected']:,}"
        )

    lines = [counts(str(result["entity"]), result)]
    lines += [counts(name, c) for name, c in result["derived"].items()]
    for reason, n in list(result["reject_reasons"].items())[:8]:
        lines.append(f"  rejected {n:,} × {reason}")
    if result["reject_reasons"]:
        lines.append(
            f"  (every rejected row is kept with its reason: leadroute rejects --import {result['import_id']})"
        )
    return lines


@app.command()
@one_line_errors
def rejects(
    import_id: Annotated[int | None, typer.Option("--import", help="Only this import (default: the latest).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show rejected rows with their position, reason and raw values."""
    from pipelines.status import list_rejects
    from pipelines.warehouse import Warehouse

    ws = settings()
    chosen, rows = list_rejects(Warehouse(ws.warehouse_path), import_id, limit)
    if chosen is None:
        typer.echo("no imports yet")
    for row in rows:
        typer.echo(f"import {chosen} {row['entity']} row {row['row_number']}: {row['reason']}\n    raw: {row['raw']}")
    if as_json:
        _emit_json({"import_id": chosen, "rejects": rows})


@app.command()
@one_line_errors
def status(as_json: JsonOption = False) -> None:
    """What the workspace holds: tables, history window, conversion, imports."""
    from pipelines.status import workspace_status
    from pipelines.warehouse import Warehouse

    ws = settings()
    report = workspace_status(Warehouse(ws.warehouse_path), ws)
    for line in report.lines():
        typer.echo(line)
    if as_json:
        _emit_json(report.to_json())


@app.command()
@one_line_errors
def demo(
    leads: Annotated[int, typer.Option("--leads", min=100, max=5_000_000, help="How many leads to simulate.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated company.")] = 7,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if the workspace already has data.")] = False,
    skip_training: Annotated[bool, typer.Option("--skip-training", help="Import the history only.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Build the demo workspace from the built-in simulated company: import its history, register
    the shipped policies, train and register the scoring models, deploy the seed policy."""
    from pipelines.demo import build_demo

    ws = settings()
    result = build_demo(
        ws,
        n_leads=leads,
        seed=seed,
        force=force,
        train_models=not skip_training,
        register_policies=True,
        deploy_policy="seed",
        check_quality=True,
        progress=progress,
    )
    for line in result.lines():
        typer.echo(line)
    if as_json:
        _emit_json(result.to_json())


@app.command("app")
@one_line_errors
def run_app(
    host: Annotated[
        str, typer.Option(help="Address to bind (localhost by default: put a proxy with auth in front).")
    ] = ("127.0.0.1"),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8501,
) -> None:
    """Start the Streamlit workbench."""
    script = Path(__file__).resolve().parents[1] / "app.py"
    if not script.is_file():
        _fail(f"the workbench script is not at {script}: run leadroute from a source checkout (pip install -e .)")
    ws = settings()
    typer.echo(f"workbench: http://{host}:{port}  (workspace {ws.home}; Ctrl-C stops it)")
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.address", host, "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    sys.stdout.flush()
    os.chdir(script.parent)
    # Become the server (not its parent), so signals and exit codes reach Streamlit directly.
    os.execv(sys.executable, command)  # noqa: S606 (fixed argv, no shell)


# Command groups that live in their own modules register themselves here, one line each
# (each module defines `register(app: typer.Typer) -> None`).
# --- command modules ---
from leadroute import cli_policies  # noqa: E402

cli_policies.register(app)
from leadroute import cli_scoring  # noqa: E402

cli_scoring.register(app)
from leadroute import cli_quality  # noqa: E402

cli_quality.register(app)
from leadroute import cli_evaluate  # noqa: E402

cli_evaluate.register(app)
from leadroute import cli_serve  # noqa: E402

cli_serve.register(app)
from leadroute import cli_experiments  # noqa: E402

cli_experiments.register(app)
# --- end of command modules ---


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("leadroute: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
