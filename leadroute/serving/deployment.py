"""What the endpoint serves: the live deployment (policy versions with traffic shares) and the
lead-score model, read from the workspace with short connections.

A deployment row's ``arms`` JSON is either a list of arms or an object
``{"experiment": name, "salt": text, "arms": [...]}``; an arm is
``{"policy": name, "version": n, "share": x, "arm": label}``. Without a live row the endpoint
serves the ``seed`` policy's latest registered version (or the shipped file).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from models.policy import LeadScorer, Policy, Roster
from models.scoring.compiled import LeadFeaturizer, compile_classifier
from models.scoring.estimator import ConversionClassifier
from models.scoring.features import ExtraFeature, lead_features
from pipelines.deployments import DEFAULT_POLICY
from pipelines.policies import resolve
from pipelines.settings import Settings


@dataclass(frozen=True)
class Arm:
    """One policy version and its share of the traffic."""

    policy: Policy
    share: float
    label: str | None = None
    scope: str | None = None  # ``deployment_id:arm`` when the arm routes to its own reps only

    @property
    def key(self) -> str:
        """``name@version`` (``name@shipped`` for an unregistered shipped file), plus the scope of
        an arm with its own reps: names its rotation state."""
        version = self.policy.version if self.policy.version is not None else "shipped"
        return f"{self.policy.spec.name}@{version}" + (f"#{self.scope}" if self.scope else "")


@dataclass(frozen=True)
class Deployment:
    """What is live; immutable, so a request that took it is decided entirely by it."""

    deployment_id: int | None
    arms: tuple[Arm, ...]
    experiment: str | None = None
    salt: str = ""

    def pick(self, lead_id: str) -> Arm:
        """Sticky, stateless assignment: a salted hash of the lead id picks the arm."""
        if len(self.arms) == 1:
            return self.arms[0]
        digest = hashlib.sha256(f"{self.salt}:{lead_id}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        total = sum(a.share for a in self.arms)
        edge = 0.0
        for arm in self.arms:
            edge += arm.share / total
            if u < edge:
                return arm
        return self.arms[-1]

    def to_json(self) -> dict[str, Any]:
        total = sum(a.share for a in self.arms)
        return {
            "deployment_id": self.deployment_id,
            "experiment": self.experiment,
            "arms": [
                {
                    "arm": a.label,
                    "policy": a.policy.spec.name,
                    "policy_version": a.policy.version,
                    "share": a.share / total,
                }
                for a in self.arms
            ],
        }


class ModelScorer:
    """The MLflow champion as the policy's :class:`LeadScorer` (0–100 percentile score).

    One lead has no history in the request: account conversions before it count as 0 and the
    24-hour arrival count covers the request's own leads (an approximation of training features).
    :meth:`score_one` gives ``score(pl.DataFrame([lead]))[0]`` through the compiled model
    (:mod:`models.scoring.compiled`), with no frame: what routing one lead uses.
    """

    def __init__(self, model: ConversionClassifier, version: int | None) -> None:
        self.model, self.version = model, version
        base = set(lead_features(pl.DataFrame({"lead_id": ["x"], "created_at": ["2024-01-01T00:00:00Z"]})).columns)
        self._extras = tuple(
            [ExtraFeature(c, "categorical") for c in model.categorical if c not in base]
            + [ExtraFeature(c, "numeric") for c in model.numeric if c not in base]
        )
        self._featurizer = LeadFeaturizer(self._extras)
        self._compiled = compile_classifier(model)

    def score(self, leads: pl.DataFrame) -> np.ndarray:
        return np.asarray(self.model.lead_score(lead_features(leads, self._extras)), dtype=np.float64)

    def score_one(self, lead: Mapping[str, Any]) -> float:
        """The score of one lead, equal to ``score(pl.DataFrame([lead]))[0]``."""
        features = None if self._compiled is None else self._featurizer.features(lead)
        if self._compiled is None or features is None:
            return float(self.score(pl.DataFrame([lead]))[0])
        return self._compiled.lead_score(features)


def load_scorer(settings: Settings) -> ModelScorer | None:
    """The ``lead-score`` champion, or None when none is registered (rules then read the lead's score)."""
    from pipelines import registry  # mlflow is slow to import: only when serving starts

    version = registry.alias_version(settings, "lead-score", "champion")
    if version is None:
        return None
    return ModelScorer(registry.load_model(settings, "lead-score"), version)


def build_deployment(
    settings: Settings, roster: Roster, scorer: LeadScorer | None, row: tuple[int, Any] | None
) -> Deployment:
    """Bind the row's policy versions (or the default) to the roster and scorer."""
    if row is None:
        source = resolve(settings, DEFAULT_POLICY)
        return Deployment(None, (Arm(Policy(source.spec, roster, version=source.version, scorer=scorer), 1.0),))
    deployment_id, raw = row
    spec: dict[str, Any] = raw if isinstance(raw, dict) else {"arms": raw}
    arms_raw: Sequence[dict[str, Any]] = spec.get("arms") or []
    arms = []
    for item in arms_raw:
        ref = str(item["policy"]) + (f"@{int(item['version'])}" if item.get("version") is not None else "")
        source = resolve(settings, ref)
        share = float(item.get("share", 1.0))
        if share <= 0:
            continue
        reps = item.get("reps")
        own = roster.only_sales_reps(frozenset(map(str, reps))) if reps else roster
        policy = Policy(source.spec, own, version=source.version, scorer=scorer)
        arms.append(Arm(policy, share, item.get("arm"), f"{deployment_id}:{item.get('arm')}" if reps else None))
    if not arms:
        raise ValueError(f"deployment {deployment_id}: no arm with a positive share")
    experiment = spec.get("experiment")
    salt = str(spec.get("salt") or experiment or deployment_id)
    return Deployment(deployment_id, tuple(arms), None if experiment is None else str(experiment), salt)
