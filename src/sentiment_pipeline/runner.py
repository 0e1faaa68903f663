"""The `python -m sentiment_pipeline.<stage module>` entry that DVC runs: parse, configure, run."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from sentiment_pipeline.config.entities import PipelineConfig
from sentiment_pipeline.config.manager import ConfigurationManager
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.logs import configure_logging
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.settings import get_settings

logger = logging.getLogger(__name__)

Section = TypeVar("Section", bound=BaseModel)


def main(
    stage: str,
    run: Callable[[Section, ProjectPaths], Any],
    section: Callable[[PipelineConfig], Section],
    argv: Sequence[str] | None = None,
) -> None:
    """Run one stage on ./params.yaml in the working directory, as `dvc repro` does.

    A PipelineError ends the process with its exit code (2: configuration, 1: the rest) and a
    one-line message; with --verbose (or SENTIMENT_PIPELINE_VERBOSE=true, which
    `sentiment-pipeline run --verbose` sets) the traceback follows, with its chain of causes.
    Any other exception is a bug and ends with Python's own traceback.
    """
    run, section = _by_module_name(run), _by_module_name(section)
    parser = argparse.ArgumentParser(
        prog=f"python -m {run.__module__}",
        description=f"Run the {stage} stage with ./params.yaml (what `dvc repro` calls).",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging, library progress bars and the full traceback of an error",
    )
    verbose = parser.parse_args(argv).verbose or get_settings().verbose
    configure_logging(verbose)
    try:
        config = ConfigurationManager().config
        result = run(section(config), ProjectPaths.at("."))
    except PipelineError as exc:
        logger.error("%s failed: %s", stage, exc, exc_info=exc if verbose else None)
        sys.exit(exc.exit_code)
    logger.info("%s finished: %s", stage, result)


def _by_module_name(function: Callable) -> Callable:
    """The same function from its module imported by name, when `python -m` ran it as __main__.

    Then the stage's logger is `sentiment_pipeline.<module>` (whose level is set here) rather
    than `__main__`, and the module is loaded once, as under `sentiment-pipeline stage`.
    """
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if function.__module__ != "__main__" or spec is None:
        return function
    return getattr(importlib.import_module(spec.name), function.__name__)
