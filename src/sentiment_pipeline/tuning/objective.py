"""One trial of a tuned stage: fit, report to Optuna and the trial's MLflow run, keep if best."""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna

from sentiment_pipeline import tracking
from sentiment_pipeline.io import atomic_dir, write_json
from sentiment_pipeline.tuning import best as bests
from sentiment_pipeline.tuning import workers
from sentiment_pipeline.tuning.best import BEST_MODEL, BEST_RECORD, best_record
from sentiment_pipeline.tuning.progress import StudyProgress
from sentiment_pipeline.tuning.spec import P, TunedStage
from sentiment_pipeline.tuning.trial import TrialFailure, TrialResult

logger = logging.getLogger(__name__)


class OptunaReporter:
    """A TrialReporter for one Optuna trial: reports to Optuna and, through `log(metrics, step)`,
    to the trial's MLflow run."""

    def __init__(
        self,
        trial: optuna.Trial,
        progress: StudyProgress | None = None,
        log: Callable[[Mapping[str, float | None], int], None] | None = None,
    ) -> None:
        self.trial = trial
        self.progress = progress
        self.log = log

    def report(
        self, step: int, value: float, metrics: Mapping[str, float | None] | None = None
    ) -> bool:
        if self.log is not None:
            self.log({"val_macro_f1": value, **(metrics or {})}, step)
        self.trial.report(float(value), step=step)
        return self.trial.should_prune()

    def advance(self, done: int, total: int, samples: int | None = None) -> None:
        if self.progress is not None:
            self.progress.advance(done, total, samples, trial=self.trial.number)


def keep_if_best(
    stage: TunedStage,
    path: Path,
    trial: optuna.Trial,
    result: TrialResult,
    info: dict[str, Any],
    guard: tracking.LoggingGuard,
) -> None:
    """Keep the trial's model in `path` if it beats the one there, and log it with its content
    hash to the trial's MLflow run, so that a worker elsewhere can fetch the study's winner
    (which is always the best so far of the worker that trained it).

    Threads and processes sharing the project folder change it one at a time; the upload
    happens under the same lock, so the folder is not swapped while it is read.
    """
    with workers.file_lock(bests.best_lock(path)):
        record = best_record(path)
        if record is not None and result.value <= float(record["value"]):
            return
        with atomic_dir(path) as tmp:
            stage.save_model(result.model, tmp / BEST_MODEL, info)
            digest = stage.content_hash(tmp / BEST_MODEL) if stage.content_hash else None
            kept = {"number": trial.number, "value": result.value}
            write_json(tmp / BEST_RECORD, kept | ({"content_hash": digest} if digest else {}))
        logger.info("trial %d is the best so far (val macro-F1 %.4f); kept in %s",
                    trial.number, result.value, path)
        run_id = info["mlflow_run_id"]
        if run_id is not None:
            scope = f"trial {trial.number}"
            guard.call(scope, "model", bests.log_model, run_id, path / BEST_MODEL, digest)
        if digest is not None:
            trial.set_user_attr(bests.HASH_ATTR, digest)


def make_objective(
    stage: TunedStage[P],
    name: str,
    path: Path,
    progress: StudyProgress,
    guard: tracking.LoggingGuard,
    parent: Any = None,
    worker: str | None = None,
) -> Callable[[optuna.Trial], float]:
    """One trial: fit, report, record its state in its MLflow run, keep its model if best.

    MLflow calls go through `guard`: a server that stops answering costs the trial its logging,
    not its result. The trial's run is nested under `parent` when given (the stage run, which
    MLflow's thread-local active run does not show to a parallel trial's thread), else under the
    active run.
    """
    nest = {} if parent is None else {"parent": parent}

    def objective(trial: optuna.Trial) -> float:
        params = stage.suggest(trial)
        progress.start_trial(trial.number)
        scope = f"trial {trial.number}"
        tags = {"optuna_study": name, "optuna_trial": str(trial.number)}
        if worker is not None:
            tags["optuna_worker"] = worker
        state, start = "failed", time.perf_counter()
        with guard.child_run(
            scope, f"trial-{trial.number}", params=params.model_dump(mode="json"), tags=tags,
            **nest,
        ) as run_id:
            if run_id is not None:
                trial.set_user_attr("mlflow_run_id", run_id)
            log = functools.partial(guard.log_metrics, scope, run_id)
            try:
                result = stage.fit_one(params, OptunaReporter(trial, progress, log))
                for key, value in result.metrics.items():
                    trial.set_user_attr(key, value)
                log(dict(result.metrics))
                if result.pruned:
                    state = "pruned"
                elif not math.isfinite(result.value):
                    raise TrialFailure(
                        f"trial {trial.number} ended with val macro-F1 {result.value}: a "
                        "numerical failure (e.g. a NaN loss)"
                    )
                else:
                    log({"final_val_macro_f1": result.value})
                    info = {
                        "trial_number": trial.number,
                        "study_name": name,
                        "value": result.value,
                        "metrics": {"val_macro_f1": result.value, **result.metrics},
                        "params": params.model_dump(mode="json"),
                        "mlflow_run_id": run_id,
                    }
                    keep_if_best(stage, path, trial, result, info, guard)
                    state = "complete"
            finally:
                guard.set_tag(scope, run_id, "state", state)
                duration = time.perf_counter() - start
                trial.set_user_attr("duration_s", duration)
                log({"duration_s": duration})
        if state == "pruned":
            raise optuna.TrialPruned(f"trial {trial.number} pruned")
        return result.value

    return objective
