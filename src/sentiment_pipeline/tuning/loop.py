"""The trial loop of a study: claim a trial, run it, record it, until the study owes none."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from sentiment_pipeline.tuning import study as studies
from sentiment_pipeline.tuning import workers
from sentiment_pipeline.tuning.progress import StudyProgress
from sentiment_pipeline.tuning.spec import StudySpec
from sentiment_pipeline.tuning.storage import heartbeat_interval
from sentiment_pipeline.tuning.trial import TrialFailure

logger = logging.getLogger(__name__)

# Failures a trial may legitimately hit in any stage; a stage adds its own (e.g. CUDA OOM).
TRIAL_ERRORS: tuple[type[BaseException], ...] = (TrialFailure, MemoryError)
# A worker with nothing to take asks again this often while other workers' trials run: it sees
# the study end, or a dead worker's trial queued again, within this time.
WAIT_POLL_S = 1.0


class RunCallbacks:
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
class TrialLoop:
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
    callbacks: RunCallbacks
    worker: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    record_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        timeout = self.spec.timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.interval = heartbeat_interval(self.storage)

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
