"""The stage table the CLI runs from: stage name (as in dvc.yaml) -> stage module."""

from __future__ import annotations

import importlib
from typing import Any

from sentiment_pipeline.config.entities import PipelineConfig
from sentiment_pipeline.config.manager import ConfigurationManager
from sentiment_pipeline.paths import ProjectPaths

# Same names and modules as in dvc.yaml, in the DAG's topological order. Each module defines
# `section(config: PipelineConfig) -> its config` and `run(config, paths)`. Modules are
# imported only when their stage runs, so `config show` does not load torch or MLflow.
STAGES: dict[str, str] = {
    "source": "sentiment_pipeline.data.source",
    "ingest": "sentiment_pipeline.data.ingestion",
    "validate": "sentiment_pipeline.data.validation",
    "prepare": "sentiment_pipeline.data.preparation",
    "train_baseline": "sentiment_pipeline.models.baseline",
    "train_lightgbm": "sentiment_pipeline.models.lightgbm_tuning",
    "train_distilbert": "sentiment_pipeline.models.distilbert_training",
    "export_onnx": "sentiment_pipeline.models.onnx_export",
    "model_evaluation": "sentiment_pipeline.evaluation.model_evaluation",
    "register_model": "sentiment_pipeline.registry.register_model",
}


def run_stage(
    name: str, config: PipelineConfig | ConfigurationManager, paths: ProjectPaths
) -> Any:
    """Run one stage in this process: `module.run(module.section(config), paths)`."""
    if isinstance(config, ConfigurationManager):
        config = config.config
    module = importlib.import_module(STAGES[name])
    return module.run(module.section(config), paths)
