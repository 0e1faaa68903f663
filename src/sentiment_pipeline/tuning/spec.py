"""What a tuned stage hands the tuning core: the stage's callables, its study, its outputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import optuna
from pydantic import BaseModel

from sentiment_pipeline.tuning.trial import TrialReporter, TrialResult

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class TunedStage(Generic[P]):
    """What a tuned stage supplies to the core."""

    prefix: str  # study-name prefix and model name, e.g. "lightgbm"
    stage: str  # DVC stage and MLflow experiment, e.g. "train_lightgbm"
    suggest: Callable[[optuna.Trial], P]
    fit_one: Callable[[P, TrialReporter], TrialResult]
    # save_model(result.model, target folder, info): info has trial_number, study_name, value,
    # metrics, params and mlflow_run_id (the trial's run).
    save_model: Callable[[Any, Path, Mapping[str, Any]], None]
    trial_errors: tuple[type[BaseException], ...] = ()
    # The content hash of a saved model folder (models.artifacts.manifest.content_hash): logged
    # with the best model to MLflow, and checked when another worker fetches it from there.
    content_hash: Callable[[Path], str] | None = None


@dataclass(frozen=True)
class StudySpec:
    """The study a stage tunes: its key (what changes what a trial measures), budget, pruner."""

    key: Mapping[str, Any]
    n_trials: int
    timeout: float | None
    seed: int
    pruner: optuna.pruners.BasePruner
    n_startup_trials: int = 10
    # Trials run at once, each in its own thread of this process (see loop.TrialLoop).
    parallel_trials: int = 1


@dataclass(frozen=True)
class Outputs:
    """The DVC outs of a tuned stage."""

    model_dir: Path
    results_dir: Path
    metrics_path: Path
    details: Mapping[str, Any] = field(default_factory=dict)
