"""Atomic writes: the modes they leave (the process umask) and what a crash leaves."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from sentiment_pipeline import io
from sentiment_pipeline.io import atomic_dir, atomic_path, copy_dir, write_json, write_parquet
from tiny_sklearn import save_tiny_model


@pytest.fixture
def umask():
    """Set the process umask for one test; the former one comes back afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield os.umask
    os.umask(saved)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("mask", "file_mode", "dir_mode"),
    [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775), (0o077, 0o600, 0o700)],
)
def test_artifacts_get_the_modes_of_the_umask(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    assert io.current_umask() == mask
    assert (io.file_mode(), io.dir_mode()) == (file_mode, dir_mode)

    write_json(tmp_path / "reports" / "x.json", {"a": 1})
    write_parquet(tmp_path / "data" / "x.parquet", pd.DataFrame({"a": [1]}))
    with atomic_path(tmp_path / "raw.bin") as tmp:
        tmp.write_bytes(b"x")
    with atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "file.txt").write_text("x")
        (tmp / "sub").mkdir()
    source = tmp_path / "private"
    source.mkdir(mode=0o700)
    (source / "f").write_text("x")
    copy_dir(source, tmp_path / "copy")  # copytree gives its copy the source's 0o700 first
    save_tiny_model(tmp_path / "models" / "baseline")

    files = ["reports/x.json", "data/x.parquet", "raw.bin", "folder/file.txt", "copy/f"]
    files += [f"models/baseline/{p.name}" for p in (tmp_path / "models/baseline").iterdir()]
    folders = ["reports", "data", "folder", "folder/sub", "copy", "models/baseline"]
    assert {name: oct(mode(tmp_path / name)) for name in files + folders} == {
        **{name: oct(file_mode) for name in files},
        **{name: oct(dir_mode) for name in folders},
    }


def test_a_rewrite_takes_the_mode_of_the_umask(tmp_path, umask):
    umask(0o077)
    write_json(tmp_path / "x.json", {"a": 1})
    assert mode(tmp_path / "x.json") == 0o600
    umask(0o022)
    write_json(tmp_path / "x.json", {"a": 2})
    assert mode(tmp_path / "x.json") == 0o644


def test_the_umask_is_read_without_proc(tmp_path, umask, monkeypatch):
    """Where /proc/self/status does not exist, the umask is read by setting it and back."""
    monkeypatch.setattr(io, "PROC_STATUS", tmp_path / "absent")
    umask(0o027)
    assert io.current_umask() == 0o027
    assert os.umask(0o027) == 0o027  # left as it was


def test_a_crash_leaves_nothing(tmp_path, umask):
    umask(0o022)
    write_json(tmp_path / "kept.json", {"a": 1})
    with pytest.raises(RuntimeError, match="killed"), atomic_path(tmp_path / "kept.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    with pytest.raises(RuntimeError, match="killed"), atomic_path(tmp_path / "new.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    with_old = tmp_path / "folder"
    with atomic_dir(with_old) as tmp:
        (tmp / "f").write_text("old")
    with pytest.raises(RuntimeError, match="killed"), atomic_dir(with_old) as tmp:
        (tmp / "f").write_text("half")
        raise RuntimeError("killed")
    with pytest.raises(RuntimeError, match="killed"), atomic_dir(tmp_path / "new") as tmp:
        raise RuntimeError("killed")

    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "kept.json"]
    assert io.read_json(tmp_path / "kept.json") == {"a": 1}
    assert (with_old / "f").read_text() == "old"
    assert (mode(tmp_path / "kept.json"), mode(with_old)) == (0o644, 0o755)


def test_a_long_name_leaves_room_for_the_temporary_one(tmp_path):
    """A target name near the 255-byte limit: its temporary sibling must still fit."""
    name = "x" * 250 + ".csv"
    with atomic_path(tmp_path / name) as tmp:
        tmp.write_text("a")
    with atomic_dir(tmp_path / name[:-4]) as tmp:
        (tmp / "f").write_text("a")
    with atomic_dir(tmp_path / name[:-4]) as tmp:  # replacing it: the old one moves aside
        (tmp / "f").write_text("b")
    assert (tmp_path / name).read_text() == "a"
    assert (tmp_path / name[:-4] / "f").read_text() == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, name[:-4]])
