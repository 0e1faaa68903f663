"""Atomic writes: every artifact is written to a temporary sibling, then renamed into place."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from sentiment_pipeline.processes import alive

# Where Linux shows the process umask without changing it (since Linux 4.7).
PROC_STATUS = Path("/proc/self/status")
# How much of a target's name its hidden temporary siblings repeat: a name near the file
# system's limit (255 bytes) must not make the temporary name too long.
TEMP_NAME_CHARS = 40
_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system shows it (/proc).

    Elsewhere it is read by setting it and back; a thread creating a file in that instant gets
    the stricter 0o077, never a looser mode than it asked for.
    """
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a plain open() gives a new file: 0o666 less the umask."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """The mode a plain mkdir gives a new folder: 0o777 less the umask."""
    return 0o777 & ~current_umask()


def honour_umask(path: Path) -> None:
    """Give a file or folder made by tempfile (0o600 / 0o700) the mode the umask allows."""
    os.chmod(path, dir_mode() if path.is_dir() else file_mode())


def _temp_prefix(target: Path) -> str:
    return f".{target.name[:TEMP_NAME_CHARS]}."


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary file path next to `target`; rename it onto `target` on success.

    The file ends with the mode a plain open() would give it under the process umask.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, file_mode())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield an empty temporary directory next to `target`; swap it in for `target` on success.

    A crash leaves the previous `target` untouched (or absent) and only a hidden temp folder.
    The folder ends with the mode a plain mkdir would give it under the process umask; the
    files in it keep the modes their writers gave them.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = _temp_prefix(target)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, dir_mode())  # after the writers: copytree copies its source's mode
        old = None
        if target.exists():
            old = target.with_name(f"{prefix}old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _aside_pid(path: Path) -> int | None:
    pid = path.name.rpartition("-")[2]
    return int(pid) if pid.isdigit() else None


def restore_aside(target: Path) -> bool:
    """Put back the folder `target` that a process killed in atomic_dir's swap left aside.

    The swap is two renames (target -> `.<name>.old-<pid>`, then the new folder -> target); a
    process killed between them leaves no `target` and the previous folder under that name.
    It is put back (the newest, if several) when its process is gone and `target` is still
    missing; returns whether it was. A folder a live process is swapping is left alone.
    """
    if target.exists():
        return False
    asides = [
        p for p in target.parent.glob(f"{glob.escape(_temp_prefix(target))}old-*")
        if p.is_dir() and (pid := _aside_pid(p)) is not None and not alive(pid)
    ]
    if not asides:
        return False
    try:
        os.replace(max(asides, key=lambda p: p.stat().st_mtime), target)
    except OSError:  # another process put it back, or wrote a new target, first
        return False
    return True


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars, tuples and paths so json.dumps accepts them."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return value.item()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def write_json(path: Path, payload: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_jsonable(payload), indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write a DataFrame deterministically (no pandas index, fixed compression)."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False, compression="zstd")


def copy_dir(source: Path, target: Path) -> None:
    """Atomically replace `target` with a copy of the folder `source` (links are not followed)."""
    with atomic_dir(target) as tmp:
        shutil.copytree(source, tmp, symlinks=True, dirs_exist_ok=True)
