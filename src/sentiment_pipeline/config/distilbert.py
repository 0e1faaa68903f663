"""train.distilbert: transformer fine-tuning tuned with Optuna (the keys train.aspects shares)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from sentiment_pipeline.config.base import Frozen, auto_or_count, ordered_pair


class FineTuneConfig(Frozen):
    """A transformer classifier fine-tuned and tuned with Optuna: what every such stage takes."""

    enable: bool = Field(True, description="false: skip training and write placeholders.")
    model_name_or_path: str = Field(
        "distilbert-base-uncased",
        min_length=1,
        description="Hugging Face hub id or local directory of the encoder checkpoint.",
    )
    device: Literal["auto", "cuda", "cpu"] = Field(
        "auto", description="'auto': CUDA when present; 'cuda' is an error without CUDA."
    )
    allow_cpu: bool = Field(
        False, description="Train on the CPU when no CUDA device is there (else skip)."
    )
    n_trials: int = Field(10, ge=1, description="Optuna trials owed by the study.")
    timeout: float | None = Field(None, gt=0, description="Stop starting trials after this (s).")
    lr: tuple[float, float] = Field((1e-5, 1e-4), description="Learning-rate bounds (log scale).")
    batch_size: list[int] = Field([16, 32], min_length=1, description="Batch-size choices.")
    weight_decay: tuple[float, float] = Field((0.0, 0.1), description="Weight-decay bounds.")
    epochs: tuple[int, int] = Field((2, 4), description="Epoch bounds (integers).")
    warmup_ratio: tuple[float, float] = Field((0.0, 0.1), description="Warm-up share bounds.")
    max_length: int = Field(128, ge=8, le=4096, description="Truncate texts to this many tokens.")
    group_by_length: bool = Field(True, description="Batch texts of similar length together.")
    evals_per_epoch: int = Field(
        2,
        ge=1,
        le=20,
        description="Validation passes (pruner reports) per epoch, at even fractions of it.",
    )
    pruner: Literal["median", "hyperband", "none"] = Field("median", description="Optuna pruner.")
    mixed_precision: Literal["auto", "bf16", "fp16", "no"] = Field(
        "auto", description="'auto': bf16 where the GPU supports it, else fp16; fp32 on the CPU."
    )
    max_train_samples: int | None = Field(None, ge=1, description="Use at most N training rows.")
    max_eval_samples: int | None = Field(None, ge=1, description="Use at most N validation rows.")
    eval_batch_size: int = Field(64, ge=1, description="Batch size for evaluation.")
    seed: int = Field(42, ge=0, description="Seed of the sampler, the trainer and subsampling.")
    @field_validator("lr")
    @classmethod
    def _lr_bounds(cls, value: tuple[float, float]) -> tuple[float, float]:
        return ordered_pair(value, low_positive=True)

    @field_validator("weight_decay", "warmup_ratio")
    @classmethod
    def _unit_bounds(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] <= value[1] < 1:
            raise ValueError(f"expected 0 <= low <= high < 1, got {list(value)}")
        return value

    @field_validator("epochs")
    @classmethod
    def _epoch_bounds(cls, value: tuple[int, int]) -> tuple[int, int]:
        return ordered_pair(value, low_positive=True)

    @field_validator("batch_size")
    @classmethod
    def _batch_sizes(cls, value: list[int]) -> list[int]:
        if any(b < 1 for b in value):
            raise ValueError(f"batch sizes must be >= 1, got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"batch sizes must be distinct, got {value}")
        return value


class DistilBERTConfig(FineTuneConfig):
    """Transformer fine-tuning tuned with Optuna (train_distilbert stage)."""

    nproc_per_node: Literal["auto"] | int = Field(
        1,
        description="Data-parallel processes `python -m` (dvc repro) starts the stage in, under "
        "torchrun on this node; 'auto': one per visible GPU. batch_size is per process. Ignored "
        "when torchrun / accelerate launch started the stage.",
    )

    @field_validator("nproc_per_node", mode="before")
    @classmethod
    def _processes(cls, value: object) -> object:
        return auto_or_count(value, most=1024)
