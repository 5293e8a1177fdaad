"""The conversion model: a scikit-learn classifier over named lead (and destination) columns.

``ConversionClassifier`` follows the estimator contract (parameters in ``__init__``, learned
state ending in ``_``, ``fit`` returns ``self``) so sklearn tools (clone, permutation importance,
calibration) and MLflow's sklearn flavour treat it like any classifier. Two kinds:

* ``"hgb"``: HistGradientBoostingClassifier with native categoricals, calibrated with
  cross-validated isotonic (or sigmoid) regression and refitted on all data (``ensemble=False``),
  so inference is one model;
* ``"logistic"``: one-hot + scaled numerics into a logistic regression — the baseline reported
  beside it.

Inputs may be polars or pandas frames (MLflow's pyfunc hands pandas); both are normalised to the
same typed polars frame first, so a model predicts identically whoever calls it.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import ThreadpoolController

from models.scoring.features import MISSING, FeatureSet

ModelKind = Literal["hgb", "logistic"]
Calibration = Literal["isotonic", "sigmoid", "none"]

_THREADPOOLS: list[ThreadpoolController] = []


def _openmp_limit(threads: int | None) -> Any:
    """A context capping OpenMP threads. The controller is built once: building it inspects every
    loaded library (~4 ms), which would dominate scoring one lead; reusing it costs ~0.02 ms."""
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0].limit(limits=threads, user_api="openmp")


_REFERENCE_POINTS = 1001
"""Quantiles of the training probabilities kept to map a probability to a 0–100 percentile score."""


class ConversionClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """P(convert) from named feature columns.

    Args:
        categorical, numeric: the columns read (categoricals as text, numerics as numbers).
        kind: ``"hgb"`` or ``"logistic"`` (the baseline).
        calibration: ``"isotonic"``, ``"sigmoid"`` or ``"none"``; ``"auto"``-free on purpose:
            the choice is logged with the run.
        calibration_folds: folds of the cross-validated calibration.
        learning_rate, max_iter, max_leaf_nodes, min_samples_leaf, l2_regularization: boosting
            parameters (``max_iter`` is an upper bound: early stopping on a seeded 10% split).
        min_category_count: rarer categories are pooled into one "infrequent" category.
        C: inverse regularisation of the logistic baseline.
        random_state: seed of every random draw (early-stopping split, calibration folds).
        n_threads: OpenMP threads for boosting (None: the library's default, all cores). One by
            default: this workbench trains and scores beside an endpoint and an app on small
            machines, where OpenMP threads competing for busy cores wait on each other — a
            2,500-lead demo training took 86 s with the default and 13 s with one thread on a
            loaded 2-core machine; batch scoring is row-parallel work we keep single-threaded too.
    """

    def __init__(
        self,
        categorical: tuple[str, ...] = (),
        numeric: tuple[str, ...] = (),
        kind: ModelKind = "hgb",
        calibration: Calibration = "isotonic",
        calibration_folds: int = 3,
        learning_rate: float = 0.06,
        max_iter: int = 400,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        min_category_count: int = 20,
        C: float = 1.0,  # noqa: N803 (scikit-learn's name for it)
        random_state: int = 0,
        n_threads: int | None = 1,
    ) -> None:
        self.categorical = categorical
        self.numeric = numeric
        self.kind = kind
        self.calibration = calibration
        self.calibration_folds = calibration_folds
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.min_category_count = min_category_count
        self.C = C
        self.random_state = random_state
        self.n_threads = n_threads

    @property
    def features(self) -> FeatureSet:
        return FeatureSet(tuple(self.categorical), tuple(self.numeric))

    def fit(self, X: Any, y: Any) -> ConversionClassifier:  # noqa: N803
        """Fit on a frame holding the named columns and 0/1 (or bool) outcomes ``y``."""
        with _openmp_limit(self.n_threads):
            return self._fit(X, y)

    def _fit(self, X: Any, y: Any) -> ConversionClassifier:  # noqa: N803
        frame = self._frame(X)
        target = np.asarray(y).astype(np.int64)
        if np.unique(target).size < 2:
            raise ValueError("cannot fit a conversion model: the outcomes have a single class")
        base = self._pipeline()
        if self.calibration == "none":
            model: Any = base.fit(frame, target)
        else:
            folds = StratifiedKFold(self.calibration_folds, shuffle=True, random_state=self.random_state)
            model = CalibratedClassifierCV(base, method=self.calibration, cv=folds, ensemble=False)
            model.fit(frame, target)
        self.model_ = model
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.array(self.features.columns, dtype=object)
        self.n_features_in_ = len(self.features.columns)
        trained = model.predict_proba(frame)[:, 1]
        self.reference_ = np.quantile(trained, np.linspace(0.0, 1.0, _REFERENCE_POINTS))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803
        """``(n, 2)`` probabilities of not converting and converting."""
        with _openmp_limit(self.n_threads):
            proba: np.ndarray = self.model_.predict_proba(self._frame(X))
        return proba

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def lead_score(self, X: Any) -> np.ndarray:  # noqa: N803
        """The 0–100 score for rules: the percentile of the lead's probability among the
        training leads (80 means "better than 80% of the leads this model learned from")."""
        return self.score_from_probability(self.predict_proba(X)[:, 1])

    def score_from_probability(self, probability: np.ndarray) -> np.ndarray:
        # Midpoint of the tied run, so a constant model scores 50 rather than 0 or 100.
        left = np.searchsorted(self.reference_, probability, side="left")
        right = np.searchsorted(self.reference_, probability, side="right")
        return np.clip(50.0 * (left + right) / (_REFERENCE_POINTS), 0.0, 100.0)

    # -- internals --------------------------------------------------------------------------

    def _frame(self, X: Any) -> pl.DataFrame:  # noqa: N803
        frame = X if isinstance(X, pl.DataFrame) else pl.from_pandas(X)
        missing = [c for c in self.features.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"missing feature column(s): {', '.join(missing)}")
        return frame.select(
            *[pl.col(c).cast(pl.String).fill_null(MISSING) for c in self.categorical],
            *[pl.col(c).cast(pl.Float64, strict=False) for c in self.numeric],
        )

    def _pipeline(self) -> Pipeline:
        cats, nums = list(self.categorical), list(self.numeric)
        if self.kind == "hgb":
            encoder = OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=np.nan,  # an unseen category reads as missing
                min_frequency=self.min_category_count,
                max_categories=250,  # native categoricals need fewer than max_bins (255) levels
            )
            columns = ColumnTransformer([("cat", encoder, cats), ("num", "passthrough", nums)])
            booster = HistGradientBoostingClassifier(
                learning_rate=self.learning_rate,
                max_iter=self.max_iter,
                max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf,
                l2_regularization=self.l2_regularization,
                categorical_features=[True] * len(cats) + [False] * len(nums),
                early_stopping=True,
                validation_fraction=0.1,
                n_iter_no_change=20,
                random_state=self.random_state,
            )
            return Pipeline([("columns", columns), ("model", booster)])
        if self.kind == "logistic":
            numeric = Pipeline(
                [
                    ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                    ("log", FunctionTransformer(signed_log1p)),
                    ("scale", StandardScaler()),
                ]
            )
            onehot = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=self.min_category_count)
            columns = ColumnTransformer([("cat", onehot, cats), ("num", numeric, nums)])
            return Pipeline([("columns", columns), ("model", LogisticRegression(C=self.C, max_iter=2000))])
        raise ValueError(f"kind: must be 'hgb' or 'logistic', got {self.kind!r}")


def signed_log1p(values: np.ndarray) -> np.ndarray:
    """Compress heavy tails (counts, company sizes) while keeping the sign of negative indicators."""
    x = np.asarray(values, dtype=np.float64)
    result: np.ndarray = np.sign(x) * np.log1p(np.abs(x))
    return result
