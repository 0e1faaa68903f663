"""train.lightgbm: TF-IDF + LightGBM tuned with Optuna (train_lightgbm)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from sentiment_pipeline.config.base import Frozen, auto_or_count, ordered_pair
from sentiment_pipeline.config.tfidf import TfidfConfig


class LightGBMConfig(Frozen):
    """TF-IDF + LightGBM tuned with Optuna (train_lightgbm stage)."""

    tfidf: TfidfConfig = Field(default_factory=TfidfConfig, description="TF-IDF features.")
    n_trials: int = Field(20, ge=1, description="Optuna trials owed by the study.")
    timeout: float | None = Field(None, gt=0, description="Stop starting trials after this (s).")
    seed: int = Field(42, ge=0, description="Seed of the sampler and of LightGBM.")
    imbalance: Literal["class_weight", "none"] = Field(
        "class_weight", description="'class_weight' weights rows by inverse class frequency."
    )
    pruner: Literal["median", "hyperband", "none"] = Field("median", description="Optuna pruner.")
    max_estimators: int = Field(1000, ge=1, description="Boosting rounds cap per trial.")
    early_stopping_rounds: int = Field(30, ge=1, description="Stop a trial after this many rounds")
    learning_rate: tuple[float, float] = Field((0.02, 0.3), description="Log-uniform bounds.")
    num_leaves: tuple[int, int] = Field((15, 127), description="Integer bounds.")
    min_child_samples: tuple[int, int] = Field((5, 100), description="Integer bounds.")
    colsample_bytree: tuple[float, float] = Field((0.3, 1.0), description="Uniform bounds.")
    reg_lambda: tuple[float, float] = Field((1e-3, 10.0), description="Log-uniform bounds.")
    threads: Literal["auto"] | int = Field(
        "auto",
        description="LightGBM (OpenMP) threads per trial; 'auto': chosen from the usable cores "
        "(1 on 2 cores or fewer). Not part of the study key.",
    )
    parallel_trials: Literal["auto"] | int = Field(
        "auto",
        description="Trials run at once in this process (threads); 'auto': chosen from the "
        "usable cores (1 on 2 cores or fewer). Not part of the study key.",
    )

    @field_validator("threads", "parallel_trials", mode="before")
    @classmethod
    def _auto_or_positive(cls, value: object) -> object:
        return auto_or_count(value)

    @field_validator("learning_rate", "reg_lambda")
    @classmethod
    def _positive_bounds(cls, value: tuple[float, float]) -> tuple[float, float]:
        return ordered_pair(value, low_positive=True)

    @field_validator("num_leaves", "min_child_samples")
    @classmethod
    def _int_bounds(cls, value: tuple[int, int]) -> tuple[int, int]:
        return ordered_pair(value, low_positive=True)

    @field_validator("colsample_bytree")
    @classmethod
    def _fraction_bounds(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] <= value[1] <= 1:
            raise ValueError(f"expected 0 < low <= high <= 1, got {list(value)}")
        return value
