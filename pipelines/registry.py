"""The MLflow edge: the workspace's experiment, runs, registered models and their aliases.

Models are registered as ``lead-score`` and ``lead-fit`` and always addressed by alias
(``champion``, ``challenger``), never by a path. The default store is the workspace's SQLite
database with artifacts in the workspace (``Settings.tracking_uri``); ``MLFLOW_TRACKING_URI``
points elsewhere.

MLflow is imported inside the functions: it takes ~2 s to import, and commands that do not
touch models should not pay for it.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from models.scoring.estimator import ConversionClassifier
from models.scoring.metrics import CalibrationBin
from pipelines.settings import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

ModelName = Literal["lead-score", "lead-fit"]
MODEL_NAMES: tuple[ModelName, ...] = ("lead-score", "lead-fit")
Alias = Literal["champion", "challenger"]

# Types the skops format may rebuild when loading (it refuses anything else: safer than pickle).
TRUSTED_TYPES = [
    "models.scoring.estimator.ConversionClassifier",
    "models.scoring.estimator.signed_log1p",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.utils.validation.check_array",
    "functools.partial",
]


class ModelNotFoundError(LookupError):
    """No version of the model carries the alias (e.g. nothing was trained yet)."""


@dataclass(frozen=True)
class RegisteredVersion:
    """A logged and registered model version."""

    name: str
    version: int
    run_id: str


def experiment_name(settings: Settings) -> str:
    """One experiment per workspace (named after the workspace when the server is shared)."""
    return "leadroute" if settings.mlflow_tracking_uri is None else f"leadroute:{settings.home}"


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Silence MLflow's import-time notice about its own agent schemas ("Any type hint is
    inferred as AnyType"): it concerns MLflow's GenAI types, not our models, and would fail a
    run with warnings as errors."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType", category=UserWarning)
        yield


@contextmanager
def tracking(settings: Settings) -> Iterator[str]:
    """Point MLflow at the workspace's store and experiment; yields the experiment id."""
    with _quiet_mlflow():
        import mlflow

    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    previous = mlflow.get_tracking_uri()
    # MLflow also writes the URIs into os.environ; restore it, or the next Settings.from_env() in
    # this process (a long-running app) would read MLflow's default store as an explicit server.
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    try:
        name = experiment_name(settings)
        found = mlflow.get_experiment_by_name(name)
        if found is None:
            # Explicit artifact folder: MLflow's default (./mlruns in the cwd) would mix workspaces.
            location = (settings.mlflow_dir / "artifacts").resolve().as_uri()
            experiment_id = mlflow.create_experiment(name, artifact_location=location)
        else:
            experiment_id = found.experiment_id
        mlflow.set_experiment(experiment_id=experiment_id)
        yield experiment_id
    finally:
        mlflow.set_tracking_uri(previous)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def client(settings: Settings) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def log_model_run(
    settings: Settings,
    name: ModelName,
    model: ConversionClassifier,
    example: pl.DataFrame,
    params: Mapping[str, object],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    artifacts: Mapping[str, Any],
    calibration: list[CalibrationBin],
) -> RegisteredVersion:
    """Log one training run (params, metrics, JSON artifacts, calibration plot, the model with
    signature and input example) and register the model as a new version of ``name``."""
    with _quiet_mlflow():
        import mlflow
        import mlflow.pyfunc
        import mlflow.sklearn
        from mlflow.models import infer_signature

    inputs = example.select(model.features.columns).to_pandas()
    with tracking(settings), mlflow.start_run(run_name=name) as run:
        mlflow.log_params({k: _param(v) for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        mlflow.set_tags(dict(tags))
        for file_name, payload in artifacts.items():
            mlflow.log_dict(payload, f"reports/{file_name}")
        mlflow.log_figure(_calibration_figure(calibration, name), "reports/calibration.png")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(inputs, model.predict_proba(inputs)),
            input_example=inputs.head(3),
            # Explicit requirements: inferring them takes 7–9 s per model.
            pip_requirements=_requirements(),
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=TRUSTED_TYPES,
            registered_model_name=name,
        )
        version = int(info.registered_model_version)
        return RegisteredVersion(name=name, version=version, run_id=run.info.run_id)


def set_alias(settings: Settings, name: ModelName, alias: Alias, version: int) -> None:
    client(settings).set_registered_model_alias(name, alias, str(version))


def alias_version(settings: Settings, name: ModelName, alias: Alias) -> int | None:
    """The version carrying ``alias``, or None (no model, or no such alias)."""
    from mlflow.exceptions import MlflowException

    try:
        return int(client(settings).get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def tag_version(settings: Settings, name: ModelName, version: int, tags: Mapping[str, str]) -> None:
    api = client(settings)
    for key, value in tags.items():
        api.set_model_version_tag(name, str(version), key, value)


def load_model(settings: Settings, name: ModelName, alias: Alias = "champion") -> ConversionClassifier:
    """The native estimator of ``models:/<name>@<alias>``.

    Raises:
        ModelNotFoundError: nothing carries that alias yet.
    """
    with _quiet_mlflow():
        import mlflow.pyfunc
        import mlflow.sklearn

    if alias_version(settings, name, alias) is None:
        raise ModelNotFoundError(f"no {name} model has the alias '{alias}' yet: run leadroute train")
    with tracking(settings):
        model = mlflow.sklearn.load_model(f"models:/{name}@{alias}")
    if not isinstance(model, ConversionClassifier):
        raise TypeError(f"models:/{name}@{alias} is a {type(model).__name__}, not a leadroute conversion model")
    return model


def load_report(settings: Settings, name: ModelName, alias: Alias, file_name: str) -> Any:
    """A JSON report logged with the run that produced ``models:/<name>@<alias>``.

    ``file_name`` is one of the reports :func:`log_model_run` writes (``metrics.json``,
    ``data_window.json``, ``permutation_importance.json``, ``drift.json``), so a notebook reads the
    figures of the training run instead of recomputing them.

    Raises:
        ModelNotFoundError: nothing carries that alias yet.
    """
    with _quiet_mlflow():
        import mlflow.artifacts

    api = client(settings)
    if alias_version(settings, name, alias) is None:
        raise ModelNotFoundError(f"no {name} model has the alias '{alias}' yet: run leadroute train")
    run_id = api.get_model_version_by_alias(name, alias).run_id
    with tracking(settings):
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/reports/{file_name}")


def load_pyfunc(settings: Settings, name: ModelName, alias: Alias = "champion") -> Any:
    """The generic MLflow pyfunc of ``models:/<name>@<alias>`` (pandas in, probabilities out)."""
    with _quiet_mlflow():
        import mlflow.pyfunc

    if alias_version(settings, name, alias) is None:
        raise ModelNotFoundError(f"no {name} model has the alias '{alias}' yet: run leadroute train")
    with tracking(settings):
        return mlflow.pyfunc.load_model(f"models:/{name}@{alias}")


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{package}=={version(package)}" for package in ("scikit-learn", "numpy", "scipy", "polars", "pandas",
                                                             "pyarrow", "skops")]  # fmt: skip


def _param(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]  # MLflow caps a parameter's length


def _calibration_figure(bins: list[CalibrationBin], title: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and in tests
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    axis.plot([b.mean_predicted for b in bins], [b.observed_rate for b in bins], marker="o")
    top = max([0.05] + [max(b.mean_predicted, b.observed_rate) for b in bins]) * 1.1
    axis.set(xlim=(0, min(1, top)), ylim=(0, min(1, top)), xlabel="predicted", ylabel="observed", title=title)
    figure.tight_layout()
    plt.close(figure)
    return figure
