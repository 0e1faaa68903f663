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

import functools
import json
import logging
import math
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import mlflow
import optuna
from optuna.trial import TrialState
from pydantic import BaseModel

from sentiment_pipeline import tracking
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.io import atomic_dir, copy_dir, read_json, restore_aside, write_json
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.tuning import study as studies
from sentiment_pipeline.tuning.progress import StudyProgress
from sentiment_pipeline.tuning.results import TuningSummary, write_results
from sentiment_pipeline.tuning.trial import TrialFailure, TrialReporter, TrialResult

logger = logging.getLogger(__name__)

P = TypeVar("P", bound=BaseModel)
# Failures a trial may legitimately hit in any stage; a stage adds its own (e.g. CUDA OOM).
TRIAL_ERRORS: tuple[type[BaseException], ...] = (TrialFailure, MemoryError)
BEST_MODEL, BEST_RECORD = "model", "trial.json"


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


@dataclass(frozen=True)
class StudySpec:
    """The study a stage tunes: its key (what changes what a trial measures), budget, pruner."""

    key: Mapping[str, Any]
    n_trials: int
    timeout: float | None
    seed: int
    pruner: optuna.pruners.BasePruner
    n_startup_trials: int = 10
    # Trials run at once, each in its own thread of this process (see _run_parallel).
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


def best_dir(paths: ProjectPaths, prefix: str, study_name: str) -> Path:
    """Best-so-far model of a study; outside the DVC outs, which DVC deletes before a rerun."""
    return paths.root / ".optuna" / prefix / study_name / "best"


def best_record(path: Path) -> dict[str, Any] | None:
    """{"number", "value"} of the trial whose model is kept in `path`, or None."""
    try:
        record = read_json(path / BEST_RECORD)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not (path / BEST_MODEL).is_dir():
        return None
    return record


def reconcile_best(study: optuna.Study, path: Path) -> None:
    """Drop a best-so-far folder that no complete trial of the study accounts for.

    A run killed while swapping in a better trial's model left the previous one aside: it is
    put back first (the better trial, killed before it completed, does not count).
    """
    if restore_aside(path):
        logger.warning("%s: put back the best model a killed run had moved aside", path)
    record = best_record(path)
    complete = {
        t.number: t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    }
    if record is not None and complete.get(record.get("number")) == record.get("value"):
        return
    if path.exists():
        logger.warning("discarding %s: it belongs to no complete trial of %s", path,
                       study.study_name)
    shutil.rmtree(path, ignore_errors=True)


# Parallel trials compare and replace the best-so-far folder one at a time.
_BEST_LOCK = threading.Lock()


def _keep_if_best(
    stage: TunedStage, path: Path, trial: optuna.Trial, result: TrialResult, info: dict[str, Any]
) -> None:
    with _BEST_LOCK:
        record = best_record(path)
        if record is not None and result.value <= float(record["value"]):
            return
        with atomic_dir(path) as tmp:
            stage.save_model(result.model, tmp / BEST_MODEL, info)
            write_json(tmp / BEST_RECORD, {"number": trial.number, "value": result.value})
    logger.info("trial %d is the best so far (val macro-F1 %.4f); kept in %s",
                trial.number, result.value, path)


