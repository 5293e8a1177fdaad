"""Register the shipped policies (the seed workflow and the baselines) in a demo workspace."""

from __future__ import annotations

from collections.abc import Callable

from pipelines.policies import SHIPPED_DIR, StoredPolicy, read_file, register, validate
from pipelines.settings import Settings

DEMO_POLICIES = ("seed", "round_robin", "territory", "account_owner", "best_fit")


def register_demo_policies(settings: Settings, progress: Callable[[str], None] | None = None) -> list[StoredPolicy]:
    """Validate and register every shipped policy (idempotent); fails if one does not validate."""
    say = progress or (lambda _m: None)
    stored = []
    for name in DEMO_POLICIES:
        source = read_file(SHIPPED_DIR / f"{name}.yaml")
        report = validate(settings, source)
        if not report.ok:
            raise ValueError(f"shipped policy {name} does not validate: {report.errors[0]}")
        result = register(settings, source, created_by="leadroute demo")
        say(f"policy {result.name} v{result.version} {'registered' if result.created else 'already registered'}")
        stored.append(result)
    return stored
