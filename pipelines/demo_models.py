"""Train and register the demo workspace's models (called by ``leadroute demo`` after the import)."""

from __future__ import annotations

from collections.abc import Callable

from pipelines.settings import Settings
from pipelines.train import TrainResult, train


def train_demo_models(settings: Settings, progress: Callable[[str], None] | None = None) -> TrainResult:
    """Train ``lead-score`` and ``lead-fit`` on the demo history and make them champions.

    ``--promote always``: a rebuilt demo workspace must serve the models trained on *its* data,
    even if an older champion (from a previous demo in a shared tracking server) scored higher.
    The returned result's ``lines()`` and ``to_json()`` fit into the demo's summary.
    """
    return train(settings, "always", progress=progress)
