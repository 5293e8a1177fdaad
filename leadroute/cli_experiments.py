"""``leadroute experiment``, ``rollback``, ``rollout`` and ``deployments``: thin wiring to
:mod:`pipelines.experiments`, :mod:`pipelines.deployments` and :mod:`pipelines.rollout`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from leadroute.cli import JsonOption, _emit_json, one_line_errors, progress, settings

GuardrailOption = Annotated[
    list[str] | None,
    typer.Option(
        "--guardrail",
        "-g",
        help="NAME=TOLERANCE (rep_overload, no_owner, fallback, speed_to_lead_hours, fairness_gini); repeat.",
        show_default=False,
    ),
]


def parse_guardrails(items: list[str] | None) -> dict[str, float] | None:
    """``["rep_overload=0.05", …]`` → tolerances over the defaults; None keeps the defaults."""
    from models.rollout import DEFAULT_GUARDRAILS

    if not items:
        return None
    tolerances = dict(DEFAULT_GUARDRAILS)
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--guardrail '{item}': write NAME=TOLERANCE")
        try:
            tolerances[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--guardrail '{item}': the tolerance must be a number") from None
    return tolerances


def _as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--as-of '{text}': not an ISO 8601 timestamp") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def register(app: typer.Typer) -> None:
    """Add ``experiment``, ``rollback``, ``rollout``, ``deployments`` and ``logs`` to the CLI."""
    experiment = typer.Typer(help="Online A/B experiments run by the endpoint.", no_args_is_help=True)
    app.add_typer(experiment, name="experiment")

    @experiment.command("start")
    @one_line_errors
    def start(
        name: Annotated[str, typer.Argument(help="A name for the experiment.", show_default=False)],
        policy: Annotated[
            list[str], typer.Option("--policy", "-p", help="NAME[@VERSION]; repeat (the first is the control).")
        ],
        share: Annotated[
            list[float] | None, typer.Option("--share", help="Traffic share per policy, in order (default: equal).")
        ] = None,
        horizon_days: Annotated[int, typer.Option(help="Conversion counted within N days of the decision.")] = 30,
        alpha: Annotated[float, typer.Option(help="Error rate of the intervals and the verdict.")] = 0.05,
        unit: Annotated[
            str, typer.Option(help="lead (split leads) or rep (also give each sales rep to one arm only).")
        ] = "lead",
        expected_leads: Annotated[
            int | None,
            typer.Option(help="Matured leads expected at the planned end: tunes the always-valid boundary."),
        ] = None,
        guardrail: GuardrailOption = None,
        predict: Annotated[bool, typer.Option(help="Estimate the lift offline before launch.")] = True,
        reason: Annotated[str | None, typer.Option(help="Why (kept with the experiment).")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Split endpoint traffic between policy versions (sticky by lead id), picked up without a restart."""
        from pipelines.experiments import start as start_experiment

        started = start_experiment(
            settings(), name, policy, shares=share, horizon_days=horizon_days, alpha=alpha,
            expected_leads=expected_leads, unit=unit, guardrails=parse_guardrails(guardrail), predict=predict,
            reason=reason, progress=progress,
        )  # fmt: skip
        arms = ", ".join(f"{a['arm']}={a['policy']}@{a['version']} {a['share']:.0%}" for a in started["arms"])
        typer.echo(f"experiment {name} started (deployment {started['deployment_id']}): {arms}")
        for label, lift in (started["prediction"].get("lift") or {}).items():
            typer.echo(f"  predicted lift of {label} (offline DR): {lift['value']:+.4f}"
                       f" [{lift['ci_low']:+.4f}, {lift['ci_high']:+.4f}]")  # fmt: skip
        if as_json:
            _emit_json(started)

    @experiment.command("report")
    @one_line_errors
    def report(
        name: Annotated[str, typer.Argument(help="The experiment.", show_default=False)],
        as_of: Annotated[str | None, typer.Option(help="Report as of this time (ISO 8601; default now).")] = None,
        cluster_by: Annotated[
            str | None, typer.Option(help="rep_id or team: cluster-robust intervals over assigned reps or teams.")
        ] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Lift with always-valid intervals (look any day), SRM, guardrails, Holm, the verdict."""
        from pipelines.experiments import report as experiment_report

        result = experiment_report(settings(), name, as_of=_as_of(as_of), cluster_by=cluster_by, progress=progress)
        for line in result.lines():
            typer.echo(line)
        if as_json:
            _emit_json(json.loads(json.dumps(result.to_json(), default=str)))

    @experiment.command("stop")
    @one_line_errors
    def stop(
        name: Annotated[str, typer.Argument(help="The experiment.", show_default=False)],
        winner: Annotated[
            str, typer.Option(help="'auto' (the report's verdict), an arm label, or 'none' (keep the control).")
        ] = "auto",
        deploy: Annotated[bool, typer.Option(help="Deploy the winner (or the control) to all traffic.")] = True,
        as_of: Annotated[str | None, typer.Option(help="Final read-out as of this time (default now).")] = None,
        reason: Annotated[str | None, typer.Option(help="Why (kept with the deployment).")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Stop an experiment: record the final read-out next to the offline prediction, deploy the winner."""
        from pipelines.experiments import stop as stop_experiment

        chosen = None if winner.lower() == "none" else winner
        result = stop_experiment(
            settings(), name, winner=chosen, deploy_winner=deploy, as_of=_as_of(as_of), reason=reason
        )
        typer.echo(f"experiment {name} stopped: {result['verdict']['message']}")
        predicted = (result.get("prediction") or {}).get("lift") or {}
        for label, realised in result["realised_lift"].items():
            guess = predicted.get(label)
            guess_text = f"; predicted offline {guess['value']:+.4f}" if guess else ""
            typer.echo(f"  arm {label}: realised lift {realised['lift']:+.4f}"
                       f" [{realised['ci_low']:+.4f}, {realised['ci_high']:+.4f}]{guess_text}")  # fmt: skip
        if result["deployed"]:
            d = result["deployed"]
            typer.echo(f"deployment {d['deployment_id']}: {d['policy']}@v{d['version']} takes all traffic")
        if as_json:
            _emit_json(result)

    @experiment.command("list")
    @one_line_errors
    def list_command(as_json: JsonOption = False) -> None:
        """Every experiment, newest first."""
        from pipelines.experiments import list_experiments

        frame = list_experiments(settings())
        if frame.height == 0:
            typer.echo("no experiments yet: leadroute experiment start NAME --policy A --policy B")
        for row in frame.iter_rows(named=True):
            winner = f", winner {row['winner']}" if row["winner"] else ""
            since = f"{row['started_at']:%Y-%m-%d}"
            typer.echo(f"{row['experiment']}: {row['status']} since {since} — {row['arms']}{winner}")
        if as_json:
            _emit_json({"experiments": json.loads(frame.write_json()) if frame.height else []})

    @app.command()
    @one_line_errors
    def rollback(
        reason: Annotated[str | None, typer.Option(help="Why (kept in the deployment history).")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Return to the previous deployment (a running canary's baseline) in one step."""
        from pipelines.deployments import rollback as roll_back

        back = roll_back(settings(), reason=reason)
        typer.echo(f"deployment {back.deployment_id}: rolled back to {back.policy}@v{back.version}")
        if as_json:
            _emit_json(back.to_json())

    @app.command()
    @one_line_errors
    def deployments(
        limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
        as_json: JsonOption = False,
    ) -> None:
        """The deployment history: who, when, what and why."""
        from pipelines.deployments import history

        frame = history(settings(), limit)
        if frame.height == 0:
            typer.echo("nothing deployed yet: leadroute deploy POLICY[@VERSION]")
        for row in frame.iter_rows(named=True):
            why = f" — {row['reason']}" if row["reason"] else ""
            typer.echo(
                f"{row['deployment_id']:>4} {row['created_at']:%Y-%m-%d %H:%M} {row['kind']:<10} {row['status']:<8}"
                f" {row['what']} (by {row['actor'] or 'unknown'}){why}"
            )
        if as_json:
            _emit_json({"deployments": json.loads(frame.write_json()) if frame.height else []})

    logs = typer.Typer(help="The endpoint's decision and outcome logs.", no_args_is_help=True)
    app.add_typer(logs, name="logs")

    @logs.command("load")
    @one_line_errors
    def load_logs(as_json: JsonOption = False) -> None:
        """Load new lines of the endpoint's logs into the warehouse (idempotent; reports and rollouts do it too)."""
        from pipelines.endpoint_logs import load_endpoint_logs

        loaded = load_endpoint_logs(settings()).to_json()
        typer.echo(f"{loaded['lines']:,} new log lines")
        for table in ("leads", "decisions", "outcomes"):
            c = loaded[table]
            typer.echo(f"  {table}: read {c['read']:,}, loaded {c['loaded']:,}, updated {c['updated']:,},"
                       f" rejected {c['rejected']:,}")  # fmt: skip
        if as_json:
            _emit_json(loaded)

    rollout = typer.Typer(help="Canary ramps started by leadroute deploy --canary.", no_args_is_help=True)
    app.add_typer(rollout, name="rollout")

    @rollout.command("advance")
    @one_line_errors
    def advance_command(as_json: JsonOption = False) -> None:
        """Look at the running canary once: hold, advance a step, or roll back on a breached guardrail."""
        from pipelines.rollout import advance

        status = advance(settings())
        typer.echo("no rollout is running" if status is None else status.line())
        if as_json:
            _emit_json({"rollout": None if status is None else status.to_json()})

    @rollout.command("status")
    @one_line_errors
    def status_command(as_json: JsonOption = False) -> None:
        """Every rollout, newest first, with its last verdict."""
        from pipelines.rollout import rollouts

        found = rollouts(settings())
        if not found:
            typer.echo("no rollouts yet: leadroute deploy POLICY --canary 5")
        for status in found:
            typer.echo(status.line())
        if as_json:
            _emit_json({"rollouts": [s.to_json() for s in found]})
