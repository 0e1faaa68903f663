"""TF-IDF features shared by the classical models (train.baseline, train.lightgbm.tfidf)."""

from __future__ import annotations

from pydantic import Field, field_validator

from sentiment_pipeline.config.base import Frozen, ordered_pair


class TfidfConfig(Frozen):
    """TF-IDF features shared by the classical models."""

    ngram_range: tuple[int, int] = Field((1, 2), description="Word n-gram range [min, max].")
    max_features: int | None = Field(10000, ge=1, description="Vocabulary size cap (null: none).")
    min_df: int = Field(2, ge=1, description="Ignore terms in fewer documents than this.")
    sublinear_tf: bool = Field(True, description="Use 1 + log(tf).")

    @field_validator("ngram_range")
    @classmethod
    def _check_ngrams(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] < 1:
            raise ValueError(f"n-grams start at 1, got {list(value)}")
        return ordered_pair(value)
