"""Tiny generated data sets with a learnable pattern, shared by the tests."""

from __future__ import annotations

import random

import pandas as pd

LABELS = ["negative", "neutral", "positive"]

_WORDS = {
    "negative": ["awful", "terrible", "hate", "broken", "worst", "rude", "delayed", "lost"],
    "neutral": ["flight", "today", "gate", "schedule", "ticket", "booking", "weather", "seat"],
    "positive": ["great", "love", "amazing", "thanks", "best", "friendly", "wonderful", "smooth"],
}
_FILLER = ["the", "my", "was", "crew", "airport", "this", "again", "service", "plane", "and"]


def make_comments(n: int = 120, seed: int = 0, raw_labels: dict | None = None) -> pd.DataFrame:
    """`n` short texts (distinct) whose class is given away by a cue word.

    raw_labels maps class name -> raw label (e.g. {"negative": -1, ...}); default: class names.
    """
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = LABELS[i % 3]
        words = [rng.choice(_FILLER) for _ in range(rng.randint(3, 8))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(_WORDS[label]))
        words.append(f"n{i}")  # keeps every text distinct
        raw = raw_labels[label] if raw_labels else label
        rows.append({"text": " ".join(words), "label": raw})
    return pd.DataFrame(rows)


def make_processed_splits(n: int = 240, seed: int = 0) -> dict[str, pd.DataFrame]:
    """train/val/test frames in the processed contract (text, label as int64 ids)."""
    frame = make_comments(n, seed)
    frame["label"] = frame["label"].map(LABELS.index).astype("int64")
    n_train, n_val = int(n * 0.6), int(n * 0.2)
    return {
        "train": frame.iloc[:n_train].reset_index(drop=True),
        "val": frame.iloc[n_train : n_train + n_val].reset_index(drop=True),
        "test": frame.iloc[n_train + n_val :].reset_index(drop=True),
    }
