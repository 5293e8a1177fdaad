"""The reward model of DM and DR, cross-fitted so no lead is scored by a model that saw it.

``RewardModel`` follows the scikit-learn estimator contract: ``__init__`` stores parameters,
``fit(X, y)`` learns state ending in ``_`` and returns ``self``, ``predict(X)`` gives the expected
reward. ``X`` is a polars frame of lead features plus the destination (``team``, ``rep_id``);
gradient boosting learns which kind of lead each destination converts, with native categories.

Cross-fitting (``cross_fit``): leads are split into ``folds`` random groups (explicit seed); for
each group a fresh clone is fitted on the other groups' logged (destination, reward) pairs and
predicts the group's leads at their logged destination and at each target's destination.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

NO_REP = "(none)"
OTHER = "(other)"
MAX_CATEGORIES = 250
DEFAULT_THREADS = 1
"""Boosting runs on one OpenMP thread unless told otherwise: on a shared 2-core machine (other
processes busy) OpenMP's waiting threads made fits 15–30x slower (100,000 rows: 60 s vs 4 s)."""


class RewardModel(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Expected reward of a (lead, destination) pair.

    Args:
        categorical: columns treated as categories (``team`` and ``rep_id`` belong here).
        numeric: numeric columns (missing values allowed).
        max_iter, learning_rate, max_leaf_nodes: gradient boosting settings.
        early_stopping: stop adding trees once 10% held-out rows stop improving (fewer trees:
            less overfitting on weak conversion signal and faster predictions on large logs).
        max_train_rows: fit on a random subset of at most this many rows (speed on large logs).
        n_threads: OpenMP threads of boosting; ``None``: ``DEFAULT_THREADS``.
        random_state: seed of the boosting and the subsample.

    A 0/1 reward is fitted with a classifier (``predict`` returns its probability); anything
    else with a squared-error regressor.
    """

    def __init__(
        self,
        categorical: Sequence[str] = ("team", "rep_id"),
        numeric: Sequence[str] = (),
        max_iter: int = 100,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        early_stopping: bool = True,
        max_train_rows: int | None = None,
        n_threads: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.categorical = categorical
        self.numeric = numeric
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.early_stopping = early_stopping
        self.max_train_rows = max_train_rows
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X: pl.DataFrame, y: Any) -> RewardModel:  # noqa: N803
        target = np.asarray(y, dtype=np.float64)
        if target.shape != (X.height,):
            raise ValueError(f"y: expected {X.height} values, got shape {target.shape}")
        rows = np.arange(X.height)
        if self.max_train_rows is not None and X.height > self.max_train_rows:
            rows = np.sort(
                np.random.default_rng(self.random_state).choice(X.height, self.max_train_rows, replace=False)
            )
        frame = X[rows] if rows.size != X.height else X
        self.categories_ = {c: _categories(frame[c]) for c in self.categorical}
        self.binary_ = bool(np.isin(target, (0.0, 1.0)).all())
        self.constant_: float | None = None
        # A column with no value at all (e.g. no external score) carries nothing: leave it out.
        self.numeric_ = tuple(c for c in self.numeric if c in frame.columns and _has_values(frame[c]))
        mask = [True] * len(self.categorical) + [False] * len(self.numeric_)
        settings = {
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "max_leaf_nodes": self.max_leaf_nodes,
            "categorical_features": mask,
            "random_state": self.random_state,
            # A held-out split needs enough of each class (a small fold may have a handful of wins).
            "early_stopping": self.early_stopping and _enough_to_hold_out(target[rows], self.binary_),
            "validation_fraction": 0.1,
            "n_iter_no_change": 10,
        }
        y_fit = target[rows]
        if np.unique(y_fit).size < 2:
            # One value only (e.g. no conversions in a small fold): the model is that constant.
            self.constant_ = float(y_fit[0]) if y_fit.size else 0.0
            self.model_ = None
        else:
            kind = HistGradientBoostingClassifier if self.binary_ else HistGradientBoostingRegressor
            with threadpool_limits(self._threads(), user_api="openmp"):
                self.model_ = kind(**settings).fit(self._matrix(frame), y_fit)
        self.n_features_in_ = len(mask)
        return self

    def predict(self, X: pl.DataFrame) -> np.ndarray:  # noqa: N803
        if not hasattr(self, "categories_"):
            raise ValueError("RewardModel: call fit before predict")
        if self.model_ is None:
            return np.full(X.height, self.constant_ or 0.0)
        matrix = self._matrix(X)
        with threadpool_limits(self._threads(), user_api="openmp"):
            if self.binary_:
                return np.asarray(self.model_.predict_proba(matrix)[:, 1], dtype=np.float64)
            return np.asarray(self.model_.predict(matrix), dtype=np.float64)

    def _threads(self) -> int:
        return self.n_threads if self.n_threads is not None else DEFAULT_THREADS

    def _matrix(self, X: pl.DataFrame) -> np.ndarray:  # noqa: N803
        missing = [c for c in (*self.categorical, *self.numeric_) if c not in X.columns]
        if missing:
            raise ValueError(f"RewardModel: missing column(s) {', '.join(missing)}")
        codes = [
            X[c]
            .cast(pl.String)
            .fill_null(NO_REP)
            .replace_strict(self.categories_[c], default=len(self.categories_[c]) - 1, return_dtype=pl.Float64)
            for c in self.categorical
        ]
        numbers = [X[c].cast(pl.Float64, strict=False) for c in self.numeric_]
        if not codes and not numbers:
            return np.zeros((X.height, 0))
        return np.column_stack([s.to_numpy() for s in (*codes, *numbers)]).astype(np.float64)


def _enough_to_hold_out(y: np.ndarray, binary: bool) -> bool:
    if not binary:
        return y.size >= 200
    positives = int(y.sum())
    return min(positives, y.size - positives) >= 50


def _has_values(values: pl.Series) -> bool:
    return bool(values.cast(pl.Float64, strict=False).fill_nan(None).drop_nulls().len())


def _categories(values: pl.Series) -> dict[str, int]:
    """Most frequent categories (up to ``MAX_CATEGORIES - 1``) → codes; the rest share ``OTHER``."""
    counts = values.cast(pl.String).fill_null(NO_REP).value_counts(sort=True)
    top = counts[counts.columns[0]].head(MAX_CATEGORIES - 1).sort().to_list()
    return {**{v: i for i, v in enumerate(top)}, OTHER: len(top)}


@dataclass(frozen=True)
class CrossFitted:
    """Cross-fitted predictions: ``q_logged`` at the logged destination, ``q_targets[k]`` at
    target ``k``'s, and the fold of each lead."""

    q_logged: np.ndarray
    q_targets: tuple[np.ndarray, ...]
    fold: np.ndarray


def cross_fit(
    model: RewardModel,
    leads: pl.DataFrame,
    logged: pl.DataFrame,
    reward: np.ndarray,
    targets: Sequence[pl.DataFrame],
    *,
    folds: int = 5,
    seed: int = 0,
) -> CrossFitted:
    """Fit ``folds`` clones, each predicting only the leads it did not see.

    Args:
        model: an unfitted :class:`RewardModel` (its destination columns are ``team``, ``rep_id``).
        leads: lead features, one row per lead.
        logged: the logged destinations (``team``, ``rep_id``), aligned with ``leads``.
        reward: observed rewards, aligned.
        targets: each target's destinations (``team``, ``rep_id``), aligned.
        folds: number of folds (at least 2).
        seed: seed of the fold assignment.
    """
    n = leads.height
    if folds < 2:
        raise ValueError(f"folds: at least 2 so that no lead is scored by a model that saw it, got {folds}")
    fold = np.random.default_rng(seed).permutation(np.arange(n) % folds)
    base = leads.drop([c for c in ("team", "rep_id") if c in leads.columns])

    def with_destination(destinations: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
        picked = destinations.select(pl.col("team").cast(pl.String), pl.col("rep_id").cast(pl.String))[rows]
        return pl.concat([base[rows], picked], how="horizontal")

    q_logged = np.zeros(n)
    q_targets = [np.zeros(n) for _ in targets]
    same = [same_rows(logged, target) for target in targets]
    for k in range(folds):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        if test.size == 0:
            continue
        fitted = clone(model).fit(with_destination(logged, train), reward[train])
        q_logged[test] = fitted.predict(with_destination(logged, test))
        for j, target in enumerate(targets):
            # Where the target chose the logged destination the prediction is already known.
            other = test[~same[j][test]]
            q_targets[j][test] = q_logged[test]
            q_targets[j][other] = fitted.predict(with_destination(target, other))
    return CrossFitted(q_logged, tuple(q_targets), fold)


def same_rows(logged: pl.DataFrame, target: pl.DataFrame) -> np.ndarray:
    """True where both frames name the same ``(team, rep_id)`` (null reps equal)."""
    team = (logged["team"].cast(pl.String) == target["team"].cast(pl.String)).fill_null(False)
    rep = logged["rep_id"].cast(pl.String).eq_missing(target["rep_id"].cast(pl.String))
    return np.asarray((team & rep).to_numpy(), dtype=bool)


LEAD_CATEGORICAL: tuple[str, ...] = (
    "industry", "region", "country", "source", "seniority", "product_interest", "language",
)  # fmt: skip
LEAD_NUMERIC: tuple[str, ...] = (
    "employees", "annual_revenue", "score", "web_visits", "email_opens", "pricing_page_views", "demo_requested",
)  # fmt: skip


def lead_features(leads: pl.DataFrame) -> tuple[pl.DataFrame, tuple[str, ...], tuple[str, ...]]:
    """The canonical lead columns the reward model reads (those present), plus ``has_account``
    and the UTC hour and weekday of creation (response time depends on them).

    Returns:
        (frame, categorical columns, numeric columns); add ``team`` and ``rep_id`` to the
        categorical ones for :class:`RewardModel`.
    """
    categorical = tuple(c for c in LEAD_CATEGORICAL if c in leads.columns)
    numeric = tuple(c for c in LEAD_NUMERIC if c in leads.columns)
    extra: list[pl.Expr] = []
    if "account_id" in leads.columns:
        extra.append(pl.col("account_id").is_not_null().cast(pl.Float64).alias("has_account"))
    if "created_at" in leads.columns:
        created = pl.col("created_at").dt.convert_time_zone("UTC")
        extra += [
            created.dt.hour().cast(pl.Float64).alias("hour"),
            created.dt.weekday().cast(pl.Float64).alias("weekday"),
        ]
    frame = leads.select(
        *[pl.col(c).cast(pl.String) for c in categorical], *[pl.col(c).cast(pl.Float64) for c in numeric], *extra
    )
    names = tuple(e.meta.output_name() for e in extra)
    return frame, categorical, numeric + names
