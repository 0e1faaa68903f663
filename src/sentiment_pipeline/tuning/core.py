"""optimize(): the one trial loop of every tuned stage, from opening the study to its results."""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import mlflow
import optuna
from pydantic import BaseModel

from sentiment_pipeline import tracking
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.io import copy_dir, write_json
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.tuning import best as bests
from sentiment_pipeline.tuning import storage as storages
from sentiment_pipeline.tuning import study as studies
from sentiment_pipeline.tuning import workers
from sentiment_pipeline.tuning.best import BEST_MODEL, best_dir, best_record, reconcile_best
from sentiment_pipeline.tuning.loop import TRIAL_ERRORS, RunCallbacks, TrialLoop
from sentiment_pipeline.tuning.objective import make_objective
from sentiment_pipeline.tuning.progress import StudyProgress
from sentiment_pipeline.tuning.results import TuningSummary, write_results
from sentiment_pipeline.tuning.spec import Outputs, StudySpec, TunedStage
from sentiment_pipeline.urls import redact

logger = logging.getLogger(__name__)


def _run_trials(
    stage: TunedStage,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    url: str,
    spec: StudySpec,
    owed: int,
    path: Path,
    guard: tracking.LoggingGuard,
    worker: str,
) -> None:
    parallel = min(spec.parallel_trials, owed)
    progress = StudyProgress(stage.prefix, owed, parallel=parallel)
    # Every owed trial needs one finished (complete or pruned) trial; failed ones (out of
    # memory, NaN) may use a budget of as many again, shared by the whole run, after which the
    # study stops rather than loop on a trial that always fails.
    callbacks = RunCallbacks(progress, max_failures=owed)
    # The stage run is the parent of every trial's run: MLflow's thread-local active run does
    # not show it to a parallel trial's thread.
    objective = make_objective(
        stage, study.study_name, path, progress, guard, parent=mlflow.active_run(),
        worker=worker,
    )
    loop = TrialLoop(
        study, storage, url, replace(spec, parallel_trials=parallel),
        objective, TRIAL_ERRORS + stage.trial_errors, callbacks, worker,
    )
    try:
        loop.run()
    finally:
        progress.close()


def optimize(
    stage: TunedStage,
    spec: StudySpec,
    config: BaseModel,
    paths: ProjectPaths,
    outputs: Outputs,
) -> TuningSummary:
    """Open or resume the study, run the trials it is owed, publish the best model and results.

    A tuned stage supplies its search space (`suggest`, returning a frozen parameter model), how
    to fit one trial (`fit_one(params, reporter) -> TrialResult`) and how to save a model; this
    owes the right number of trials, runs each one as a nested MLflow run under one parent,
    keeps the best model so far outside the DVC outs, handles pruned, failed and stale trials
    the same way for every stage, shows progress and writes one result schema.

    A tracking server that stops answering does not stop the study: what could not be logged is
    recorded, the outputs are written, and then TrackingUnavailable says what is missing. A
    storage that stops answering ends the study at once with StorageUnavailable; the trials it
    recorded and the best model so far are kept.
    """
    start = time.perf_counter()
    name = studies.study_name(stage.prefix, spec.key)
    storage, shared = storages.storage_url(paths)
    worker = workers.worker_id()
    opened = storages.open_storage(storage, storages.heartbeats() if shared else None)
    study = studies.open_study(
        name, storage, shared=shared, pruner=spec.pruner, seed=spec.seed,
        n_startup_trials=spec.n_startup_trials, prefix=stage.prefix, key=spec.key,
        worker=worker, storage=opened,
    )
    path = best_dir(paths, stage.prefix, name)
    storage_failures = functools.partial(storages.storage_failures, storage, name, path)
    with storage_failures():
        reconcile_best(study, path)
        owed = studies.owed_trials(study, spec.n_trials)
        before = len(study.get_trials(deepcopy=False))
    logger.info("study %s (%s): %d of %d trials owed", name, redact(storage), owed,
                spec.n_trials)
    guard = tracking.LoggingGuard(tracking.tracking_uri(paths))
    scope = tracking.STAGE_SCOPE
    with (
        tracking.stage_run(
            stage.stage, config, paths, run_name=f"{stage.stage} {name}", guard=guard
        ) as run,
        storage_failures(),
    ):
        guard.call(scope, "tags", mlflow.set_tags, {
            "optuna_study": name, "optuna_storage": redact(storage),
            "optuna_worker": worker,
        })
        if owed:
            _run_trials(stage, study, opened, storage, spec, owed, path, guard, worker)
        counts = studies.count_states(study)
        if not studies.has_complete_trial(study):
            raise PipelineError(
                f"no trial of study {name} in {redact(storage)} completed ({counts}); "
                f"see the failed trials' runs in MLflow experiment "
                f"{tracking.experiment_name(stage.stage)}, fix the cause and rerun"
            )
        best = bests.pick_best(study, best_record(path))
        if not bests.local_model_matches(path, best, stage.content_hash):
            # Trained by another worker (or this folder lost it): its MLflow run has it.
            bests.fetch_model(name, best, path, stage.content_hash, guard.uri)
        summary = TuningSummary(
            status="trained",
            study_name=name,
            storage=redact(storage),
            best_val_macro_f1=best.value,
            best_val_accuracy=best.user_attrs.get("val_accuracy"),
            best_params=best.params,
            best_trial=best.number,
            trials=counts,
            trials_run_now=len(study.get_trials(deepcopy=False)) - before,
            n_trials=spec.n_trials,
            mlflow_run_id=run.info.run_id,
            wall_seconds=round(time.perf_counter() - start, 3),
            train_samples_per_second=best.user_attrs.get("train_samples_per_second"),
            details=dict(outputs.details),
        )
        # The outputs first: they must not depend on the tracking server answering.
        write_results(study, outputs.results_dir, summary)
        copy_dir(path / BEST_MODEL, outputs.model_dir)
        write_json(outputs.metrics_path, summary.model_dump(mode="json"))
        guard.call(scope, "best params", mlflow.log_params,
                   {f"best.{k}": v for k, v in best.params.items()})
        summary_metrics = {
            "best_val_macro_f1": best.value,
            "best_val_accuracy": summary.best_val_accuracy,
            "best_trial": best.number,
            **{f"trials_{state}": n for state, n in counts.items()},
        }
        guard.call(scope, "summary metrics", tracking.log_metrics, summary_metrics)
        guard.call(scope, f"artifacts {outputs.results_dir.name}/", mlflow.log_artifacts,
                   str(outputs.results_dir), artifact_path=outputs.results_dir.name)
    guard.check(
        f"the best model and the results were saved ({outputs.model_dir}, "
        f"{outputs.results_dir}, {outputs.metrics_path}); rerun the stage once the server "
        "answers to log the study's summary (no trials are left to run)"
    )
    logger.info("best trial %d: val macro-F1 %.4f (%s)", best.number, best.value,
                json.dumps(best.params))
    return summary
