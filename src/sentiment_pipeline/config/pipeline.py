"""The whole params.yaml tree: every section's model, nested as the file nests them."""

from __future__ import annotations

from pydantic import Field

from sentiment_pipeline.config.aspect_baseline import AspectBaselineConfig
from sentiment_pipeline.config.aspects import AspectsDataConfig
from sentiment_pipeline.config.aspects_train import AspectsTrainConfig
from sentiment_pipeline.config.base import Frozen
from sentiment_pipeline.config.baseline import BaselineConfig
from sentiment_pipeline.config.data import DataConfig
from sentiment_pipeline.config.distilbert import DistilBERTConfig
from sentiment_pipeline.config.evaluation import EvaluationConfig
from sentiment_pipeline.config.export import OnnxExportConfig
from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.config.lightgbm import LightGBMConfig
from sentiment_pipeline.config.register import RegisterConfig
from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.config.split import SplitConfig


class ExportConfig(Frozen):
    onnx: OnnxExportConfig = Field(default_factory=OnnxExportConfig)


class TrainConfig(Frozen):
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)
    lightgbm: LightGBMConfig = Field(default_factory=LightGBMConfig)
    distilbert: DistilBERTConfig = Field(default_factory=DistilBERTConfig)
    aspects: AspectsTrainConfig = Field(default_factory=AspectsTrainConfig)
    aspect_baseline: AspectBaselineConfig = Field(default_factory=AspectBaselineConfig)


class PipelineConfig(Frozen):
    """The whole params.yaml tree."""

    data: DataConfig = Field(default_factory=DataConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    aspects: AspectsDataConfig = Field(default_factory=AspectsDataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    # `register` would shadow BaseModel's ABC method, hence the alias.
    register_: RegisterConfig = Field(default_factory=RegisterConfig, alias="register")
    export: ExportConfig = Field(default_factory=ExportConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    insights: InsightsConfig = Field(default_factory=InsightsConfig)
