"""Pure functions from texts and chunks to predictions: the columns predict writes."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sentiment_pipeline.data.values import is_missing
from sentiment_pipeline.models.artifacts.manifest import SentimentModel

logger = logging.getLogger(__name__)


def prediction_columns(model: SentimentModel, texts: Sequence[str]) -> pd.DataFrame:
    """label, score (the label's probability) and one p_<class> column per class."""
    labels = list(model.labels)
    if len(texts) == 0:  # scikit-learn refuses an empty batch
        proba = np.zeros((0, len(labels)))
    else:
        proba = np.asarray(model.predict_proba(list(texts)), dtype=np.float64)
    best = proba.argmax(axis=1)
    frame = pd.DataFrame(
        {
            "label": pd.Series([labels[i] for i in best], dtype=object),
            "score": proba[np.arange(len(best)), best],
        }
    )
    for i, label in enumerate(labels):
        frame[f"p_{label}"] = proba[:, i]
    return frame


def predict_texts(model: SentimentModel, texts: Sequence[str]) -> pd.DataFrame:
    """One row per text: the text, the predicted label and one probability column per class."""
    frame = prediction_columns(model, texts).drop(columns="score")
    frame.insert(0, "text", list(texts))
    return frame


def output_columns(model: SentimentModel) -> list[str]:
    """The columns predict adds after the input's: label, score, p_<class>..., blank."""
    return ["label", "score", *(f"p_{label}" for label in model.labels), "blank"]


def text_values(column: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """The text column as strings (missing kept missing) and which rows are blank.

    Blank: missing, empty or only whitespace. A value that is not a string (a number in JSON)
    is classified as its text.
    """
    text = column.map(lambda v: None if is_missing(v) else str(v)).astype("string")
    blank = text.isna().to_numpy() | (text.fillna("").str.strip() == "").to_numpy()
    return text, blank


def first_long_text(column: pd.Series, max_chars: int) -> tuple[int, int] | None:
    """The position in `column` and the length of its first text over `max_chars`, if any."""
    text, _ = text_values(column)
    lengths = text.str.len().fillna(0).to_numpy()
    over = np.flatnonzero(lengths > max_chars)
    return (int(over[0]), int(lengths[over[0]])) if len(over) else None


def predict_chunk(
    model: SentimentModel, frame: pd.DataFrame, text_column: str, renames: dict[str, str]
) -> pd.DataFrame:
    """One output row per input row, in order: the input columns, then the predictions.

    A blank text is classified as the empty string and flagged in `blank`. `renames` moves
    input columns out of the way of the prediction columns (see plan_columns).
    """
    text, blank = text_values(frame[text_column])
    texts = ["" if is_blank else value for value, is_blank in zip(text, blank, strict=True)]
    predictions = prediction_columns(model, texts)
    predictions["blank"] = blank
    inputs = frame.assign(**{text_column: text}).rename(columns=renames)
    return pd.concat(
        [inputs.reset_index(drop=True), predictions.reset_index(drop=True)], axis=1
    )


def plan_columns(
    model: SentimentModel, columns: Sequence[str], keep_columns: bool, text_column: str
) -> tuple[list[str], dict[str, str]]:
    """The input columns to keep and the renames of those named like a prediction column.

    An input column `label` (say, the true label) becomes `input_label`.
    """
    kept = list(columns) if keep_columns else [text_column]
    taken = set(output_columns(model))
    renames: dict[str, str] = {}
    for name in kept:
        if name in taken:
            new = f"input_{name}"
            while new in taken or new in kept:
                new = f"input_{new}"
            renames[name] = new
            taken.add(new)
    if renames:
        logger.warning("input columns renamed so the predictions can take their names: %s", renames)
    return kept, renames
