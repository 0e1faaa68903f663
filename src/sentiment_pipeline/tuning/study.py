"""Optuna studies: where they are stored, what they are called, resuming them, counting trials."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError

from sentiment_pipeline.errors import ConfigError, PipelineError
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.settings import Settings, get_settings
from sentiment_pipeline.tracking import chain

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


def redact(url: str) -> str:
    """A storage URL without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


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
    root = database[-1].orig if database else links[-1]
    text = " ".join(f"{type(root).__name__}: {root}".split())
    return text if len(text) <= 200 else f"{text[:197]}..."


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


def open_storage(url: str) -> optuna.storages.RDBStorage:
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url))
    except (ImportError, ArgumentError) as exc:
        raise ConfigError(
            f"cannot use the Optuna storage {redact(url)!r} ({exc}); set "
            "SENTIMENT_PIPELINE_OPTUNA_STORAGE to an RDB URL such as sqlite:///optuna.db or "
            "postgresql://user:password@host/db (with its driver installed), or unset it"
        ) from exc
    except OperationalError as exc:
        raise PipelineError(
            f"cannot open the Optuna storage {redact(url)!r}: {exc.orig}; check that the "
            "database is reachable and writable"
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
) -> optuna.Study:
    """Create or resume a maximising study; a rerun continues where the last one stopped.

    `key` (what the name hashes) is recorded on a new study, so that a later study of the same
    `prefix` that cannot resume it can say which setting changed.
    """
    storage = open_storage(url)
    try:
        storage.get_study_id_from_name(name)
        exists = True
    except KeyError:
        exists = False
    study = optuna.create_study(
        study_name=name, storage=storage, direction="maximize", pruner=pruner, load_if_exists=True
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
    study.sampler = optuna.samplers.TPESampler(
        seed=seed + len(study.get_trials(deepcopy=False)), n_startup_trials=n_startup_trials
    )
    return study


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
