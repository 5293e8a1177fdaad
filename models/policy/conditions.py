"""Conditions, two ways with one semantics: polars expressions for batch, plain Python per lead.

Semantics (both paths implement exactly these, and a property test holds them to it):

* A field is looked up among the lead's columns (canonical, extra attributes, ``score``); an
  absent column is missing for every lead.
* *Missing* means null, NaN, or text that is empty after trimming. A missing field fails every
  comparison (``!=`` and ``not in`` included); only ``is missing`` is true for it.
* Numbers compare numerically: text that spells a plain decimal number counts as that number,
  booleans as 0/1. Text values compare as exact text (integers and booleans written as
  ``"12"``/``"true"``); booleans compare with booleans or the words true/false, yes/no.
* ``contains`` is a case-insensitive substring test on text, or membership for a list field.
* ``!=`` and ``not in`` are "present and not equal / not among".
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import polars as pl

from models.policy.spec import AllOf, AnyOf, Condition, Leaf, Not, Scalar

_NUMBER_CORE = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
NUMBER = f"^{_NUMBER_CORE}$"  # Rust regex: `$` is the very end of the text
_NUMBER = re.compile(_NUMBER_CORE)
_TRUE, _FALSE = ("true", "yes", "1", "y", "t"), ("false", "no", "0", "n", "f")

# -- batch: polars --------------------------------------------------------------------------


def compile_condition(condition: Condition, schema: Mapping[str, pl.DataType]) -> pl.Expr:
    """A non-null boolean expression over a frame with ``schema``: true where the condition holds."""
    if isinstance(condition, AllOf):
        return pl.all_horizontal([compile_condition(c, schema) for c in condition.items] or [pl.lit(True)])
    if isinstance(condition, AnyOf):
        return pl.any_horizontal([compile_condition(c, schema) for c in condition.items] or [pl.lit(False)])
    if isinstance(condition, Not):
        return ~compile_condition(condition.item, schema)
    return _leaf_expr(condition, schema.get(condition.field))


def _leaf_expr(leaf: Leaf, dtype: pl.DataType | None) -> pl.Expr:
    col = pl.col(leaf.field)
    missing = _missing_expr(col, dtype)
    if leaf.op == "is missing":
        return missing
    if leaf.op in ("<", "<=", ">", ">=", "between"):
        num = _number_expr(col, dtype)
        if leaf.op == "between":
            low, high = leaf.value  # type: ignore[misc,str-unpack]
            return (num.is_between(float(low), float(high))).fill_null(False)
        value = float(leaf.value)  # type: ignore[arg-type]
        compare = {"<": num < value, "<=": num <= value, ">": num > value, ">=": num >= value}[leaf.op]
        return compare.fill_null(False)
    if leaf.op == "contains":
        needle = str(leaf.value).lower()
        if isinstance(dtype, pl.List):
            return col.cast(pl.List(pl.String), strict=False).list.contains(str(leaf.value)).fill_null(False)
        return _text_expr(col, dtype).str.to_lowercase().str.contains(needle, literal=True).fill_null(False)
    values = leaf.value if isinstance(leaf.value, tuple) else (leaf.value,)
    found = _in_expr(col, dtype, values)
    if leaf.op in ("=", "in"):
        return found
    return ~found & ~missing  # != and not in: present and different


def _in_expr(col: pl.Expr, dtype: pl.DataType | None, values: tuple[Any, ...]) -> pl.Expr:
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    texts = [v for v in values if isinstance(v, str)]
    flags = [v for v in values if isinstance(v, bool)]
    parts: list[pl.Expr] = []
    if numbers:
        parts.append(_number_expr(col, dtype).is_in(numbers).fill_null(False))
    if texts:
        parts.append(_text_expr(col, dtype).is_in(texts).fill_null(False))
    if flags:
        parts.append(_bool_expr(col, dtype).is_in(flags).fill_null(False))
    return pl.any_horizontal(parts) if parts else pl.lit(False)


def _missing_expr(col: pl.Expr, dtype: pl.DataType | None) -> pl.Expr:
    if dtype is None or dtype == pl.Null:
        return pl.lit(True)
    if dtype == pl.String:
        return col.is_null() | (col.str.strip_chars() == "")
    if dtype.is_float():
        return col.is_null() | col.is_nan()
    return col.is_null()


def _number_expr(col: pl.Expr, dtype: pl.DataType | None) -> pl.Expr:
    if dtype is None or dtype == pl.Null:
        return pl.lit(None, pl.Float64)
    if dtype.is_numeric() or dtype == pl.Boolean:
        return col.cast(pl.Float64).fill_nan(None)
    if dtype == pl.String:
        return pl.when(col.str.contains(NUMBER)).then(col.cast(pl.Float64, strict=False)).otherwise(None)
    return pl.lit(None, pl.Float64)


def _text_expr(col: pl.Expr, dtype: pl.DataType | None) -> pl.Expr:
    if dtype == pl.String:
        return col
    if dtype is not None and dtype.is_integer():
        return col.cast(pl.String)
    if dtype == pl.Boolean:
        return pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false")).otherwise(None)
    return pl.lit(None, pl.String)  # floats and other types never equal text (no formatting games)


def _bool_expr(col: pl.Expr, dtype: pl.DataType | None) -> pl.Expr:
    if dtype == pl.Boolean:
        return col
    if dtype == pl.String:
        low = col.str.to_lowercase()
        return pl.when(low.is_in(list(_TRUE))).then(True).when(low.is_in(list(_FALSE))).then(False).otherwise(None)
    return pl.lit(None, pl.Boolean)


# -- per lead: plain Python -----------------------------------------------------------------


def evaluate(condition: Condition, lead: Mapping[str, Any]) -> bool:
    """Whether ``condition`` holds for one lead (a mapping of field → value)."""
    if isinstance(condition, AllOf):
        return all(evaluate(c, lead) for c in condition.items)
    if isinstance(condition, AnyOf):
        return any(evaluate(c, lead) for c in condition.items)
    if isinstance(condition, Not):
        return not evaluate(condition.item, lead)
    return _leaf(condition, lead.get(condition.field))


def _leaf(leaf: Leaf, value: Any) -> bool:
    missing = _is_missing(value)
    if leaf.op == "is missing":
        return missing
    if leaf.op in ("<", "<=", ">", ">=", "between"):
        num = _number(value)
        if num is None:
            return False
        if leaf.op == "between":
            low, high = leaf.value  # type: ignore[misc,str-unpack]
            return float(low) <= num <= float(high)
        ref = float(leaf.value)  # type: ignore[arg-type]
        return {"<": num < ref, "<=": num <= ref, ">": num > ref, ">=": num >= ref}[leaf.op]
    if leaf.op == "contains":
        if isinstance(value, list | tuple):
            return str(leaf.value) in [v for v in value if isinstance(v, str)]
        text = _text(value)
        return text is not None and str(leaf.value).lower() in text.lower()
    values = leaf.value if isinstance(leaf.value, tuple) else (leaf.value,)
    found = _found(value, values)
    return found if leaf.op in ("=", "in") else (not found and not missing)


def _found(value: Any, values: tuple[Scalar | None, ...]) -> bool:
    for v in values:
        if isinstance(v, bool):
            if _boolean(value) is v:
                return True
        elif isinstance(v, int | float):
            num = _number(value)
            if num is not None and num == float(v):
                return True
        elif isinstance(v, str) and _text(value) == v:
            return True
    return False


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip() == ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return None if isinstance(value, float) and math.isnan(value) else float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return float(value)
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) else None


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.lower()
        return True if low in _TRUE else False if low in _FALSE else None
    return None


# -- in words -------------------------------------------------------------------------------

_WORDS = {
    "=": "is",
    "!=": "is not",
    "<": "is below",
    "<=": "is at most",
    ">": "is above",
    ">=": "is at least",
    "in": "is one of",
    "not in": "is none of",
    "contains": "contains",
}


def describe(condition: Condition) -> str:
    """The condition as an analyst reads it, e.g. ``score is above 80 and country is one of US, CA``."""
    if isinstance(condition, AllOf):
        return "always" if not condition.items else " and ".join(_wrap(c) for c in condition.items)
    if isinstance(condition, AnyOf):
        return "never" if not condition.items else " or ".join(_wrap(c) for c in condition.items)
    if isinstance(condition, Not):
        return f"not ({describe(condition.item)})"
    if condition.op == "is missing":
        return f"{condition.field} is missing"
    if condition.op == "between":
        low, high = condition.value  # type: ignore[misc,str-unpack]
        return f"{condition.field} is between {low:g} and {high:g}"
    value = condition.value
    shown = ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return f"{condition.field} {_WORDS[condition.op]} {shown}"


def _wrap(condition: Condition) -> str:
    text = describe(condition)
    return f"({text})" if isinstance(condition, AllOf | AnyOf) and len(condition.items) > 1 else text
