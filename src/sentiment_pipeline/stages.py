"""The stage table (name -> module and config section) and the `python -m` entry point."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

from sentiment_pipeline.config.manager import ConfigurationManager
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.paths import ProjectPaths

logger = logging.getLogger(__name__)

# Same names as in dvc.yaml; order is the DAG's topological order.
STAGES: dict[str, tuple[str, str]] = {
    "ingest": ("sentiment_pipeline.data.ingestion", "get_data_config"),
    "validate": ("sentiment_pipeline.data.validation", "get_data_config"),
    "prepare": ("sentiment_pipeline.data.preparation", "get_split_config"),
    "train_baseline": ("sentiment_pipeline.models.baseline", "get_baseline_config"),
    "train_lightgbm": ("sentiment_pipeline.models.lightgbm_tuning", "get_lightgbm_config"),
    "train_distilbert": ("sentiment_pipeline.models.distilbert_training", "get_distilbert_config"),
    "model_evaluation": ("sentiment_pipeline.evaluation.model_evaluation", "get_evaluation_config"),
    "register_model": ("sentiment_pipeline.registry.register_model", "get_register_config"),
}


def run_stage(name: str, manager: ConfigurationManager, paths: ProjectPaths) -> Any:
    """Import the stage module and call its `run(config, paths)` with its own config."""
    module_name, getter = STAGES[name]
    module = importlib.import_module(module_name)
    return module.run(getattr(manager, getter)(), paths)


def configure_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("sentiment_pipeline").setLevel(level)


def main(name: str) -> None:
    """`python -m sentiment_pipeline.<module>`: params.yaml in the working directory."""
    configure_logging(verbose="--verbose" in sys.argv[1:])
    try:
        manager = ConfigurationManager()
        result = run_stage(name, manager, ProjectPaths.at("."))
    except PipelineError as exc:
        logger.error("%s failed: %s", name, exc)
        sys.exit(exc.exit_code)
    logger.info("%s finished: %s", name, result)
