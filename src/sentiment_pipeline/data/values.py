"""Raw values as readers and stages see them: missing, their type, numbers, undecodable bytes."""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

# A lone surrogate: an undecodable byte read with errors="surrogateescape" (U+DC80..U+DCFF),
# or a lone surrogate from a JSON escape; neither can be written as UTF-8 (Parquet, JSON).
_SURROGATE = re.compile("[\ud800-\udfff]")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def is_missing(value: object) -> bool:
    """None, NaN or pd.NA (scalar-safe: a list is not missing)."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def value_type(value: object) -> str | None:
    """The JSON name of a raw value's type ("string", "number", "object", ...); None if missing."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, numbers.Number):
        return "number"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple | np.ndarray):
        return "array"
    return type(value).__name__


def is_number_text(text: str) -> bool:
    """Whether `text` (blanks around it aside) writes a number: 7, -1.5, .5, 1e3."""
    return _NUMBER.fullmatch(text.strip()) is not None


def as_text(value: object) -> str | None:
    """A raw value as text: a string as is, any other value as JSON (None when missing).

    Undecodable bytes stay as they are (see has_undecodable and escape_undecodable).
    """
    if is_missing(value):
        return None
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=_plain)
    except (TypeError, ValueError):  # keys JSON cannot hold, a circular structure
        return str(value)


def _plain(value: object) -> object:
    """What json.dumps cannot write itself: NumPy arrays and scalars (from Parquet), the rest."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def map_values(column: pd.Series, function: Callable[[object], object]) -> pd.Series:
    """`column.map(function)` kept as Python objects (dtype object).

    pandas would store a result of strings as Arrow strings, which cannot hold undecodable
    bytes (lone surrogates).
    """
    return pd.Series([function(v) for v in column], index=column.index, dtype=object)


def has_undecodable(text: str) -> bool:
    """Whether `text` holds bytes that did not decode (or a lone surrogate)."""
    return _SURROGATE.search(text) is not None


def escape_undecodable(text: str) -> str:
    r"""`text` with each undecodable byte shown as \xNN and each lone surrogate as \uNNNN."""

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"

    return _SURROGATE.sub(escape, text)
