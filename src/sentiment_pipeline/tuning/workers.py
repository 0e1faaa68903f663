"""Workers sharing one study: who they are, their sampler seeds, a lock across processes and
machines, and the heartbeat of a running trial."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

# Trial attributes: the worker that took it, and its heartbeat interval when it keeps one.
WORKER_ATTR, HEARTBEAT_ATTR = "worker", "heartbeat_s"
# Beside a SQLite database or journal file; not `.lock`, which Optuna's journal lock uses.
LOCK_SUFFIX = ".workers.lock"


def worker_id() -> str:
    """`<host>-<pid>`: unique among the live workers of a study, on any machine."""
    return f"{socket.gethostname()}-{os.getpid()}"


def worker_seed(seed: int, worker: str) -> int:
    """The configured seed mixed with the worker's id: workers never share a sampler's stream."""
    digest = hashlib.sha256(f"{seed}/{worker}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def lock_key(name: str) -> int:
    """A signed 64-bit key for PostgreSQL's advisory locks."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


# Threads of one process take the same lock one at a time before any other process: flock and
# PostgreSQL's session locks do not exclude a second holder in the same process or session.
_LOCAL: dict[str, threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


def _local_lock(key: str) -> threading.Lock:
    with _LOCAL_GUARD:
        return _LOCAL.setdefault(key, threading.Lock())


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created if missing) held by this thread until the block ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _local_lock(f"file:{path.resolve()}"), path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def journal_path(url: str) -> Path | None:
    """The log file of a `journal:///abs/path/file.log` (or `journal:relative.log`) URL, else
    None."""
    if not url.startswith("journal:"):
        return None
    path = url.removeprefix("journal:").removeprefix("//")
    if path.startswith("/"):
        path = "/" + path.lstrip("/")
    return Path(path) if path else None


@functools.lru_cache(maxsize=8)
def _lock_engine(url: str, connect_timeout: int) -> sqlalchemy.engine.Engine:
    return sqlalchemy.create_engine(
        url, pool_pre_ping=True, pool_size=1, connect_args={"connect_timeout": connect_timeout}
    )


@contextlib.contextmanager
def storage_lock(url: str, name: str, connect_timeout: int = 10) -> Iterator[None]:
    """Mutual exclusion of every worker of the storage `url` for the lock `name`.

    PostgreSQL: a session advisory lock (released by the server if the worker dies); MySQL:
    GET_LOCK; a SQLite database or journal file: flock on `<file>.workers.lock` beside it. Anything
    else (an in-memory database) is private to this process: a thread lock is enough.
    """
    key = f"{url}#{name}"
    with _local_lock(key):
        journal = journal_path(url)
        if journal is not None:
            with file_lock(journal.with_name(journal.name + LOCK_SUFFIX)):
                yield
            return
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            database = parsed.database
            if database and database != ":memory:" and not database.startswith("file:"):
                with file_lock(Path(database).with_name(Path(database).name + LOCK_SUFFIX)):
                    yield
                return
            yield
            return
        if backend not in ("postgresql", "mysql"):
            yield
            return
        with _database_lock(url, backend, name, connect_timeout):
            yield


@contextlib.contextmanager
def _database_lock(url: str, backend: str, name: str, connect_timeout: int) -> Iterator[None]:
    engine = _lock_engine(url, connect_timeout)
    with engine.connect() as connection:
        if backend == "postgresql":
            acquire = sqlalchemy.text("SELECT pg_advisory_lock(:key)")
            release = sqlalchemy.text("SELECT pg_advisory_unlock(:key)")
            args: dict[str, Any] = {"key": lock_key(name)}
        else:
            acquire = sqlalchemy.text("SELECT GET_LOCK(:key, -1)")
            release = sqlalchemy.text("SELECT RELEASE_LOCK(:key)")
            args = {"key": hashlib.sha256(name.encode()).hexdigest()[:60]}
        connection.execute(acquire, args)
        connection.commit()  # the lock is the session's, not the transaction's
        try:
            yield
        finally:
            with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
                connection.execute(release, args)
                connection.commit()


class Heartbeat:
    """Record a running trial's heartbeat every `interval` seconds, in a thread, until closed.

    Optuna's own heartbeat thread is private to study.optimize; the workers run trials with
    ask/tell. A heartbeat the storage refuses is logged once: the trial's own storage calls
    report the failure.
    """

    def __init__(self, storage: Any, trial_id: int, interval: float) -> None:
        self.storage = storage
        self.trial_id = trial_id
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{trial_id}",
                                       daemon=True)

    def _beat(self) -> None:
        warned = False
        while not self.stop.wait(self.interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception as exc:  # noqa: BLE001 - reported by the trial's own calls
                if not warned:
                    logger.warning("heartbeat of trial id %d not recorded: %s", self.trial_id, exc)
                    warned = True

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
