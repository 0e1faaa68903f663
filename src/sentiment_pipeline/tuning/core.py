"""optimize(): the one trial loop of every tuned stage.

A tuned stage supplies its search space (`suggest`, returning a frozen parameter model), how to
fit one trial (`fit_one(params, reporter) -> TrialResult`) and how to save a model; the core
opens or resumes the study, owes the right number of trials, runs each one as a nested MLflow
run under one parent, keeps the best model so far outside the DVC outs, handles pruned, failed
and stale trials the same way for every stage, shows progress and writes one result schema.

A tracking server that stops answering does not stop the study: what could not be logged is
recorded, the outputs are written, and the stage then fails saying what is missing. A storage
that stops answering ends the study at once; its recorded trials and the best model are kept.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import mlflow
import optuna
from optuna.trial import TrialState
from pydantic import BaseModel

from sentiment_pipeline import tracking
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.io import atomic_dir, copy_dir, write_json
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.tuning import best as bests
from sentiment_pipeline.tuning import study as studies
from sentiment_pipeline.tuning import workers
from sentiment_pipeline.tuning.best import (  # noqa: F401 - core.best_dir etc., as before
    BEST_MODEL,
    BEST_RECORD,
    best_dir,
    best_record,
    reconcile_best,
)
from sentiment_pipeline.tuning.progress import StudyProgress
from sentiment_pipeline.tuning.results import TuningSummary, write_results
from sentiment_pipeline.tuning.trial import TrialFailure, TrialReporter, TrialResult
from sentiment_pipeline.urls import redact

logger = logging.getLogger(__name__)

P = TypeVar("P", bound=BaseModel)
# Failures a trial may legitimately hit in any stage; a stage adds its own (e.g. CUDA OOM).
TRIAL_ERRORS: tuple[type[BaseException], ...] = (TrialFailure, MemoryError)
# A worker with nothing to take asks again this often while other workers' trials run: it sees
# the study end, or a dead worker's trial queued again, within this time.
WAIT_POLL_S = 1.0


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
    # Trials run at once, each in its own thread of this process (see _TrialLoop).
    parallel_trials: int = 1


@dataclass(frozen=True)
class Outputs:
    """The DVC outs of a tuned stage."""

    model_dir: Path
    results_dir: Path
    metrics_path: Path
    details: Mapping[str, Any] = field(default_factory=dict)


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
            self.progress.advance(done, total, samples)


def _keep_if_best(
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
                    _keep_if_best(stage, path, trial, result, info, guard)
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


class _RunCallbacks:
    """Progress after each trial, and the failure budget of this run."""

    def __init__(self, progress: StudyProgress, max_failures: int) -> None:
        self.progress = progress
        self.max_failures = max_failures
        self.failures = 0

    def exhausted(self) -> bool:
        return self.failures >= self.max_failures

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        state = studies.state_name(trial.state)
        best = study.best_value if studies.has_complete_trial(study) else None
        self.progress.finish_trial(trial.number, state, trial.value, best)
        if trial.state == TrialState.FAIL:
            self.failures += 1
            if self.exhausted():
                logger.error("%d trials failed in this run; stopping the study", self.failures)


@dataclass
class _TrialLoop:
    """Claim a trial from the study, run it, record it; until the study owes none.

    Every worker, and every thread of one (spec.parallel_trials), runs this loop against the
    shared study: studies.claim_trial counts and takes trials under the study's lock, so the
    study ends with exactly n_trials finished (complete or pruned) trials however many workers
    ask, unlike Optuna's MaxTrialsCallback, which overshoots by the trials still running. A
    failed trial is owed again, within the run's failure budget. With heartbeats (a shared RDB
    storage) a worker with nothing left to take waits while trials of other workers run: one
    whose worker dies goes stale, is queued again and taken here. No trial starts after the
    timeout. Trials run with ask/tell, which keeps the seeded sampler of the study.
    """

    study: optuna.Study
    storage: optuna.storages.BaseStorage
    url: str
    spec: StudySpec
    objective: Callable[[optuna.Trial], float]
    catch: tuple[type[BaseException], ...]
    callbacks: _RunCallbacks
    worker: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    record_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        timeout = self.spec.timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.interval = studies.heartbeat_interval(self.storage)

    def going(self) -> bool:
        if self.stop.is_set() or self.callbacks.exhausted():
            return False
        return self.deadline is None or time.monotonic() < self.deadline

    def work(self) -> None:
        """One thread's loop; an error stops the other threads after their running trial."""
        said = False
        try:
            while self.going():
                claim = studies.claim_trial(self.study, self.storage, self.url,
                                            self.spec.n_trials, self.worker)
                if claim.trial is None:
                    if not claim.wait:
                        return
                    if not said:
                        logger.info("study %s: no trial left to take; waiting for those "
                                    "running on other workers", self.study.study_name)
                        said = True
                    self.stop.wait(min(self.interval or WAIT_POLL_S, WAIT_POLL_S))
                    continue
                said = False
                frozen = self.run_one(claim.trial, claim.trial_id)
                with self.record_lock:
                    self.callbacks(self.study, frozen)
        except BaseException:
            self.stop.set()
            raise

    def run_one(self, trial: optuna.Trial, trial_id: int | None) -> optuna.trial.FrozenTrial:
        beat = (
            workers.Heartbeat(self.storage, trial_id, self.interval)
            if self.interval is not None and trial_id is not None
            else contextlib.nullcontext()
        )
        try:
            with beat:
                return self._run(trial)
        finally:
            gc.collect()

    def _run(self, trial: optuna.Trial) -> optuna.trial.FrozenTrial:
        tell = functools.partial(self.study.tell, trial, skip_if_finished=True)
        try:
            value = self.objective(trial)
        except optuna.TrialPruned:
            return tell(state=TrialState.PRUNED)
        except optuna.exceptions.UpdateFinishedTrialError:
            logger.warning(
                "trial %d was taken for dead (no heartbeat within the grace period) and "
                "queued again for another worker; its result here is dropped", trial.number,
            )
            return tell(state=TrialState.FAIL)
        except self.catch as exc:
            logger.warning("trial %d failed: %s: %s", trial.number, type(exc).__name__, exc)
            return tell(state=TrialState.FAIL)
        except BaseException:
            with contextlib.suppress(Exception):
                tell(state=TrialState.FAIL)
            raise
        return tell(value)

    def run(self) -> None:
        threads = self.spec.parallel_trials
        if threads <= 1:
            self.work()
            return
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="trial")
        futures = [pool.submit(self.work) for _ in range(threads)]
        try:
            wait(futures)  # once a thread fails, the others stop after their running trial
        except BaseException:
            self.stop.set()  # e.g. Ctrl-C here: the running trials end and no other starts
            raise
        finally:
            pool.shutdown(wait=False)
        for future in futures:
            future.result()  # a thread's error (a bug, a lost storage) is raised here


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
    progress = StudyProgress(stage.prefix, owed)
    # Every owed trial needs one finished (complete or pruned) trial; failed ones (out of
    # memory, NaN) may use a budget of as many again, shared by the whole run, after which the
    # study stops rather than loop on a trial that always fails.
    callbacks = _RunCallbacks(progress, max_failures=owed)
    # The stage run is the parent of every trial's run: MLflow's thread-local active run does
    # not show it to a parallel trial's thread.
    objective = make_objective(
        stage, study.study_name, path, progress, guard, parent=mlflow.active_run(),
        worker=worker,
    )
    loop = _TrialLoop(
        study, storage, url, replace(spec, parallel_trials=min(spec.parallel_trials, owed)),
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

    Raises StorageUnavailable when the storage stops answering (what it recorded and the best
    model so far are kept), and TrackingUnavailable after publishing when MLflow stopped
    answering during the study (saying what was not logged).
    """
    start = time.perf_counter()
    name = studies.study_name(stage.prefix, spec.key)
    storage, shared = studies.storage_url(paths)
    worker = workers.worker_id()
    opened = studies.open_storage(storage, studies.heartbeats() if shared else None)
    study = studies.open_study(
        name, storage, shared=shared, pruner=spec.pruner, seed=spec.seed,
        n_startup_trials=spec.n_startup_trials, prefix=stage.prefix, key=spec.key,
        worker=worker, storage=opened,
    )
    path = best_dir(paths, stage.prefix, name)
    storage_failures = functools.partial(studies.storage_failures, storage, name, path)
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
