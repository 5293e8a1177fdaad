"""One lead scored without frames: the fitted :class:`ConversionClassifier` compiled to plain Python.

Scoring one lead through polars and scikit-learn costs milliseconds of fixed overhead (frame
construction, input validation, the column transformer), several times the work itself. The
endpoint and ``Policy.route_one`` score one lead at a time, so this module reads the fitted
model once and evaluates it on one lead with dictionary look-ups and float arithmetic:

* :class:`LeadFeaturizer` — :func:`models.scoring.features.lead_features` for a one-row frame
  (what ``ModelScorer`` scores today): no history, so ``account_prior_conversions`` and
  ``leads_last_24h`` are 0;
* :class:`CompiledClassifier` — the encoders as dictionaries, the boosted trees walked from the
  fitted predictors' node arrays, the logistic model as a sparse or dense dot product, the
  calibrator (isotonic ``np.interp`` on the clipped value, or Platt's sigmoid), then the
  percentile mapping of :meth:`ConversionClassifier.lead_score`.

The results are the frame path's bit for bit: the tree sum adds the same leaf values in the same
order (baseline first, then each tree), the sparse logistic dot product accumulates the nonzero
columns in column order from 0.0 as scipy's CSR product does, and every transcendental function
(``expit``, ``log1p``, ``np.interp``) is the same numpy/scipy routine on the same value. One
caveat, which is BLAS's and not ours: a logistic model whose column transformer produced a
*dense* matrix at fit time is evaluated by a matrix product whose accumulation order depends on
the number of rows (OpenBLAS's kernel handles rows in blocks of 4; a 1–3 row product takes
another path). The compiled path makes the same one-row product as scoring a one-row frame
(what routing one lead always did), so it equals that exactly; against the same lead inside a
batch of 4 or more rows it agrees to ~1e-16 in probability.

Anything the compiled path does not model exactly — a value of an unusual type, a lead whose
extras sit in an ``extra`` JSON text, text timestamps — makes :meth:`LeadFeaturizer.features`
return ``None`` and the caller falls back to the frame path, so the semantics never fork.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from scipy.special import expit

from models.quality.normalise import FREE_MAIL_DOMAINS
from models.scoring.estimator import _REFERENCE_POINTS, ConversionClassifier
from models.scoring.features import (
    CANONICAL_CATEGORICAL,
    COUNTRY_TIMEZONES,
    MISSING,
    ExtraFeature,
    _as_number,
)

# polars' ``str.strip_chars()`` trims Rust's ``char::is_whitespace`` (Unicode White_Space), which
# differs from Python's ``str.strip()`` (that also trims U+001C–U+001F).
_WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_FREE_MAIL = frozenset(FREE_MAIL_DOMAINS)
_ZONES = {code: ZoneInfo(zone) for code, zone in COUNTRY_TIMEZONES.items()}
_INT64 = 2**63


class NotCompilableError(ValueError):
    """The fitted model has a structure the compiled path does not know (use the frame path)."""


# -- features of one lead -------------------------------------------------------------------


class _FallbackError(Exception):
    """A value the compiled path does not type exactly like polars: score through frames."""


def _strip(text: str) -> str:
    return text.strip(_WHITE_SPACE)


@lru_cache(maxsize=4096)
def _polars_float(text: str) -> float | None:
    """``cast(pl.Float64, strict=False)`` of one text value, as polars parses it."""
    value = pl.Series([text], dtype=pl.String).cast(pl.Float64, strict=False)[0]
    return None if value is None else float(value)


@lru_cache(maxsize=4096)
def _polars_number(text: str) -> float | None:
    """:func:`models.scoring.features._as_number` of one text value (numbers, yes/no as 1/0)."""
    value = _as_number(pl.Series([text], dtype=pl.String))[0]
    return None if value is None else float(value)


def _polars_float_text(value: float) -> str:
    """``cast(pl.String)`` of a float, formatted as polars formats it (``1e+20``, ``-0.0``)."""
    return _polars_float_repr(repr(value))  # keyed by repr: 0.0 and -0.0 are equal keys


@lru_cache(maxsize=1024)
def _polars_float_repr(text: str) -> str:
    return str(pl.Series([float(text)], dtype=pl.Float64).cast(pl.String)[0])


def _as_text(value: Any) -> str | None:
    """``cast(pl.String)`` of a value in a one-row frame built from a dict."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and -_INT64 <= value < _INT64:
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return _polars_float_text(value)
    raise _FallbackError


