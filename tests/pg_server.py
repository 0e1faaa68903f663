"""A real PostgreSQL server on 127.0.0.1 for the tests that need one, started once per run.

The server binaries come from the machine (Debian's postgresql package puts them in
/usr/lib/postgresql/<version>/bin); without them the tests skip, or fail in CI (services.py).
PostgreSQL refuses to run as root: as root the server runs as the `postgres` user, in a data
folder it owns; trust authentication on the loopback only; stopped at the end of the run.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlflow_server import free_port
from services import unavailable

USER = "postgres"
_names = itertools.count()


def pg_bin() -> Path | None:
    """The folder of initdb/pg_ctl: PATH first, then the newest Debian install."""
    found = shutil.which("pg_ctl")
    if found and (Path(found).resolve().parent / "initdb").exists():
        return Path(found).resolve().parent  # a link on PATH to Debian's versioned folder
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(versions[-1]).parent if versions else None


@dataclass(frozen=True)
class PostgresServer:
    port: int
    bin: Path
    as_user: tuple[str, ...]  # the command prefix that runs a program as the server's user

    def url(self, database: str, driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://{USER}@127.0.0.1:{self.port}/{database}"

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.as_user, str(self.bin / program), *args],
            check=True, capture_output=True, text=True, timeout=60,
        )

    def create_database(self, prefix: str = "test") -> str:
        """A new, empty database; its name."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(_names)}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=USER, dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return name


def _as_user() -> tuple[str, ...]:
    if os.geteuid() != 0:
        return ()
    try:
        pwd.getpwnam(USER)
    except KeyError:
        unavailable(f"needs a '{USER}' user to run PostgreSQL as (tests run as root)")
    runuser = shutil.which("runuser")
    return (runuser, "-u", USER, "--") if runuser else ("su", USER, "-s", "/bin/sh", "-c")


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """initdb a temporary cluster, start it on a free port, yield it, stop and delete it."""
    binaries = pg_bin()
    if binaries is None:
        unavailable("needs the PostgreSQL server (initdb, pg_ctl: apt-get install postgresql)")
    as_user = _as_user()
    if as_user and as_user[0] == "su":
        unavailable("needs runuser to start PostgreSQL as its own user")
    # Not under pytest's tmp_path: its parents are private to root.
    root = Path(tempfile.mkdtemp(prefix="sp-postgres-"))
    data, log = root / "data", root / "server.log"
    if as_user:
        shutil.chown(root, USER)
    server = PostgresServer(free_port(), binaries, as_user)
    try:
        server.run("initdb", "-D", str(data), "-U", USER, "-A", "trust", "-E", "UTF8",
                   "--no-sync")
        options = (
            f"-c listen_addresses=127.0.0.1 -p {server.port} -k {root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        server.run("pg_ctl", "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60",
                   "start")
    except subprocess.CalledProcessError as exc:
        text = log.read_text() if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{text}") from exc
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            server.run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The PostgreSQL server of this test run."""
    with postgres_server() as server:
        yield server
