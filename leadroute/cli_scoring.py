"""``leadroute train``, ``retrain`` and ``schedule``: thin wiring to :mod:`pipelines.train`."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from leadroute.cli import JsonOption, _emit_json, _fail, one_line_errors, progress, settings

PromoteChoice = Literal["auto", "never", "always"]


def register(app: typer.Typer) -> None:
    """Add the scoring commands to the ``leadroute`` application."""
    app.command("train")(train)
    app.command("retrain")(retrain)
    app.command("schedule")(schedule)


@one_line_errors
def train(
    promote: Annotated[
        str,
        typer.Option(
            "--promote",
            help="auto: promote only a challenger that beats the champion on the holdout; never; always.",
        ),
    ] = "auto",
    as_json: JsonOption = False,
) -> None:
    """Train the lead score and fit model on matured history, log them to MLflow, register a version."""
    from pipelines.train import train as run_training

    if promote not in ("auto", "never", "always"):
        _fail(f"--promote: expected auto, never or always, got '{promote}'", 2)
    mode: PromoteChoice = "auto" if promote == "auto" else "never" if promote == "never" else "always"
    result = run_training(settings().ensure(), mode, progress=progress)
    for line in result.lines():
        typer.echo(line)
    if as_json:
        _emit_json(result.to_json())


@one_line_errors
def retrain(as_json: JsonOption = False) -> None:
    """One champion/challenger cycle: latest matured data → challenger → compare → promote if better."""
    from pipelines.train import retrain as run_cycle

    result = run_cycle(settings().ensure(), progress=progress)
    for line in result.lines():
        typer.echo(line)
    if as_json:
        _emit_json(result.to_json())


@one_line_errors
def schedule(
    cycles: Annotated[
        int | None, typer.Option("--cycles", min=1, help="Stop after this many cycles (default: run until stopped).")
    ] = None,
) -> None:
    """Run retraining cycles on the cron expression in leadroute.yaml (scoring.schedule, UTC)."""
    from pipelines.config import load_config
    from pipelines.schedule import CycleOutcome, SystemClock, next_fire_time, run_schedule
    from pipelines.train import TrainResult
    from pipelines.train import retrain as run_cycle

    ws = settings().ensure()
    cron = load_config(ws).scoring.schedule
    clock = SystemClock()
    progress(f"retraining on '{cron}' (UTC); next cycle at {next_fire_time(cron, clock.now()).isoformat()}")

    def report(outcome: CycleOutcome[TrainResult]) -> None:
        if outcome.error is not None:
            progress(f"cycle due {outcome.due.isoformat()} failed: {outcome.error}")
        elif outcome.result is not None:
            for line in outcome.result.lines():
                typer.echo(line)
        progress(f"next cycle at {next_fire_time(cron, clock.now()).isoformat()}")

    run_schedule(cron, lambda: run_cycle(ws, progress=progress), clock, cycles, report)
