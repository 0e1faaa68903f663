"""A fake aspect (pair) model: it reads the words near the aspect and counts its calls."""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np

LABELS = ["negative", "neutral", "positive"]
NEGATIVE_WORDS = {"awful", "terrible", "bad", "hate"}
POSITIVE_WORDS = {"great", "love", "good", "amazing"}
NEAR = 2  # words either side of the term


class FakePairModel:
    """Negative when a word of NEGATIVE_WORDS is within NEAR words of the aspect, positive for
    POSITIVE_WORDS, neutral otherwise; records every call's pairs."""

    def __init__(self, *, labels: list[str] | None = None, input: str = "pair") -> None:
        self.manifest = SimpleNamespace(name="fake-aspects", kind="sklearn", input=input,
                                        labels=labels or LABELS)
        self.calls: list[list[tuple[str, str]]] = []

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.labels)

    def predict_proba(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        self.calls.append([tuple(pair) for pair in pairs])
        rows = []
        for text, aspect in pairs:
            assert aspect in text, (text, aspect)  # the term as it occurs
            words = re.findall(r"\w+", text.lower())
            where = len(re.findall(r"\w+", text[: text.index(aspect)].lower()))
            near = set(words[max(0, where - NEAR): where + len(aspect.split()) + NEAR])
            k = 0 if near & NEGATIVE_WORDS else 2 if near & POSITIVE_WORDS else 1
            row = np.full(len(self.labels), 0.1 / max(len(self.labels) - 1, 1))
            row[min(k, len(self.labels) - 1)] = 0.9
            rows.append(row)
        return np.array(rows).reshape(len(pairs), len(self.labels))
