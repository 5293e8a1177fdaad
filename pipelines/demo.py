"""Build the demo workspace from the simulated company, through the same import path a user's
files take (so the demo also shows messy rows being rejected with reasons)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from models.canonical import EntityName
from models.simulation import SimulationConfig, export_files, simulate_company
from pipelines.ingest import IngestSummary, ingest_file
from pipelines.settings import Settings
from pipelines.status import WorkspaceStatus, workspace_status
from pipelines.warehouse import Warehouse, scalar

# Order matters: decisions and outcomes reference leads and reps.
IMPORT_ORDER: tuple[EntityName, ...] = ("reps", "accounts", "leads", "decisions", "outcomes")


class WorkspaceNotEmptyError(RuntimeError):
    """The workspace already holds data and ``force`` was not given."""


@dataclass(frozen=True)
class DemoResult:
    config: SimulationConfig
    imports: dict[str, IngestSummary]
    status: WorkspaceStatus
    extra_lines: tuple[str, ...] = ()
    extra_json: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"demo company simulated: seed {self.config.seed}, {self.config.n_leads:,} leads"]
        for entity, summary in self.imports.items():
            c = summary.counts
            out.append(f"  imported {entity}: loaded {c.loaded:,}, updated {c.updated:,}, rejected {c.rejected:,}")
        return out + list(self.extra_lines) + self.status.lines()

    def to_json(self) -> dict[str, Any]:
        return {
            "simulation": _config_json(self.config),
            "imports": {entity: s.to_json() for entity, s in self.imports.items()},
            "status": self.status.to_json(),
            **self.extra_json,
        }


def build_demo(
    settings: Settings,
    *,
    n_leads: int = 20_000,
    seed: int = 7,
    force: bool = False,
    train_models: bool = False,
    register_policies: bool = False,
    deploy_policy: str | None = None,
    check_quality: bool = False,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Simulate the company, export its files (with some messy rows) and import them; then,
    if asked (the ``leadroute demo`` command asks for both), train and register the scoring
    models and register the shipped policies; ``deploy_policy`` (a registered name) then takes all
    endpoint traffic."""
    say = progress or (lambda _message: None)
    warehouse = Warehouse(settings.warehouse_path)
    if warehouse.path.exists():
        if not force:
            with warehouse.connect() as con:
                has_leads = bool(scalar(con, "SELECT count(*) FROM leads"))
            if has_leads:
                raise WorkspaceNotEmptyError(
                    f"the workspace {settings.home} already has data; pass --force to rebuild it"
                )
        for path in (warehouse.path, warehouse.path.with_name(warehouse.path.name + ".wal")):
            path.unlink(missing_ok=True)
    settings.ensure()
    config = SimulationConfig(n_leads=n_leads, seed=seed)
    say(f"simulating the demo company ({n_leads:,} leads, seed {seed}) …")
    company = simulate_company(config)
    folder = settings.imports_dir / "demo"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    files = export_files(company)
    paths: dict[EntityName, Path] = {}
    for entity in IMPORT_ORDER:
        paths[entity] = folder / f"{entity}.csv"
        files[entity].write_csv(paths[entity])

    with warehouse.connect() as con:
        con.begin()
        con.register("sim_teams", company.teams.select("team", "kind", "description").to_arrow())
        con.execute("INSERT INTO teams (team, kind, description) SELECT team, kind, description FROM sim_teams")
        con.register("sim_absences", company.absences.select("rep_id", "starts_on", "ends_on", "reason").to_arrow())
        con.execute("INSERT INTO rep_absences SELECT rep_id, starts_on, ends_on, reason FROM sim_absences")
        con.execute(
            "INSERT INTO workspace_meta (key, value) VALUES ('simulation', ?)",
            [json.dumps(_config_json(config))],
        )
        con.commit()

    imports: dict[str, IngestSummary] = {}
    for entity in IMPORT_ORDER:
        imports[entity] = ingest_file(warehouse, entity, paths[entity], progress=say)
    extra_lines: list[str] = []
    extra_json: dict[str, Any] = {}
    if check_quality:
        from pipelines.quality import run_quality

        say("checking lead quality (account matching, duplicates, flags) …")
        quality = run_quality(warehouse)
        extra_lines.append(
            f"lead quality: {quality.leads:,} leads checked, {quality.duplicates:,} duplicates, "
            f"account matches {quality.methods}"
        )
        extra_json["quality"] = quality.to_json()
    if register_policies:
        from pipelines.demo_policies import register_demo_policies  # policies import this module

        stored = register_demo_policies(settings, progress=say)
        extra_lines.append("policies: " + ", ".join(f"{p.name}@v{p.version}" for p in stored))
        extra_json["policies"] = [f"{p.name}@{p.version}" for p in stored]
    if deploy_policy is not None:
        from pipelines.deployments import deploy, live_deployment

        if live_deployment(settings) is None:  # a rebuilt demo keeps what an analyst deployed
            deployed = deploy(settings, deploy_policy, actor="leadroute demo", reason="the demo's starting policy")
            extra_lines.append(f"deployed: {deployed.policy}@v{deployed.version} takes all endpoint traffic")
            extra_json["deployed"] = deployed.to_json()
    if train_models:
        from pipelines.demo_models import train_demo_models  # imports MLflow (~2 s): only when asked

        say("training the scoring models …")
        trained = train_demo_models(settings, progress=say)
        extra_lines += trained.lines()
        extra_json["train"] = trained.to_json()
    return DemoResult(
        config=config,
        imports=imports,
        status=workspace_status(warehouse, settings),
        extra_lines=tuple(extra_lines),
        extra_json=extra_json,
    )


def simulation_config(warehouse: Warehouse) -> SimulationConfig | None:
    """The configuration the workspace's demo company was simulated with, if it is one."""
    with warehouse.connect() as con:
        value = scalar(con, "SELECT value FROM workspace_meta WHERE key = 'simulation'")
    if value is None:
        return None
    data = json.loads(str(value))
    if "start" in data:
        data["start"] = datetime.fromisoformat(data["start"])
    return SimulationConfig(**{k: v for k, v in data.items() if k in SimulationConfig.__dataclass_fields__})


def _config_json(config: SimulationConfig) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in asdict(config).items()}
