"""The one reader of the processed-data contract: labels.json and the train/val/test splits."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd

from sentiment_pipeline.errors import DataError
from sentiment_pipeline.paths import ProjectPaths

FIX = "rerun the prepare stage"
COLUMNS = ["text", "label"]
_SHOWN = 5  # offending rows named in a message


def read_labels(paths: ProjectPaths) -> list[str]:
    """The ordered class names: a JSON list of at least two distinct non-empty strings."""
    path = paths.labels
    if not path.is_file():
        raise DataError(f"no labels file at {path}; run the prepare stage first")
    try:
        labels = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); {FIX}") from exc
    if not isinstance(labels, list):
        raise DataError(
            f"{path} must hold a JSON list of class names, found a {type(labels).__name__}: "
            f"{_short(labels)}; {FIX}"
        )
    bad = [(i, name) for i, name in enumerate(labels) if not isinstance(name, str) or not name]
    if bad:
        shown = ", ".join(f"[{i}] {name!r}" for i, name in bad[:_SHOWN])
        raise DataError(f"{path} holds class names that are not non-empty strings: {shown}; {FIX}")
    repeated = sorted({name for name in labels if labels.count(name) > 1})
    if repeated:
        raise DataError(f"{path} lists the class names {repeated} more than once; {FIX}")
    if len(labels) < 2:
        raise DataError(f"{path} must list at least 2 classes, found {labels!r}; {FIX}")
    return labels


def read_split(paths: ProjectPaths, name: str, labels: Sequence[str]) -> pd.DataFrame:
    """One split as (text: non-empty str, label: int64 id into `labels`), checked row by row.

    Every broken rule of the columns is named in one DataError (column, first rows, values).
    """
    path = paths.split(name)
    if not path.is_file():
        raise DataError(f"no {name} split at {path}; run the prepare stage first")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise DataError(
            f"cannot read {path} as Parquet ({type(exc).__name__}: {exc}); {FIX}"
        ) from exc
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise DataError(
            f"expected columns {COLUMNS} in {path}, found {list(frame.columns)} "
            f"(missing {missing}); {FIX}"
        )
    if frame.empty:
        raise DataError(f"{path} has no rows; the {name} split must not be empty; {FIX}")
    frame = frame[COLUMNS].reset_index(drop=True)
    problems = _text_problems(frame["text"]) + _label_problems(frame["label"], labels, paths)
    if problems:
        raise DataError(f"{path} breaks the processed-data contract: {'; '.join(problems)}; {FIX}")
    return pd.DataFrame(
        {"text": frame["text"].astype(object), "label": frame["label"].astype("int64")}
    )


def _text_problems(text: pd.Series) -> list[str]:
    text = text.astype(object).where(text.notna(), None)  # a missing value shows as None
    not_str = ~text.map(lambda v: isinstance(v, str)).astype(bool)
    empty = ~not_str & text.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
    problems = []
    if not_str.any():
        problems.append(f"column 'text' holds values that are not strings ({_rows(text, not_str)})")
    if empty.any():
        problems.append(f"column 'text' holds empty or blank texts ({_rows(text, empty)})")
    return problems


def _label_problems(label: pd.Series, labels: Sequence[str], paths: ProjectPaths) -> list[str]:
    if not pd.api.types.is_integer_dtype(label.dtype):
        return [f"column 'label' must hold integer class ids, found dtype {label.dtype}"]
    outside = (label < 0) | (label >= len(labels))
    if not outside.any():
        return []
    return [
        f"column 'label' holds ids outside 0..{len(labels) - 1} (the {len(labels)} classes "
        f"of {paths.labels}) ({_rows(label, outside)})"
    ]


def _rows(values: pd.Series, mask: pd.Series) -> str:
    """'2 rows, e.g. row 3: None, row 7: 5' for the rows where `mask` holds."""
    hits = values[mask]
    shown = ", ".join(f"row {i}: {_short(v)}" for i, v in hits.head(_SHOWN).items())
    return f"{len(hits)} row{'s' if len(hits) != 1 else ''}, e.g. {shown}"


def _short(value: object) -> str:
    text = repr(value.item() if hasattr(value, "item") else value)
    return text if len(text) <= 60 else f"{text[:57]}..."
