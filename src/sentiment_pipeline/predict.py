"""Batch prediction with any model directory (used by the `predict` command)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from sentiment_pipeline.data.ingestion import read_table
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.paths import ProjectPaths


def read_texts(path: Path, column: str) -> list[str]:
    frame = read_table(path)
    if column not in frame.columns:
        raise DataError(
            f"expected a column {column!r} in {path}, found {list(frame.columns)}; "
            "pass --text-column"
        )
    return frame[column].fillna("").astype(str).tolist()


def predict_frame(
    model_dir: Path,
    texts: Sequence[str],
    *,
    trust: bool | None = None,
    project: ProjectPaths | None = None,
) -> pd.DataFrame:
    """One row per text: the text, the predicted label and one probability column per class.

    trust None: SENTIMENT_PIPELINE_TRUST_ARTIFACTS decides (see load_model).
    """
    model = load_model(model_dir, require_real=True, trust=trust, project=project)
    proba = model.predict_proba(list(texts))
    labels = [model.labels[i] for i in proba.argmax(axis=1)]
    frame = pd.DataFrame({"text": list(texts), "label": labels})
    for i, label in enumerate(model.labels):
        frame[f"p_{label}"] = proba[:, i]
    return frame
