"""register: the MLflow Model Registry name of the champion (register_model, serve, predict)."""

from __future__ import annotations

from pydantic import Field

from sentiment_pipeline.config.base import Frozen


class RegisterConfig(Frozen):
    """MLflow Model Registry registration of the champion (register_model stage)."""

    model_name: str = Field("sentiment-classifier", min_length=1, description="Registry name.")
    aspect_model_name: str = Field(
        "aspect-classifier", min_length=1, description="Registry name of the aspect champion."
    )
    min_score: float = Field(
        0.6, ge=0, le=1, description="Register only when the champion's test metric reaches this."
    )
