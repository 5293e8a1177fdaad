"""The workspace configuration: ``<LEADROUTE_HOME>/leadroute.yaml`` if present, else defaults.

Typed and strict (unknown keys are an error naming the key), so a typo in the YAML fails at
the edge instead of being silently ignored. Each stage owns one section; this module starts
with ``scoring`` and other sections are added beside it.

Example ``leadroute.yaml``::

    scoring:
      extra_features: [web_visits, pricing_page_views, demo_requested]   # default: all extras
      exclude_features: [duration]
      conversion_window_days: 120
      holdout_months: 2
      promotion_margin: 0.002
      schedule: "0 3 * * 1"        # Mondays 03:00 UTC
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.settings import Settings

CONFIG_FILE = "leadroute.yaml"


class ConfigError(ValueError):
    """The workspace configuration file is unreadable or invalid."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScoringConfig(_Section):
    """How the conversion models are trained, compared, promoted and retrained.

    Attributes:
        extra_features: extra lead attributes used as features; ``None`` uses every extra
            present in the leads (numeric or categorical, inferred from the values).
        exclude_features: extras never used — attributes recorded after a lead's creation leak
            the outcome (the bank data's call ``duration`` is the classic case).
        conversion_window_days: a lead's outcome counts once this many days passed since its
            creation (maturity); a conversion later than that is not a conversion.
        split: ``time`` holds out the most recent matured months (the honest default: train on the
            past, judge on the future); ``random`` holds out a seeded stratified share, for data
            whose timestamps are synthetic (e.g. the bank-marketing export).
        holdout_months: the most recent matured months held out for evaluation and promotion.
        holdout_share: the share held out by the ``random`` split.
        drift_days: "recent leads" for drift are those created in the last this many days.
        promotion_margin: a challenger must beat the champion's holdout ROC AUC by this much.
        calibration_tolerance: and its ECE may exceed the champion's by at most this much.
        calibration: how the gradient-boosted model is calibrated.
        max_iter, learning_rate, max_leaf_nodes: boosting budget and tree size (early stopping
            decides the actual rounds).
        seed: seed of every random draw in training.
        schedule: cron expression (UTC) for ``leadroute schedule``.
    """

    extra_features: list[str] | None = None
    exclude_features: list[str] = Field(default_factory=lambda: ["duration"])
    conversion_window_days: int = Field(default=120, ge=1, le=3650)
    split: Literal["time", "random"] = "time"
    holdout_months: int = Field(default=2, ge=1, le=24)
    holdout_share: float = Field(default=0.25, gt=0.0, lt=1.0)
    drift_days: int = Field(default=30, ge=1, le=365)
    promotion_margin: float = Field(default=0.002, ge=0.0, le=0.5)
    calibration_tolerance: float = Field(default=0.005, ge=0.0, le=1.0)
    calibration: Literal["isotonic", "sigmoid", "none"] = "sigmoid"
    max_iter: int = Field(default=400, ge=1, le=10_000)
    learning_rate: float = Field(default=0.1, gt=0.0, le=1.0)
    max_leaf_nodes: int = Field(default=3, ge=2, le=255)
    seed: int = 0
    schedule: str = "0 3 * * 1"

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from pipelines.schedule import cron_trigger

        try:
            cron_trigger(value)
        except ValueError as exc:
            raise ValueError(f"not a cron expression ({exc})") from None
        return value


class WorkspaceConfig(_Section):
    """Everything a workspace can configure; every section has defaults."""

    scoring: ScoringConfig = ScoringConfig()  # frozen, so sharing the default is safe


def config_path(settings: Settings) -> Path:
    return settings.home / CONFIG_FILE


def load_config(settings: Settings) -> WorkspaceConfig:
    """The workspace's configuration (defaults when there is no file).

    Raises:
        ConfigError: the file is not YAML, not a mapping, or a value is invalid (the message
            names the key, e.g. ``scoring.holdout_months``).
    """
    path = config_path(settings)
    if not path.exists():
        return WorkspaceConfig()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        return WorkspaceConfig()
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    try:
        return WorkspaceConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
