"""The stage protocol: a Stage names its params.yaml section and its run; `python -m` runs it."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from sentiment_pipeline.config.loading import (
    DEFAULT_PARAMS,
    load_params,
    subtree,
    validate_section,
)
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.logs import configure_logging
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.settings import get_settings

logger = logging.getLogger(__name__)

C = TypeVar("C", bound=BaseModel)


@dataclass(frozen=True)
class Stage(Generic[C]):
    """One DVC stage: its name in dvc.yaml (also its module's name), the params.yaml section it
    reads, that section's model, and `run(config, paths)`, which reads the stage's inputs,
    writes its outputs and returns a small result.

    A stage that reads several top-level sections names them in a tuple; its model then has
    one field per section, named as the section (e.g. ("aspects", "split")).
    """

    name: str
    section: str | tuple[str, ...]  # dotted params.yaml key, e.g. "train.lightgbm"
    config: type[C]
    run: Callable[[C, ProjectPaths], Any]

    def read_config(self, params: Path = DEFAULT_PARAMS) -> C:
        """This stage's section of a params file, validated alone (DVC tracks only its keys)."""
        tree = load_params(params)
        if isinstance(self.section, tuple):
            parts = {name: subtree(tree, name) for name in self.section}
            return validate_section(self.config, parts, str(params))
        return validate_section(self.config, subtree(tree, self.section), str(params),
                                self.section)


def main(stage: Stage, argv: Sequence[str] | None = None) -> None:
    """Run one stage on ./params.yaml in the working directory, as `dvc repro` does.

    A PipelineError ends the process with its exit code (2: configuration, 1: the rest) and a
    one-line message; with --verbose (or SENTIMENT_PIPELINE_VERBOSE=true, which
    `sentiment-pipeline run --verbose` sets) the traceback follows, with its chain of causes.
    Any other exception is a bug and ends with Python's own traceback.
    """
    stage = _by_module_name(stage)
    parser = argparse.ArgumentParser(
        prog=f"python -m {stage.run.__module__}",
        description=f"Run the {stage.name} stage with ./params.yaml (what `dvc repro` calls).",
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
        result = stage.run(stage.read_config(), ProjectPaths.at("."))
    except PipelineError as exc:
        logger.error("%s failed: %s", stage.name, exc, exc_info=exc if verbose else None)
        sys.exit(exc.exit_code)
    logger.info("%s finished: %s", stage.name, result)


def _by_module_name(stage: Stage) -> Stage:
    """The same stage from its module imported by name, when `python -m` ran it as __main__.

    Then the stage's logger is `sentiment_pipeline.<module>` (whose level is set here) rather
    than `__main__`, and the module is loaded once, as under `sentiment-pipeline stage`.
    """
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if stage.run.__module__ != "__main__" or spec is None:
        return stage
    module = importlib.import_module(spec.name)
    return replace(module.STAGE, run=getattr(module, stage.run.__name__))
