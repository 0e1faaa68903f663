"""What both prepare stages share: text normalisation, and a given split's texts kept apart."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

import pandas as pd

from sentiment_pipeline.config.data import PREDEFINED_SPLITS

KEY_OF = {split: key for key, split in PREDEFINED_SPLITS.items()}  # "test" -> "test_source"
_WHITESPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Unicode NFC, whitespace runs collapsed to one space, stripped."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def remove_overlap(
    pool: pd.DataFrame, given: Mapping[str, pd.DataFrame]
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], dict[str, dict[str, int]]]:
    """Drop from the training side every (normalised) text that a given split also holds.

    The order is the source < val < test: the source's rows whose text is in a given val or
    test split are dropped (before any split is carved from them), and so are a given val
    split's rows whose text is in a given test split; a given test split is never changed.
    Returns (pool, given, removed): removed counts the rows dropped, by the key of
    their source and then by the key of the split that holds their text (test before val).
    """
    given = dict(given)
    removed: dict[str, dict[str, int]] = {}
    if "val" in given and "test" in given:
        hit = given["val"]["text"].isin(set(given["test"]["text"]))
        removed["val_source"] = {"test_source": int(hit.sum())}
        given["val"] = given["val"][~hit].reset_index(drop=True)
    keep = pd.Series(True, index=pool.index)
    counts = {}
    for name in ("test", "val"):
        if name in given:
            hit = keep & pool["text"].isin(set(given[name]["text"]))
            counts[KEY_OF[name]] = int(hit.sum())
            keep &= ~hit
    if counts:
        removed = {"source": dict(sorted(counts.items(), reverse=True)), **removed}
    return pool[keep].reset_index(drop=True), given, removed
