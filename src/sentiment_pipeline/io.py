"""Atomic writes: every artifact is written to a temporary sibling, then renamed into place."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary file path next to `target`; rename it onto `target` on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield an empty temporary directory next to `target`; swap it in for `target` on success.

    A crash leaves the previous `target` untouched (or absent) and only a hidden temp folder.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
