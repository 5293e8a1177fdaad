"""``leadroute evaluate``: offline comparison of routing policies (thin wiring to :mod:`pipelines.evaluate`)."""

from __future__ import annotations

from typing import Annotated

import typer

from leadroute.cli import JsonOption, _emit_json, _fail, one_line_errors, progress, settings


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` to the ``leadroute`` application."""
    app.command("evaluate")(evaluate_command)


@one_line_errors
def evaluate_command(
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy", "-p", help="File, NAME or NAME@VERSION; repeat (the first is the baseline).", show_default=False
        ),
    ] = None,
    window: Annotated[str | None, typer.Option("--window", help="START..END (ISO dates, inclusive).")] = None,
    estimator: Annotated[
        list[str] | None,
        typer.Option("--estimator", "-e", help="dm, ips, snips, dr, sndr, clipped_dr; repeat (default: all)."),
    ] = None,
    folds: Annotated[int, typer.Option("--folds", help="Cross-fitting folds of the reward model.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random draw.")] = 0,
    list_runs: Annotated[bool, typer.Option("--list", help="List stored evaluation runs instead.")] = False,
    show: Annotated[str | None, typer.Option("--show", help="Reopen a stored run by its id.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Compare routing policies on matured history: replay with capacity + off-policy estimates with 95% intervals."""
    from models.ope import ESTIMATOR_NAMES
    from pipelines.evaluate import evaluate, load_run
    from pipelines.evaluate import list_runs as stored_runs
    from pipelines.replay import parse_window

    ws = settings()
    if list_runs:
        runs = stored_runs(ws)
        for row in runs.iter_rows(named=True):
            typer.echo(
                f"{row['run_id']}  {row['created_at']:%Y-%m-%d %H:%M}  {row['n_leads']:>9,} leads  {row['policies']}"
            )
        if as_json:
            _emit_json({"runs": runs.with_columns(runs["created_at"].cast(str)).to_dicts()})
        return
    if show is not None:
        result = load_run(ws, show)
        typer.echo(f"evaluation {result['run_id']} ({result['created_at']}): {result['n_leads']:,} matured leads")
        for p in result["policies"]:
            shown = {k: v["value"] for k, v in p["estimates"].items()}
            typer.echo(
                f"  {p['policy']}: "
                + ", ".join(f"{k} {v:.2%}" if v is not None else f"{k} n/a" for k, v in shown.items())
            )
        if as_json:
            _emit_json(result)
        return
    if not policy:
        _fail("--policy: name at least one policy (e.g. --policy seed --policy best_fit)", 2)
    chosen = estimator or list(ESTIMATOR_NAMES)
    run = evaluate(
        ws.ensure(),
        policy or [],
        window=parse_window(window),
        estimators=chosen,
        folds=folds,
        seed=seed,
        progress=progress,
    )
    for line in run.lines():
        typer.echo(line)
    if as_json:
        _emit_json(run.to_json())
