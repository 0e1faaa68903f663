"""prepare_aspects' outputs as the aspect stages read them: labels, (text, aspect, label) splits."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd

from sentiment_pipeline.errors import DataError
from sentiment_pipeline.paths import ProjectPaths

FIX = "rerun the prepare_aspects stage"
COLUMNS = ["text", "aspect", "label"]
# The classes before prepare_aspects ran (or when it skipped without a labels file).
DEFAULT_LABELS = ["negative", "neutral", "positive"]


def read_aspect_labels(paths: ProjectPaths) -> list[str]:
    """The ordered class names of data/processed/aspects/labels.json (the defaults without it)."""
    path = paths.aspects_labels
    if not path.is_file():
        return list(DEFAULT_LABELS)
    try:
        labels = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); {FIX}") from exc
    if (
        not isinstance(labels, list) or len(labels) < 2
        or not all(isinstance(name, str) and name for name in labels)
        or len(set(labels)) != len(labels)
    ):
        raise DataError(
            f"{path} must hold a JSON list of at least 2 distinct class names, found "
            f"{str(labels)[:80]}; {FIX}"
        )
    return labels


def skipped_reason(paths: ProjectPaths) -> str | None:
    """prepare_aspects' reason when its report says it skipped (no aspect data), else None."""
    path = paths.aspects_report
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    if isinstance(report, dict) and report.get("status") == "skipped":
        return str(report.get("reason") or "prepare_aspects skipped")
    return None


def read_aspect_split(paths: ProjectPaths, name: str, labels: Sequence[str]) -> pd.DataFrame:
    """One split as (text, aspect: non-empty str, label: int64 id into `labels`); may be empty."""
    path = paths.aspects_split(name)
    if not path.is_file():
        raise DataError(f"no aspect {name} split at {path}; run the prepare_aspects stage first")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise DataError(f"cannot read {path} as Parquet ({type(exc).__name__}: {exc}); {FIX}") \
            from exc
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise DataError(f"expected columns {COLUMNS} in {path}, found {list(frame.columns)}; {FIX}")
    problems = []
    for column in ("text", "aspect"):
        bad = ~frame[column].map(lambda v: isinstance(v, str) and bool(v.strip())).astype(bool)
        if bad.any():
            problems.append(f"column {column!r} holds blank or non-string values in rows "
                            f"{frame.index[bad].tolist()[:5]}")
    label = frame["label"]
    if not pd.api.types.is_integer_dtype(label.dtype):
        problems.append(f"column 'label' must hold integer class ids, found dtype {label.dtype}")
    elif ((label < 0) | (label >= len(labels))).any():
        problems.append(f"column 'label' holds ids outside 0..{len(labels) - 1} ({list(labels)})")
    if problems:
        raise DataError(f"{path} breaks the aspect data contract: {'; '.join(problems)}; {FIX}")
    return pd.DataFrame({
        "text": frame["text"].astype(object), "aspect": frame["aspect"].astype(object),
        "label": frame["label"].astype("int64"),
    }).reset_index(drop=True)


def pairs_of(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """The (text, aspect) pairs of a split's rows."""
    return list(zip(frame["text"].tolist(), frame["aspect"].tolist(), strict=True))
