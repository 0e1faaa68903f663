"""Run a stage as `dvc repro` does, in a subprocess, and SIGKILL it in the middle.

Two ways to reach "the middle":
- by watching from outside (the Optuna storage, the MLflow store): `Stage(root, module)` runs
  `python -m <module>` exactly as dvc.yaml does;
- at a chosen call: `Stage(root, module, pause_at="pkg.mod:function", call=N)` runs this file,
  which wraps `function` so that its N-th call (optionally only counting calls whose first
  argument matches `match`) writes PAUSED in the project and sleeps there, before doing
  anything (or, with `after`, once it has returned), until the test kills the process. The
  kill then lands at a known point, e.g. with a temporary report folder half-written, a model
  version created and its alias not yet moved, or a folder swap half done.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import os
import re
import runpy
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
PAUSED = ".crash-paused"  # written in the project by the process the hook paused
POLL_S = 0.02


def stage_env(root: Path) -> dict[str, str]:
    """The environment of a stage process: the project's own SQLite MLflow store, the private
    Optuna storage, one thread per library (two cores are shared by the whole suite)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMENT_PIPELINE_")}
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlruns.db'}",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
    )
    return env


class Stage:
    """One stage process in the project `root`, its output in a log file beside the project."""

    count = 0

    def __init__(
        self,
        root: Path,
        module: str,
        pause_at: str | None = None,
        call: int = 1,
        match: str | None = None,
        after: bool = False,
    ) -> None:
        Stage.count += 1
        self.root = root
        self.module = module
        self.log = root.parent / f"{module.rsplit('.', 1)[-1]}-{Stage.count}.log"
        (root / PAUSED).unlink(missing_ok=True)
        if pause_at is None:
            command = [sys.executable, "-m", module]
        else:
            command = [sys.executable, str(HERE), "--pause-at", pause_at, "--call", str(call),
                       *(["--match", match] if match else []), *(["--after"] if after else []),
                       module]
        self.started = time.monotonic()
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                command, cwd=root, env=stage_env(root), stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float = 180.0) -> Any:
        """Poll `condition` until it is truthy; fail if the stage ends first or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.module} ended (exit {self.process.returncode}) before {what}:\n"
                    f"{self.output()}"
                )
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"no {what} within {timeout} s:\n{self.output()}")
            time.sleep(POLL_S)

    def wait_paused(self, timeout: float = 180.0) -> None:
        self.wait_for((self.root / PAUSED).exists, "the pause point", timeout)

    def kill(self) -> float:
        """SIGKILL, as the OOM killer or a lost machine would; the seconds the stage ran."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        assert self.process.returncode == -signal.SIGKILL, self.output()
        (self.root / PAUSED).unlink(missing_ok=True)
        return time.monotonic() - self.started

    def finish(self, timeout: float = 300.0) -> float:
        """Wait for a successful end; the seconds the stage ran."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.module} still running after {timeout} s:\n"
                                 f"{self.output()}") from None
        assert self.process.returncode == 0, self.output()
        return time.monotonic() - self.started


# --- looking at the stores from outside, while the stage writes them ---------------------------


def query(db: Path, sql: str, *args: Any) -> list[tuple]:
    """Rows of a read-only query on a SQLite store another process is writing; [] until the
    file and its tables exist."""
    if not db.exists():
        return []
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        ) as connection:
            return connection.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # no such table yet, or locked past the timeout
        return []


def trial_states(optuna_db: Path, study_prefix: str) -> list[str]:
    """States (COMPLETE, PRUNED, FAIL, RUNNING, WAITING) of the trials of the study whose name
    starts with `study_prefix`, in trial order."""
    rows = query(
        optuna_db,
        "SELECT t.state FROM trials t JOIN studies s ON s.study_id = t.study_id "
        "WHERE s.study_name LIKE ? ORDER BY t.number",
        f"{study_prefix}-%",
    )
    return [row[0] for row in rows]


def study_names(optuna_db: Path) -> list[str]:
    return [row[0] for row in query(optuna_db, "SELECT study_name FROM studies")]


def finished(states: Iterable[str]) -> int:
    return sum(state in ("COMPLETE", "PRUNED") for state in states)


def runs(mlflow_db: Path, experiment: str) -> list[tuple[str, str]]:
    """(run id, status) of the runs of one experiment."""
    return query(
        mlflow_db,
        "SELECT r.run_uuid, r.status FROM runs r JOIN experiments e "
        "ON e.experiment_id = r.experiment_id WHERE e.name = ?",
        experiment,
    )


# --- what is on disk ---------------------------------------------------------------------------


def tree_hash(path: Path) -> str | None:
    """A hash of a file, or of a folder's relative names and file contents; None if absent."""
    if not path.exists():
        return None
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def snapshot(paths: Iterable[Path]) -> dict[Path, str | None]:
    return {path: tree_hash(path) for path in paths}


def temporaries(folder: Path) -> list[Path]:
    """What atomic writes left behind in `folder`: hidden `.<name>.*.tmp` siblings and the
    `.<name>.old-<pid>` of a swap."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.name.startswith(".") and (
            p.name.endswith(".tmp") or ".old-" in p.name
        )
    )


# --- the paused process ------------------------------------------------------------------------


def install_pause(
    target: str, call: int, marker: Path, match: str | None = None, after: bool = False
) -> None:
    """Wrap `module:function` so that its `call`-th call writes `marker` and sleeps (`after`:
    once the function has returned); with `match`, only calls whose first argument (as a
    string) matches the regular expression count."""
    module_name, _, name = target.partition(":")
    module = importlib.import_module(module_name)
    original = getattr(module, name)
    calls = 0

    def paused(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        if match is not None and not (args and re.search(match, str(args[0]))):
            return original(*args, **kwargs)
        calls += 1
        if calls != call:
            return original(*args, **kwargs)
        if after:
            original(*args, **kwargs)
        marker.write_text(str(os.getpid()))
        while True:  # until SIGKILL
            time.sleep(1)

    setattr(module, name, paused)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="run a stage module, pausing at one call")
    parser.add_argument("--pause-at", required=True, help="module:function")
    parser.add_argument("--call", type=int, default=1, help="which call pauses (1: the first)")
    parser.add_argument("--match", help="count only calls whose first argument matches this")
    parser.add_argument("--after", action="store_true", help="pause once the call returned")
    parser.add_argument("module", help="the stage module, as in `python -m <module>`")
    args = parser.parse_args(argv)
    sys.path[0] = os.getcwd()  # as `python -m` has it, not this file's folder
    install_pause(args.pause_at, args.call, Path.cwd() / PAUSED, args.match, args.after)
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="runpy")
    sys.argv = [args.module]  # the stage parses its own (empty) command line
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
