"""The stage table: every stage of dvc.yaml, by name, in the DAG's order, and running one."""

from __future__ import annotations

import importlib
from typing import Any

from sentiment_pipeline.config.manager import section_of
from sentiment_pipeline.config.pipeline import PipelineConfig
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage

# Stage name (as in dvc.yaml) -> its module, which defines `STAGE` (a runner.Stage of that name)
# and is named after it. Modules are imported only when their stage is asked for, so
# `config show` does not load torch or MLflow. Nothing else in the package imports a stage
# module (an import-linter contract), so a stage's code changes only what DVC says it does.
STAGES: dict[str, str] = {
    "source": "sentiment_pipeline.data.source",
    "ingest": "sentiment_pipeline.data.ingest",
    "validate": "sentiment_pipeline.data.validate",
    "prepare": "sentiment_pipeline.data.prepare",
    "prepare_aspects": "sentiment_pipeline.data.prepare_aspects",
    "train_baseline": "sentiment_pipeline.models.train_baseline",
    "train_lightgbm": "sentiment_pipeline.models.train_lightgbm",
    "train_distilbert": "sentiment_pipeline.models.train_distilbert",
    "train_aspect_baseline": "sentiment_pipeline.models.train_aspect_baseline",
    "train_aspects": "sentiment_pipeline.models.train_aspects",
    "export_onnx": "sentiment_pipeline.models.export_onnx",
    "model_evaluation": "sentiment_pipeline.evaluation.model_evaluation",
    "register_model": "sentiment_pipeline.registry.register_model",
    "export_aspects_onnx": "sentiment_pipeline.models.export_aspects_onnx",
    "evaluate_aspects": "sentiment_pipeline.evaluation.evaluate_aspects",
    "register_aspects": "sentiment_pipeline.registry.register_aspects",
}


def stage(name: str) -> Stage:
    """The Stage object of a stage name (a KeyError for a name not in the table)."""
    return importlib.import_module(STAGES[name]).STAGE


def run_stage(name: str, config: PipelineConfig, paths: ProjectPaths) -> Any:
    """Run one stage in this process on its section of a validated configuration."""
    found = stage(name)
    return found.run(config_of(found, config), paths)


def config_of(found: Stage, config: PipelineConfig) -> Any:
    """A stage's configuration from the whole tree: its section, or its sections' model."""
    if isinstance(found.section, tuple):
        return found.config(**{name: section_of(config, name) for name in found.section})
    return section_of(config, found.section)
