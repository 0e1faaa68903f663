"""The transformer's view of the data: subsample, tokenise once per study, pad per batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from transformers import DataCollatorWithPadding

from sentiment_pipeline.models.distilbert.device import Precision


def subsample(frame: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """At most `n` rows drawn at random (seeded), in their original order."""
    if n is None or len(frame) <= n:
        return frame.reset_index(drop=True)
    return frame.sample(n=n, random_state=seed).sort_index().reset_index(drop=True)


class EncodedDataset(torch.utils.data.Dataset):
    """Token ids (unpadded) and labels; the collator pads each batch."""

    def __init__(self, encodings: Mapping[str, list[list[int]]], labels: Sequence[int]) -> None:
        self.encodings = {k: list(v) for k, v in encodings.items()}
        self.labels = [int(y) for y in labels]
        self.lengths = [len(ids) for ids in self.encodings["input_ids"]]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {k: v[index] for k, v in self.encodings.items()}
        item["labels"] = self.labels[index]
        return item


def encode(tokenizer: Any, frame: pd.DataFrame, max_length: int) -> EncodedDataset:
    """Tokenise a (text, label) frame once: truncation at max_length, no padding."""
    encodings = tokenizer(
        frame["text"].astype(str).tolist(),
        truncation=True,
        max_length=max_length,
        padding=False,
        return_token_type_ids=False,
    )
    return EncodedDataset(dict(encodings), frame["label"].tolist())


def collator(tokenizer: Any, precision: Precision = "fp32") -> DataCollatorWithPadding:
    """Dynamic padding to the longest text of each batch (multiples of 8 help tensor cores)."""
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if precision != "fp32" else None)