def make_objective(
    stage: TunedStage[P],
    name: str,
    path: Path,
    progress: StudyProgress,
    guard: tracking.LoggingGuard,
    parent: Any = None,
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
                    _keep_if_best(stage, path, trial, result, info)
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

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        state = studies.state_name(trial.state)
        best = study.best_value if studies.has_complete_trial(study) else None
        self.progress.finish_trial(trial.number, state, trial.value, best)
        if trial.state == TrialState.FAIL:
            self.failures += 1
            if self.failures >= self.max_failures:
                logger.error("%d trials failed in this run; stopping the study", self.failures)
                study.stop()


def _run_trials(
    stage: TunedStage,
    study: optuna.Study,
    spec: StudySpec,
    owed: int,
    path: Path,
    guard: tracking.LoggingGuard,
) -> None:
    progress = StudyProgress(stage.prefix, owed)
    # Every owed trial needs one finished (complete or pruned) trial; failed ones (out of
    # memory, NaN) may use a budget of as many again, shared by the whole run, after which the
    # study stops rather than loop on a trial that always fails.
    callbacks = _RunCallbacks(progress, max_failures=owed)
    parallel = spec.parallel_trials > 1 and owed > 1
    objective = make_objective(
        stage, study.study_name, path, progress, guard,
        parent=mlflow.active_run() if parallel else None,
    )
    try:
        if parallel:
            _run_parallel(study, objective, spec, owed, TRIAL_ERRORS + stage.trial_errors,
                          callbacks)
            return
        study.optimize(
            objective,
            n_trials=2 * owed,
            timeout=spec.timeout,
            catch=TRIAL_ERRORS + stage.trial_errors,
            callbacks=[
                optuna.study.MaxTrialsCallback(spec.n_trials, states=studies.FINISHED),
                callbacks,
            ],
            gc_after_trial=True,
        )
    finally:
        progress.close()


def _run_parallel(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    spec: StudySpec,
    owed: int,
    catch: tuple[type[BaseException], ...],
    callbacks: _RunCallbacks,
) -> None:
    """Up to spec.parallel_trials trials at once, each thread running one trial at a time.

    A thread starts a trial only while the finished (complete or pruned) trials of this run plus
    those running stay below `owed` (and the study itself still owes trials, for workers sharing
    it), so exactly `owed` trials finish, unlike Optuna's n_jobs with MaxTrialsCallback, which
    overshoots by the trials still running. Each trial is study.optimize(n_trials=1) in its
    thread, which keeps the seeded sampler (Optuna's n_jobs reseeds it at random); the sampler
    then proposes a trial without the results of those still running. The failure budget and
    the timeout (no trial started after it) are those of the sequential run.
    """
    lock = threading.Lock()
    deadline = None if spec.timeout is None else time.monotonic() + spec.timeout
    tally = {"running": 0, "finished": 0}
    stop = threading.Event()

    def claim() -> bool:
        with lock:
            if stop.is_set() or callbacks.failures >= callbacks.max_failures:
                return False
            if deadline is not None and time.monotonic() >= deadline:
                return False
            running = tally["running"]
            if tally["finished"] + running >= owed:
                return False
            if studies.owed_trials(study, spec.n_trials) - running <= 0:
                return False
            tally["running"] += 1
            return True

    def record(done: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        with lock:
            tally["running"] -= 1
            tally["finished"] += trial.state in studies.FINISHED
            callbacks(done, trial)

    def worker() -> None:
        try:
            while claim():
                study.optimize(objective, n_trials=1, catch=catch, callbacks=[record],
                               gc_after_trial=True)
        except BaseException:
            stop.set()  # the other threads finish their trial and start no other
            raise

    workers = min(spec.parallel_trials, owed)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trial")
    futures = [pool.submit(worker) for _ in range(workers)]
    try:
        wait(futures)  # once a thread fails, the others stop after their running trial
    except BaseException:
        stop.set()  # e.g. Ctrl-C here: the running trials end and no other starts
        raise
    finally:
        pool.shutdown(wait=False)
    for future in futures:
        future.result()  # a thread's error (a bug, a lost storage) is raised here


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
    study = studies.open_study(
        name, storage, shared=shared, pruner=spec.pruner, seed=spec.seed,
        n_startup_trials=spec.n_startup_trials, prefix=stage.prefix, key=spec.key,
    )
    path = best_dir(paths, stage.prefix, name)
    storage_failures = functools.partial(studies.storage_failures, storage, name, path)
    with storage_failures():
        reconcile_best(study, path)
        owed = studies.owed_trials(study, spec.n_trials)
        before = len(study.get_trials(deepcopy=False))
    logger.info("study %s (%s): %d of %d trials owed", name, studies.redact(storage), owed,
                spec.n_trials)
    guard = tracking.LoggingGuard(tracking.tracking_uri(paths))
    scope = tracking.STAGE_SCOPE
    with (
        tracking.stage_run(
            stage.stage, config, paths, run_name=f"{stage.stage} {name}", guard=guard
        ) as run,
        storage_failures(),
    ):
        guard.call(scope, "tags", mlflow.set_tags,
                   {"optuna_study": name, "optuna_storage": studies.redact(storage)})
        if owed:
            _run_trials(stage, study, spec, owed, path, guard)
        counts = studies.count_states(study)
        if not studies.has_complete_trial(study):
            raise PipelineError(
                f"no trial of study {name} in {studies.redact(storage)} completed ({counts}); "
                f"see the failed trials' runs in MLflow experiment "
                f"{tracking.experiment_name(stage.stage)}, fix the cause and rerun"
            )
        best = study.best_trial
        record = best_record(path)
        if record is None or record.get("number") != best.number:
            raise PipelineError(
                f"the model of the best trial {best.number} of study {name} is missing from "
                f"{path}; delete the study (optuna delete-study --study-name {name} "
                f"--storage {studies.redact(storage)}) and rerun"
            )
        summary = TuningSummary(
            status="trained",
            study_name=name,
            storage=studies.redact(storage),
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
