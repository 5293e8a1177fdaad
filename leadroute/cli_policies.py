"""``leadroute policy …`` and ``leadroute replay``: policy specs as files, versioned in the workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadroute.cli import JsonOption, _emit_json, one_line_errors, progress, settings

policy_app = typer.Typer(help="Policy specs: validate, register, list, show, diff.", no_args_is_help=True)

PolicyRef = Annotated[str, typer.Argument(help="A YAML file, a registered NAME or NAME@VERSION.", show_default=False)]


@policy_app.command("validate")
@one_line_errors
def validate_command(policy: PolicyRef, as_json: JsonOption = False) -> None:
    """Check a spec (against the workspace's teams, reps and lead fields when there is one)."""
    from pipelines.policies import resolve, validate

    ws = settings()
    source = resolve(ws, policy)
    report = validate(ws, source)
    for line in report.lines():
        typer.echo(line)
    typer.echo(f"{source.spec.name}: {'valid' if report.ok else 'invalid'} ({len(source.spec.rules)} rules)")
    if as_json:
        _emit_json(
            {
                "policy": source.spec.name,
                "valid": report.ok,
                "errors": list(report.errors),
                "warnings": list(report.warnings),
                "content_hash": source.content_hash,
            }
        )
    if not report.ok:
        raise typer.Exit(1)


@policy_app.command("register")
@one_line_errors
def register_command(
    file: Annotated[Path, typer.Argument(help="The policy YAML file.", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Store a new version (identical content returns the existing version)."""
    from pipelines.policies import read_file, register, validate

    ws = settings().ensure()
    source = read_file(file)
    report = validate(ws, source)
    if not report.ok:
        raise ValueError(f"{source.spec.name} does not validate: {report.errors[0]}")
    stored = register(ws, source)
    verb = "registered" if stored.created else "unchanged, already registered as"
    typer.echo(f"{stored.name}: {verb} v{stored.version} (hash {stored.content_hash})")
    if as_json:
        _emit_json(stored.to_json())


@policy_app.command("list")
@one_line_errors
def list_command(as_json: JsonOption = False) -> None:
    """Every registered policy version."""
    from pipelines.policies import list_policies

    frame = list_policies(settings())
    for name, version, digest, at, by in frame.iter_rows():
        typer.echo(f"{name}@v{version}  {digest}  {at:%Y-%m-%d %H:%M}  {by or ''}")
    if frame.height == 0:
        typer.echo("no policies registered yet")
    if as_json:
        _emit_json({"policies": [{**r, "created_at": r["created_at"].isoformat()} for r in frame.to_dicts()]})


@policy_app.command("show")
@one_line_errors
def show_command(policy: PolicyRef, as_json: JsonOption = False) -> None:
    """Print a spec and what its rules do, in words."""
    from models.policy import describe, describe_destination
    from pipelines.policies import resolve

    source = resolve(settings(), policy)
    spec = source.spec
    typer.echo(f"{spec.name}" + (f" v{source.version}" if source.version else "") + f" ({source.origin})")
    if spec.description:
        typer.echo(f"  {spec.description}")
    for i, rule in enumerate(spec.rules, 1):
        typer.echo(f"  {i}. {rule.name}: when {describe(rule.when)} → {describe_destination(rule.then)}")
    typer.echo(f"  otherwise → {describe_destination(spec.fallback)}")
    if as_json:
        _emit_json(
            {"policy": spec.name, "version": source.version, "content_hash": source.content_hash, "spec": source.raw}
        )


@policy_app.command("diff")
@one_line_errors
def diff_command(old: PolicyRef, new: PolicyRef, as_json: JsonOption = False) -> None:
    """What changed from OLD to NEW, in words."""
    from models.policy import diff_policies
    from pipelines.policies import resolve

    ws = settings()
    a, b = resolve(ws, old), resolve(ws, new)
    changes = diff_policies(a.spec, b.spec)
    for line in changes or ["no changes in how leads are routed"]:
        typer.echo(f"- {line}")
    if as_json:
        _emit_json({"old": a.origin, "new": b.origin, "changes": changes})


@one_line_errors
def replay_command(
    policy: Annotated[str, typer.Option("--policy", "-p", help="File, NAME or NAME@VERSION.", show_default=False)],
    window: Annotated[str | None, typer.Option("--window", help="START..END (ISO dates, inclusive).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write decisions (.parquet, else CSV).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random draw.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Run a policy over historical leads in time order; print operational metrics."""
    from pipelines.replay import parse_window, run_replay

    result = run_replay(settings(), policy, window=parse_window(window), out=out, seed=seed, progress=progress)
    for line in result.lines():
        typer.echo(line)
    if as_json:
        _emit_json(result.to_json())


def register(app: typer.Typer) -> None:
    """Attach ``policy`` and ``replay`` to the main app."""
    app.add_typer(policy_app, name="policy")
    app.command("replay")(replay_command)
