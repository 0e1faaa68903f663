"""The Optuna storage: which one, opening it (with heartbeats on a shared one), its failures."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
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


def heartbeat_interval(storage: optuna.storages.BaseStorage) -> int | None:
    """Seconds between a running trial's heartbeats; None where the storage keeps none."""
    if isinstance(storage, optuna.storages.RDBStorage):
        return storage.get_heartbeat_interval()
    return None