def _as_float(value: Any) -> float | None:
    """``cast(pl.Float64, strict=False)`` of a value in a one-row frame built from a dict."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, float):
        return value
    if isinstance(value, int) and -_INT64 <= value < _INT64:
        return float(value)
    if isinstance(value, str):
        return _polars_float(value)
    raise _FallbackError


def _utc_instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    raise _FallbackError  # text (or a date): polars infers the format, the frame path decides


class LeadFeaturizer:
    """:func:`lead_features` of one lead as a dict, without frames.

    Args:
        extras: the extra attributes the model reads (as :class:`ModelScorer` unpacks them).
    """

    def __init__(self, extras: Sequence[ExtraFeature] = ()) -> None:
        self.extras = tuple(extras)

    def features(self, lead: Mapping[str, Any]) -> dict[str, Any] | None:
        """Feature name → value (text for categoricals, float or ``None`` for numerics), or
        ``None`` when the lead holds a value the frame path must type."""
        try:
            return self._features(lead)
        except _FallbackError:
            return None

    def _features(self, lead: Mapping[str, Any]) -> dict[str, Any]:
        if "extra" in lead and lead["extra"] is not None and any(e.name not in lead for e in self.extras):
            raise _FallbackError  # extras inside JSON text: decoded (and typed) by polars
        created = _utc_instant(lead.get("created_at"))
        out: dict[str, Any] = {}
        for name in CANONICAL_CATEGORICAL:
            text = _as_text(lead.get(name))
            out[name] = MISSING if text is None else _strip(text)
        for name in ("employees", "annual_revenue", "score"):
            out[name] = _as_float(lead.get(name))
        out["has_account"] = 0.0 if lead.get("account_id") is None else 1.0
        email = _as_text(lead.get("email"))
        out["free_mail"] = None if email is None else float(email.split("@")[-1].lower() in _FREE_MAIL)
        out["created_hour"] = float(created.hour)
        out["created_weekday"] = float(created.isoweekday())
        out["account_prior_conversions"] = 0.0  # no conversions known in a request
        out["leads_last_24h"] = 0.0  # the one lead has none before it in its own frame
        out["local_hour"] = out["local_weekday"] = None
        country = _as_text(lead.get("country"))
        if country is not None:
            zone = _ZONES.get(_strip(country).upper())
            if zone is not None:
                local = created.astimezone(zone)
                out["local_hour"] = local.hour + local.minute * (1 / 60)  # polars multiplies by the reciprocal
                out["local_weekday"] = float(local.isoweekday())
        for feature in self.extras:
            text = _as_text(lead.get(feature.name))
            text = None if text is None else _strip(text)
            if not text:
                out[feature.name] = None if feature.kind == "numeric" else MISSING
            elif feature.kind == "numeric":
                out[feature.name] = _polars_number(text)
            else:
                out[feature.name] = text
        return out


# -- the fitted model ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Trees:
    """Every tree's nodes in flat lists (global node numbers), roots in iteration order."""

    baseline: float
    roots: tuple[int, ...]
    feature: list[int]  # -1 at a leaf
    threshold: list[float]
    left: list[int]
    right: list[int]
    missing_left: list[bool]
    value: list[float]
    left_codes: list[frozenset[int] | None]  # categorical split: the codes going left
    known_codes: dict[int, frozenset[int]]  # categorical feature → codes seen in training

    def raw(self, x: Sequence[float]) -> float:
        feature, threshold, left, right = self.feature, self.threshold, self.left, self.right
        missing_left, value, left_codes, known = self.missing_left, self.value, self.left_codes, self.known_codes
        total = 0.0 + self.baseline
        for node in self.roots:
            while (f := feature[node]) >= 0:
                v = x[f]
                codes = left_codes[node]
                if v != v:  # NaN: the missing-value direction
                    node = left[node] if missing_left[node] else right[node]
                elif codes is not None:
                    code = int(v)
                    if v < 0 or (code not in codes and code not in known[f]):
                        node = left[node] if missing_left[node] else right[node]  # unknown = missing
                    else:
                        node = left[node] if code in codes else right[node]
                else:
                    node = left[node] if v <= threshold[node] else right[node]
            total += value[node]
        return total


