"""train.baseline: TF-IDF + LogisticRegression (train_baseline)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sentiment_pipeline.config.tfidf import TfidfConfig


class BaselineConfig(TfidfConfig):
    """TF-IDF + LogisticRegression baseline (train_baseline stage)."""

    C: float = Field(1.0, gt=0, description="Inverse regularisation strength.")
    class_weight: Literal["balanced"] | None = Field(
        "balanced", description="'balanced' re-weights classes by inverse frequency; null: none."
    )
    solver: Literal["lbfgs", "liblinear", "newton-cg", "saga", "sag"] = Field(
        "lbfgs", description="LogisticRegression solver."
    )
    max_iter: int = Field(1000, ge=1, description="Maximum solver iterations.")
