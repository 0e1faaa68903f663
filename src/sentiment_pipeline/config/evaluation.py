"""evaluation: test-set evaluation and champion selection (model_evaluation)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from sentiment_pipeline.config.base import Frozen


class EvaluationConfig(Frozen):
    """Test-set evaluation and champion selection (model_evaluation stage)."""

    models: list[Literal["baseline", "lightgbm", "distilbert"]] = Field(
        ["baseline", "lightgbm", "distilbert"], min_length=1, description="Models to evaluate."
    )
    primary_metric: Literal["macro_f1", "weighted_f1", "accuracy", "roc_auc_ovr"] = Field(
        "macro_f1", description="Metric that picks the champion (higher is better)."
    )
    latency_batch_size: int = Field(64, ge=1, description="Batch size of the latency timing.")
    behavioural_tests: bool = Field(True, description="Run the behavioural (CheckList) suite.")
    onnx_max_logit_diff: float = Field(
        1e-3, gt=0, description="fp32 ONNX parity: largest absolute logit difference allowed."
    )
    onnx_min_argmax_agreement: float = Field(
        0.999, gt=0, le=1, description="fp32 ONNX parity: share of test texts with equal argmax."
    )
    int8_max_metric_drop: float = Field(
        0.01, ge=0, le=1, description="int8 ONNX: largest drop of the primary metric allowed."
    )

    @field_validator("models")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"each model may be listed once, got {value}")
        return value