def _bitset_codes(bitset: np.ndarray) -> frozenset[int]:
    return frozenset(v for v in range(256) if (int(bitset[v // 32]) >> (v % 32)) & 1)


def _compile_trees(booster: Any) -> _Trees:
    """Flatten a fitted ``HistGradientBoostingClassifier``'s predictors (one tree per iteration)."""
    if getattr(booster, "n_trees_per_iteration_", 1) != 1:
        raise NotCompilableError("only binary boosting (one tree per iteration) is compiled")
    known_bitsets, f_idx_map = booster._bin_mapper.make_known_categories_bitsets()
    is_categorical = booster._bin_mapper.is_categorical_
    known = {int(f): _bitset_codes(known_bitsets[f_idx_map[f]]) for f in np.flatnonzero(is_categorical)}
    roots: list[int] = []
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    missing_left: list[bool] = []
    value: list[float] = []
    left_codes: list[frozenset[int] | None] = []
    for iteration in booster._predictors:
        (predictor,) = iteration
        offset = len(feature)
        roots.append(offset)
        for node in predictor.nodes:
            leaf = bool(node["is_leaf"])
            categorical = not leaf and bool(node["is_categorical"])
            feature.append(-1 if leaf else int(node["feature_idx"]))
            threshold.append(float(node["num_threshold"]))
            left.append(offset + int(node["left"]))
            right.append(offset + int(node["right"]))
            missing_left.append(bool(node["missing_go_to_left"]))
            value.append(float(node["value"]))
            bitset = predictor.raw_left_cat_bitsets[int(node["bitset_idx"])] if categorical else None
            left_codes.append(None if bitset is None else _bitset_codes(bitset))
    baseline = float(booster._baseline_prediction.ravel()[0])
    return _Trees(baseline, tuple(roots), feature, threshold, left, right, missing_left, value, left_codes, known)


_UNSEEN = "\x00(unseen category)\x00"


def _probe(encoder: Any, columns: Sequence[str]) -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Each column's category → the encoder's output row for it (one column varied at a time,
    the others at their first category), and the output for an unseen category."""
    base = {c: str(encoder.categories_[i][0]) for i, c in enumerate(columns)}
    out = []
    for i, column in enumerate(columns):
        values = [str(v) for v in encoder.categories_[i]] + [_UNSEEN]
        frame = pl.DataFrame({c: (values if c == column else [base[c]] * len(values)) for c in columns})
        encoded = encoder.transform(frame)
        dense = np.asarray(encoded.todense() if hasattr(encoded, "todense") else encoded, dtype=np.float64)
        out.append(({v: dense[j] for j, v in enumerate(values[:-1])}, dense[-1]))
    return out


@dataclass(frozen=True)
class _Ordinal:
    """OrdinalEncoder: category → code (NaN when unseen)."""

    codes: tuple[dict[str, float], ...]

    def encode(self, values: Sequence[str]) -> list[float]:
        return [codes.get(v, math.nan) for codes, v in zip(self.codes, values, strict=True)]


def _compile_ordinal(encoder: Any, columns: Sequence[str]) -> _Ordinal:
    probed = _probe(encoder, columns)
    codes = []
    for i, (rows, unseen) in enumerate(probed):
        if not math.isnan(float(unseen[i])):
            raise NotCompilableError("an unseen category must encode as missing")
        codes.append({v: float(row[i]) for v, row in rows.items()})
    return _Ordinal(tuple(codes))


@dataclass(frozen=True)
class _Linear:
    """One-hot categoricals and the numeric pipeline into a linear decision function."""

    onehot: tuple[dict[str, int | None], ...]  # category → output column (None: all zeros)
    unseen: tuple[int | None, ...]
    n_onehot: int
    impute: np.ndarray
    indicators: tuple[int, ...]
    transform: Callable[[np.ndarray], np.ndarray]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    coef_t: np.ndarray
    coef_list: list[float]
    intercept: float
    sparse: bool

    def decision(self, categories: Sequence[str], numbers: Sequence[float]) -> float:
        hot = [
            col if (col := table.get(v, -1)) != -1 else unseen
            for table, unseen, v in zip(self.onehot, self.unseen, categories, strict=True)
        ]
        x = np.array(numbers, dtype=np.float64)
        missing = np.isnan(x)
        filled = np.where(missing, self.impute, x)
        block = np.concatenate([filled, missing[list(self.indicators)].astype(np.float64)])
        block = (self.transform(block[None, :])[0] - self.mean) / self.scale
        if self.sparse:
            # scipy's CSR product: the row's stored (nonzero) entries in column order, from 0.0.
            coef, total = self.coef_list, 0.0
            for col in sorted(c for c in hot if c is not None):
                total += 1.0 * coef[col]
            for j, v in enumerate(block.tolist()):
                if v != 0.0:
                    total += v * coef[self.n_onehot + j]
            return total + self.intercept
        row = np.zeros((1, self.n_onehot + block.size))
        for col in hot:
            if col is not None:
                row[0, col] = 1.0
        row[0, self.n_onehot :] = block
        return float((row @ self.coef_t)[0, 0] + self.intercept)


def _compile_linear(columns: Any, model: Any, cats: Sequence[str]) -> _Linear:
    encoder, numeric = columns.named_transformers_["cat"], columns.named_transformers_["num"]
    impute, log, scale = (numeric.named_steps[s] for s in ("impute", "log", "scale"))
    blocks = _onehot_blocks(encoder) if cats else []
    onehot: list[dict[str, int | None]] = []
    unseen: list[int | None] = []
    for (rows, unseen_row), (lo, hi) in zip(_probe(encoder, cats) if cats else [], blocks, strict=True):
        onehot.append({v: _hot_column(row, lo, hi) for v, row in rows.items()})
        unseen.append(_hot_column(unseen_row, lo, hi))
    n_onehot = blocks[-1][1] if blocks else 0
    indicator = getattr(impute, "indicator_", None)
    coef = np.asarray(model.coef_, dtype=np.float64).ravel()
    n_indicators = 0 if indicator is None else len(indicator.features_)
    if coef.size != n_onehot + len(impute.statistics_) + n_indicators:
        raise NotCompilableError("the linear model's inputs do not line up with the encoders")
    if getattr(scale, "with_mean", True) is False or getattr(scale, "with_std", True) is False:
        raise NotCompilableError("the scaler must centre and scale")
    return _Linear(
        onehot=tuple(onehot),
        unseen=tuple(unseen),
        n_onehot=n_onehot,
        impute=np.asarray(impute.statistics_, dtype=np.float64),
        indicators=tuple(int(i) for i in (indicator.features_ if indicator is not None else ())),
        transform=log.func,
        mean=np.asarray(scale.mean_, dtype=np.float64),
        scale=np.asarray(scale.scale_, dtype=np.float64),
        coef=coef,
        coef_t=model.coef_.T,  # the very view sklearn multiplies by (BLAS picks its kernel by layout)
        coef_list=coef.tolist(),
        intercept=float(np.asarray(model.intercept_).ravel()[0]),
        sparse=bool(columns.sparse_output_),
    )


def _hot_column(row: np.ndarray, lo: int, hi: int) -> int | None:
    """The column set to 1 in ``row[lo:hi]`` (one categorical's block), or None (all zeros)."""
    hot = np.flatnonzero(row[lo:hi])
    if hot.size > 1 or np.any((row[lo:hi] != 0) & (row[lo:hi] != 1)):
        raise NotCompilableError("a one-hot block with more than one column set")
    return None if hot.size == 0 else lo + int(hot[0])


def _onehot_blocks(encoder: Any) -> list[tuple[int, int]]:
    """Each categorical column's range of output columns."""
    out, start = [], 0
    for i in range(len(encoder.categories_)):
        width = len(encoder.categories_[i])
        infrequent = getattr(encoder, "infrequent_categories_", [None] * len(encoder.categories_))[i]
        if infrequent is not None:
            width = width - len(infrequent) + 1
        drop = getattr(encoder, "drop_idx_", None)
        if drop is not None and drop[i] is not None:
            width -= 1
        out.append((start, start + width))
        start += width
    return out


class CompiledClassifier:
    """A fitted :class:`ConversionClassifier` evaluated on one feature row (see the module doc).

    Raises:
        NotCompilableError: the model's structure is not the one this module knows.
    """

    def __init__(self, model: ConversionClassifier) -> None:
        self.categorical, self.numeric = tuple(model.categorical), tuple(model.numeric)
        fitted = model.model_
        if model.calibration == "none":
            pipeline, calibrator = fitted, None
        else:
            members = getattr(fitted, "calibrated_classifiers_", None)
            if not members or len(members) != 1 or len(members[0].calibrators) != 1:
                raise NotCompilableError("calibration must be one calibrator on one refitted model (ensemble=False)")
            pipeline, calibrator = members[0].estimator, members[0].calibrators[0]
        columns, estimator = pipeline.named_steps["columns"], pipeline.named_steps["model"]
        self.kind = model.kind
        self._trees: _Trees | None = None
        self._ordinal: _Ordinal | None = None
        self._linear: _Linear | None = None
        if model.kind == "hgb":
            self._ordinal = (
                _compile_ordinal(columns.named_transformers_["cat"], self.categorical)
                if self.categorical
                else _Ordinal(())
            )
            self._trees = _compile_trees(estimator)
        elif model.kind == "logistic":
            self._linear = _compile_linear(columns, estimator, self.categorical)
        else:
            raise NotCompilableError(f"unknown model kind {model.kind!r}")
        self._isotonic: tuple[float, float, np.ndarray, np.ndarray] | None = None
        self._sigmoid: tuple[float, float] | None = None
        if calibrator is not None:
            if model.calibration == "isotonic":
                self._isotonic = (
                    float(calibrator.X_min_),
                    float(calibrator.X_max_),
                    np.asarray(calibrator.X_thresholds_, dtype=np.float64),
                    np.asarray(calibrator.y_thresholds_, dtype=np.float64),
                )
                if len(self._isotonic[2]) < 2:
                    raise NotCompilableError("a one-point isotonic calibrator")
            elif model.calibration == "sigmoid":
                self._sigmoid = (float(calibrator.a_), float(calibrator.b_))
            else:
                raise NotCompilableError(f"unknown calibration {model.calibration!r}")
        self._reference = [float(v) for v in model.reference_]

    def model_row(self, lead: Mapping[str, Any]) -> dict[str, Any] | None:
        """The model's input row from a mapping that holds its columns directly, typed as
        ``ConversionClassifier`` types a one-row frame (categoricals as text, :data:`MISSING`
        for null; numerics as floats); ``None`` when a value needs the frame path (or a column
        is absent: the frame path then names it)."""
        if any(name not in lead for name in (*self.categorical, *self.numeric)):
            return None
        try:
            row: dict[str, Any] = {}
            for name in self.categorical:
                text = _as_text(lead.get(name))
                row[name] = MISSING if text is None else text
            for name in self.numeric:
                row[name] = _as_float(lead.get(name))
            return row
        except _FallbackError:
            return None

    def raw(self, features: Mapping[str, Any]) -> float:
        """The uncalibrated decision value (log-odds) for one feature row."""
        categories = [str(features[c]) for c in self.categorical]
        numbers = [math.nan if (v := features[c]) is None else float(v) for c in self.numeric]
        if self._trees is not None and self._ordinal is not None:
            return self._trees.raw(self._ordinal.encode(categories) + numbers)
        assert self._linear is not None
        return self._linear.decision(categories, numbers)

    def probability(self, features: Mapping[str, Any]) -> float:
        """``predict_proba(...)[:, 1]`` for one feature row."""
        raw = self.raw(features)
        if self._isotonic is not None:
            low, high, xs, ys = self._isotonic
            p = float(np.interp(min(max(raw, low), high), xs, ys))
        elif self._sigmoid is not None:
            a, b = self._sigmoid
            p = float(expit(-(a * raw + b)))
        else:
            return float(expit(raw))
        return 1.0 if 1.0 < p <= 1.0 + 1e-5 else p

    def lead_score(self, features: Mapping[str, Any]) -> float:
        """:meth:`ConversionClassifier.lead_score` for one feature row."""
        return self.score_from_probability(self.probability(features))

    def score_from_probability(self, probability: float) -> float:
        left = bisect_left(self._reference, probability)
        right = bisect_right(self._reference, probability)
        return min(max(50.0 * (left + right) / _REFERENCE_POINTS, 0.0), 100.0)


def compile_classifier(model: ConversionClassifier) -> CompiledClassifier | None:
    """The compiled form of ``model``, or ``None`` when its structure is not supported."""
    try:
        return CompiledClassifier(model)
    except (NotCompilableError, AttributeError, KeyError, IndexError, TypeError, ValueError):
        return None
