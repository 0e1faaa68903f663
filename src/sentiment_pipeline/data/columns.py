"""The raw contract: a source table's configured columns as text, label (and aspect) and flags."""

from __future__ import annotations

import logging
import numbers
import re

import pandas as pd

from sentiment_pipeline.config.data import LabelledSourceConfig
from sentiment_pipeline.data.values import (
    as_text,
    escape_undecodable,
    has_undecodable,
    is_missing,
    is_number_text,
    map_values,
    value_type,
)
from sentiment_pipeline.errors import DataError

logger = logging.getLogger(__name__)

_INTEGRAL = re.compile(r"[+-]?\d+(\.0*)?")


def label_string(value: object) -> str | None:
    """A raw label as an exact string: -1, -1.0 and "-1" all give "-1"; missing stays None."""
    if is_missing(value):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    text = str(value).strip()
    if _INTEGRAL.fullmatch(text):
        return str(int(text.split(".")[0]))
    return text


def select_columns(
    frame: pd.DataFrame, config: LabelledSourceConfig, where: str
) -> pd.DataFrame:
    """The raw contract from the configured source columns, one row per source row.

    `text`: the text; a value that is not a string as its JSON text, its type in `text_type`
    ("string", "number", "object", "array", ...; null when missing). `label`: the label as an
    exact string. Any other column the config reads (the aspect) as text, like the text.
    `undecodable`: one of them held bytes that the encoding does not decode, shown as \\xNN
    escapes. Validation rejects what is flagged here; nothing is dropped.
    """
    section, wanted = config.SECTION, config.columns()
    problems = [
        f"expected a column {column!r} in {where}, found {list(frame.columns)}; set "
        f"{section}.{key}"
        for key, column in wanted.values()
        if column not in frame.columns
    ]
    if problems:
        raise DataError("; ".join(problems))
    frame = frame.reset_index(drop=True)  # row numbers in messages count from 0
    values = frame[config.text_column]
    _check_holds_text(values, config.text_column, where, section)
    read = {
        name: map_values(frame[column], label_string if name == "label" else as_text)
        for name, (_, column) in wanted.items()
    }
    undecodable = pd.Series(False, index=frame.index)
    for column in read.values():
        undecodable |= _undecodable(column)
    raw = pd.DataFrame(
        {
            **{name: map_values(column, _escaped).astype("str") for name, column in read.items()},
            "text_type": map_values(values, value_type).astype("str"),
            "undecodable": undecodable.astype(bool),
        }
    )
    _warn_flagged(raw, where, config.encoding, section)
    return raw.reset_index(drop=True)


def _undecodable(column: pd.Series) -> pd.Series:
    return column.map(lambda v: isinstance(v, str) and has_undecodable(v)).astype(bool)


def _escaped(value: object) -> str | None:
    return escape_undecodable(value) if isinstance(value, str) else None


def _check_holds_text(values: pd.Series, column: str, where: str, section: str) -> None:
    """A text column of numbers only (an id or score column) is a configuration mistake."""
    present = values[~values.map(is_missing).astype(bool)]
    if present.empty:
        return
    numeric = present.map(
        lambda v: value_type(v) in ("number", "boolean")
        or (isinstance(v, str) and is_number_text(v))
    ).astype(bool)
    if numeric.all():
        raise DataError(
            f"the column {column!r} in {where} holds only numbers or booleans (e.g. "
            f"{present.iloc[0]!r}), no text; check that {section}.text_column names the column "
            "holding the text"
        )


def _warn_flagged(raw: pd.DataFrame, where: str, encoding: str, section: str) -> None:
    """Say at ingest time what validation will reject: undecodable rows, non-string texts."""
    bad = raw.index[raw["undecodable"]]
    if len(bad):
        example = raw.at[bad[0], "text"]  # shortened: a text may be megabytes long
        logger.warning(
            "%d rows of %s hold bytes that do not decode as %s (e.g. row %d: %r); validation "
            "rejects them as bad_encoding; if the whole file is in another encoding, set "
            "%s.encoding",
            len(bad), where, "UTF-8" if encoding == "auto" else encoding, bad[0],
            example[:80] if isinstance(example, str) else example, section,
        )
    odd = raw.index[raw["text_type"].notna() & (raw["text_type"] != "string")]
    if len(odd):
        logger.warning(
            "%d values of the text column in %s are not strings (e.g. row %d, %s %s); "
            "validation rejects them as non_string_text",
            len(odd), where, odd[0], raw.at[odd[0], "text_type"], raw.at[odd[0], "text"][:80],
        )
