"""Optuna studies: where they are stored, what they are called, resuming them, counting trials."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)

from sentiment_pipeline.errors import ConfigError, PipelineError
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.settings import Settings, get_settings
from sentiment_pipeline.tracking import chain, one_line
from sentiment_pipeline.tuning import workers
from sentiment_pipeline.urls import redact

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


def storage_url(paths: ProjectPaths, settings: Settings | None = None) -> tuple[str, bool]:
    """The Optuna storage and whether it is shared with other workers.

    SENTIMENT_PIPELINE_OPTUNA_STORAGE names a shared one; by default a private SQLite file
    in the project folder, outside the DVC outs (which DVC deletes before a rerun).
    """
    settings = settings or get_settings()
    if settings.optuna_storage:
        return settings.optuna_storage, True
    return f"sqlite:///{paths.optuna_db}", False


class StorageUnavailable(PipelineError):
    """The Optuna storage stopped answering during a study."""


def storage_failure(exc: BaseException) -> str | None:
    """Why the storage failed, when that is what `exc` comes from (Optuna's StorageInternalError
    or a lost database connection, however Optuna re-raised it); None for anything else."""
    links = list(chain(exc))
    if not any(
        isinstance(link, optuna.exceptions.StorageInternalError | OperationalError | InterfaceError)
        for link in links
    ):
        return None
    database = [link for link in links if isinstance(link, DBAPIError)]
    return one_line(database[-1].orig if database else links[-1])


@contextlib.contextmanager
def storage_failures(url: str, name: str, best: Path) -> Iterator[None]:
    """A storage that stops answering as StorageUnavailable naming it (redacted) and what is
    kept: the trials it recorded, and the best model so far in `best`."""
    try:
        yield
    except PipelineError:
        raise
    except Exception as exc:
        reason = storage_failure(exc)
        if reason is None:
            raise
        raise StorageUnavailable(
            f"the Optuna storage {redact(url)} stopped answering during study {name} ({reason}); "
            f"the trials it recorded are kept, and the best model so far in {best}; rerun once "
            "the database answers and the study resumes with the trials still owed"
        ) from exc


CONNECT_TIMEOUT_S = 10


def engine_kwargs(url: str) -> dict[str, Any]:
    """For a database server: replace a connection it dropped (a restart) rather than fail on
    it, and give up connecting after CONNECT_TIMEOUT_S unless the URL says otherwise."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in ("postgresql", "mysql"):
        return {}
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if "connect_timeout" not in parsed.query:
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    return kwargs


@dataclass(frozen=True)
class Heartbeats:
    """How a shared study tells a dead worker's trial from a slow one: each running trial
    records a heartbeat every `interval` s; one silent for `grace_period` s is failed and
    queued again (RetryHeartbeatStaleTrialCallback) for the next worker that asks."""

    interval: int
    grace_period: int


# A trial whose worker died this many times gets new parameters instead (they may be the cause).
MAX_RETRIES = 2
# Creating the schema: attempts when another worker's creation still collides (no lock there).
CREATE_ATTEMPTS = 5


def heartbeats(settings: Settings | None = None) -> Heartbeats | None:
    """The heartbeat settings of a shared study; None when switched off (interval 0)."""
    settings = settings or get_settings()
    if not settings.optuna_heartbeat_interval:
        return None
    interval = settings.optuna_heartbeat_interval
    return Heartbeats(interval, settings.optuna_grace_period or 2 * interval)


def _rdb_storage(url: str, beats: Heartbeats | None) -> optuna.storages.RDBStorage:
    kwargs: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if beats is not None:
            kwargs = {
                "heartbeat_interval": beats.interval,
                "grace_period": beats.grace_period,
                "heartbeat_stale_trial_callback": (
                    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)
                ),
            }
        for attempt in range(CREATE_ATTEMPTS):
            try:
                # Workers started together on a new database would all create Optuna's tables
                # and version rows; one at a time, the others find them made.
                with workers.storage_lock(url, "optuna-schema", CONNECT_TIMEOUT_S):
                    return optuna.storages.RDBStorage(
                        url, engine_kwargs=engine_kwargs(url), **kwargs
                    )
            except IntegrityError:
                if attempt == CREATE_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def open_storage(
    url: str, beats: Heartbeats | None = None
) -> optuna.storages.BaseStorage:
    """The Optuna storage at `url`: an RDB URL, or journal:///path/file.log (a journal file on
    a shared file system: no heartbeats there). `beats` only applies to an RDB storage."""
    journal = workers.journal_path(url)
    if journal is not None:
        try:
            backend = optuna.storages.journal.JournalFileBackend(str(journal))
        except OSError as exc:
            raise PipelineError(
                f"cannot open the Optuna journal {journal}: {exc}; check that its folder "
                "exists and is writable"
            ) from exc
        return optuna.storages.JournalStorage(backend)
    try:
        return _rdb_storage(url, beats)
    except (ImportError, ArgumentError) as exc:
        raise ConfigError(
            f"cannot use the Optuna storage {redact(url)!r} ({exc}); set "
            "SENTIMENT_PIPELINE_OPTUNA_STORAGE to an RDB URL such as sqlite:///optuna.db or "
            "postgresql+psycopg://user:password@host/db (with its driver installed: pip "
            "install 'sentiment-pipeline[postgres]'), or journal:///path/file.log, or unset it"
        ) from exc
    except OperationalError as exc:
        raise PipelineError(
            f"cannot open the Optuna storage {redact(url)!r}: {exc.orig}; check that the "
            "database is reachable and writable"
        ) from exc
    except IntegrityError as exc:
        raise PipelineError(
            f"cannot create Optuna's tables in {redact(url)!r}: other workers kept creating "
            f"them at the same time ({exc.orig}); start this worker again"
        ) from exc


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


def heartbeat_interval(storage: optuna.storages.BaseStorage) -> int | None:
    """Seconds between a running trial's heartbeats; None where the storage keeps none."""
    if isinstance(storage, optuna.storages.RDBStorage):
        return storage.get_heartbeat_interval()
    return None


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
