"""Optuna studies: what they are called, opening and resuming them, counting and claiming trials."""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from sentiment_pipeline.tuning import workers
from sentiment_pipeline.tuning.storage import CONNECT_TIMEOUT_S, heartbeat_interval, open_storage

logger = logging.getLogger(__name__)

STATES = ("complete", "pruned", "failed", "running", "waiting")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
KEY_ATTR = "study_key"


def state_name(state: TrialState) -> str:
    """complete, pruned, failed, running or waiting (the names used in reports and MLflow)."""
    name = state.name.lower()
    return "failed" if name == "fail" else name


def data_fingerprint(*frames: pd.DataFrame) -> str:
    """A stable hash of the text and label columns of the given frames, in order."""
    digest = hashlib.sha256()
    for frame in frames:
        hashed = pd.util.hash_pandas_object(frame[["text", "label"]], index=False)
        digest.update(str(len(frame)).encode())
        digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()[:16]


def study_name(prefix: str, key: Mapping[str, Any]) -> str:
    """`<prefix>-<hash of key>`: the key holds everything that changes what a trial measures."""
    payload = json.dumps(key, sort_keys=True, default=str)
    return f"{prefix}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def fail_stale_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> int:
    """Mark trials a killed run left RUNNING as FAIL; return how many.

    Only for a private storage: on a shared one those trials may belong to live workers.
    """
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in stale:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    if stale:
        logger.warning(
            "study %s: marked %d trial(s) left running by an interrupted run as failed",
            study.study_name, len(stale),
        )
    return len(stale)


def explain_new_study(
    storage: optuna.storages.BaseStorage, name: str, prefix: str, key: Mapping[str, Any]
) -> None:
    """Log why earlier studies of the same kind in this storage are not resumed."""
    earlier = [
        s for s in storage.get_all_studies()
        if s.study_name.startswith(f"{prefix}-") and s.study_name != name
    ]
    if not earlier:
        return
    for summary in earlier[-3:]:
        old = summary.user_attrs.get(KEY_ATTR)
        if old is None:
            why = "it was made before study keys were recorded, by an earlier version"
        else:
            changed = sorted(k for k in set(old) | set(key) if old.get(k) != key.get(k))
            why = f"these keys differ: {', '.join(changed)}"
        n_trials = len(
            storage.get_all_trials(
                storage.get_study_id_from_name(summary.study_name), deepcopy=False
            )
        )
        logger.info(
            "starting study %s afresh instead of resuming %s (%d trials): %s",
            name, summary.study_name, n_trials, why,
        )


def open_study(
    name: str,
    url: str,
    *,
    shared: bool,
    pruner: optuna.pruners.BasePruner,
    seed: int,
    n_startup_trials: int = 10,
    prefix: str | None = None,
    key: Mapping[str, Any] | None = None,
    worker: str | None = None,
    storage: optuna.storages.BaseStorage | None = None,
) -> optuna.Study:
    """Create or resume a maximising study; a rerun continues where the last one stopped.

    `key` (what the name hashes) is recorded on a new study, so that a later study of the same
    `prefix` that cannot resume it can say which setting changed. On a shared storage the
    sampler's seed is mixed with `worker` (workers never propose the same parameters because
    they share a seed); a private one stays reproducible. `storage`: the one opened at `url`.
    """
    storage = storage or open_storage(url)
    with workers.storage_lock(url, f"study:{name}", CONNECT_TIMEOUT_S):
        try:
            storage.get_study_id_from_name(name)
            exists = True
        except KeyError:
            exists = False
        study = optuna.create_study(
            study_name=name, storage=storage, direction="maximize", pruner=pruner,
            load_if_exists=True,
        )
        if not exists and key is not None:
            study.set_user_attr(KEY_ATTR, json.loads(json.dumps(key, default=str)))
            if prefix is not None:
                explain_new_study(storage, name, prefix, key)
    if shared:
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if running:
            logger.info("study %s: %d trial(s) running elsewhere", name, len(running))
    else:
        fail_stale_trials(study, storage)
    # Reseed by the trials already there, so a resumed study does not replay its first
    # random start-up points.
    seed = sampler_seed(seed + len(study.get_trials(deepcopy=False)), shared, worker)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # With other workers' trials running, TPE takes them as bad results meanwhile (the
        # "constant liar"), so that it does not propose points right next to them.
        study.sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=n_startup_trials, constant_liar=shared
        )
    return study


def sampler_seed(seed: int, shared: bool, worker: str | None) -> int:
    """`seed` for a private study; on a shared one, mixed with the worker's id."""
    return workers.worker_seed(seed, worker or workers.worker_id()) if shared else seed


def count_states(study: optuna.Study) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for trial in study.get_trials(deepcopy=False):
        counts[state_name(trial.state)] += 1
    return counts


def owed_trials(study: optuna.Study, n_trials: int) -> int:
    """Trials still owed: complete and pruned ones count as done, failed ones do not."""
    counts = count_states(study)
    return max(0, n_trials - counts["complete"] - counts["pruned"])


def has_complete_trial(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


@dataclass(frozen=True)
class Claim:
    """The outcome of asking the study for a trial: `trial` to run (with its storage id), or
    none; `wait` when trials of other workers still run and may die and be queued again."""

    trial: optuna.Trial | None = None
    trial_id: int | None = None
    wait: bool = False


def claim_trial(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    url: str,
    n_trials: int,
    worker: str | None = None,
) -> Claim:
    """Take the study's next trial, if it still owes one, under the study's lock.

    The study owes a trial while its finished (complete or pruned) and running trials number
    fewer than `n_trials`; counted and taken under one lock shared by every worker, so exactly
    `n_trials` finish however many workers ask (a failed trial is owed again). Trials of dead
    workers (no heartbeat for the grace period) are failed and queued again first; ask() takes
    a queued (waiting) trial before it creates one. The sampler runs when the trial's
    parameters are suggested, after the lock. The trial records `worker` and, with heartbeats,
    their interval: only such trials, which go stale when their worker dies, are waited for
    (a trial of a worker without heartbeats may run forever).
    """
    interval = heartbeat_interval(storage)
    with (
        workers.storage_lock(url, f"study:{study.study_name}", CONNECT_TIMEOUT_S),
        warnings.catch_warnings(),
    ):
        # Optuna's heartbeat functions are experimental, and it warns that heartbeats are meant
        # for study.optimize: the workers keep their own (workers.Heartbeat).
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
        if interval is not None:
            optuna.storages.fail_stale_trials(study)
        counts = count_states(study)
        finished = counts["complete"] + counts["pruned"]
        if finished + counts["running"] < n_trials:
            trial = study.ask()
            study_id = storage.get_study_id_from_name(study.study_name)
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            if worker is not None:
                trial.set_user_attr(workers.WORKER_ATTR, worker)
            if interval is not None:
                # Before the lock is released: a worker killed now leaves a trial that goes
                # stale, not one that runs forever.
                storage.record_heartbeat(trial_id)
                trial.set_user_attr(workers.HEARTBEAT_ATTR, interval)
            return Claim(trial, trial_id)
        beating = interval is not None and finished < n_trials and any(
            workers.HEARTBEAT_ATTR in t.user_attrs
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        )
    return Claim(wait=beating)
