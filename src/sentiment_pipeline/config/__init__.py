"""Configuration: Pydantic models per stage and the ConfigurationManager that builds them."""

from sentiment_pipeline.config.entities import (
    BaselineConfig,
    DataConfig,
    DistilBERTConfig,
    EvaluationConfig,
    LightGBMConfig,
    PipelineConfig,
    RegisterConfig,
    SplitConfig,
    TfidfConfig,
)
from sentiment_pipeline.config.manager import ConfigurationManager

__all__ = [
    "BaselineConfig",
    "ConfigurationManager",
    "DataConfig",
    "DistilBERTConfig",
    "EvaluationConfig",
    "LightGBMConfig",
    "PipelineConfig",
    "RegisterConfig",
    "SplitConfig",
    "TfidfConfig",
]
