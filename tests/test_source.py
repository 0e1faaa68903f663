"""The source stage: a stamp that changes exactly when the data source does, online or off."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from http_source import DataServer
from sentiment_pipeline.config.data import DataConfig
from sentiment_pipeline.data import ingest, source
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.paths import ProjectPaths
from synthetic import make_comments

CSV = "comments.csv"


def data_config(src: str, **kwargs) -> DataConfig:
    return DataConfig(source=src, text_column="text", label_column="label", **kwargs)


def write_comments(path: Path, n: int = 30, seed: int = 0) -> bytes:
    make_comments(n, seed=seed).to_csv(path, index=False)
    return path.read_bytes()


def age(path: Path, seconds: float = 60) -> None:
    """Date the file back, as if it had been written a while before the stage ran."""
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DataServer]:
    folder = tmp_path / "served"
    folder.mkdir()
    served = DataServer(folder)
    yield served
    served.stop()


def free_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/{CSV}"


# --- a local file ---------------------------------------------------------------------------


def test_a_local_file_is_stamped_with_its_path_size_and_hash(project: ProjectPaths) -> None:
    data = write_comments(project.root / CSV)

    result = source.run(data_config(CSV), project)

    assert result == source.SourceResult(source=CSV, kind="file", changed=True, offline=False)
    assert json.loads(project.source_stamp.read_text()) == {
        "source": CSV,
        "kind": "file",
        "path": CSV,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def test_an_unchanged_file_leaves_the_stamp_byte_identical_and_is_not_hashed_again(
    project: ProjectPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_comments(project.root / CSV)
    age(project.root / CSV)
    source.run(data_config(CSV), project)
    before = project.source_stamp.stat().st_mtime_ns, project.source_stamp.read_bytes()
    monkeypatch.setattr(source, "sha256_of", lambda path: pytest.fail(f"hashed {path} again"))

    result = source.run(data_config(CSV), project)

    assert not result.changed
    assert (project.source_stamp.stat().st_mtime_ns, project.source_stamp.read_bytes()) == before


def test_an_edited_file_changes_the_stamp_even_at_the_same_size(project: ProjectPaths) -> None:
    path = project.root / CSV
    data = write_comments(path)
    age(path)
    source.run(data_config(CSV), project)

    path.write_bytes(data.replace(b"awful", b"AWFUL"))
    result = source.run(data_config(CSV), project)

    stamp = json.loads(project.source_stamp.read_text())
    assert result.changed and stamp["size"] == len(data)
    assert stamp["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_written_just_before_its_hash_is_hashed_again(
    project: ProjectPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Within the same mtime tick a second edit could keep size and mtime: not trusted.
    write_comments(project.root / CSV)
    source.run(data_config(CSV), project)
    hashed = []
    monkeypatch.setattr(source, "sha256_of", lambda path: hashed.append(path) or "0" * 64)

    source.run(data_config(CSV), project)

    assert hashed == [project.root / CSV]


def test_a_missing_file_is_reported(project: ProjectPaths) -> None:
    with pytest.raises(DataError, match=r"no file at \S+/missing\.csv; set data\.source to an "):
        source.run(data_config("missing.csv"), project)


# --- a URL ----------------------------------------------------------------------------------


def test_a_url_is_stamped_with_the_servers_validators(
    project: ProjectPaths, server: DataServer
) -> None:
    data = write_comments(server.folder / CSV)
    url = f"{server.url}/{CSV}"

    result = source.run(data_config(url), project)

    assert result == source.SourceResult(source=url, kind="url", changed=True, offline=False)
    assert json.loads(project.source_stamp.read_text()) == {
        "source": url,
        "kind": "url",
        "etag": f'"{hashlib.sha256(data).hexdigest()[:16]}"',
        "last_modified": None,
        "content_length": len(data),
    }
    assert server.requests == [("HEAD", f"/{CSV}")]


def test_a_refused_head_falls_back_to_a_get_whose_body_is_not_read(
    project: ProjectPaths, tmp_path: Path
) -> None:
    refusing = DataServer(tmp_path, refuse_head=True)
    try:
        write_comments(tmp_path / CSV)
        source.run(data_config(f"{refusing.url}/{CSV}"), project)
    finally:
        refusing.stop()

    assert json.loads(project.source_stamp.read_text())["etag"].startswith('"')
    assert refusing.requests == [("HEAD", f"/{CSV}"), ("GET", f"/{CSV}")]


def test_offline_keeps_the_previous_stamp_of_the_same_url_and_says_so(
    project: ProjectPaths, server: DataServer, caplog: pytest.LogCaptureFixture
) -> None:
    write_comments(server.folder / CSV)
    url = f"{server.url}/{CSV}"
    source.run(data_config(url), project)
    before = project.source_stamp.read_bytes()
    server.stop()

    with caplog.at_level(logging.WARNING, logger="sentiment_pipeline"):
        result = source.run(data_config(url, download_timeout_s=5), project)

    assert (result.offline, result.changed) == (True, False)
    assert project.source_stamp.read_bytes() == before
    assert f"could not reach {url} (ConnectionError" in caplog.text
    assert "keeping the stamp of its last check" in caplog.text


def test_offline_without_an_earlier_check_is_an_error(project: ProjectPaths) -> None:
    url = free_port_url()

    with pytest.raises(
        DataError,
        match=rf"could not reach {url} \(ConnectionError: .*\) and there is no earlier check of "
        r"it to keep; check the network, or download the file and point data\.source at the "
        r"local copy, e\.g\. --set data\.source=path/to/file\.csv$",
    ) as caught:
        source.run(data_config(url, download_timeout_s=5), project)
    assert caught.value.__cause__ is not None
    assert not project.source_stamp.exists()


def test_a_missing_url_is_an_error_even_with_an_earlier_stamp(
    project: ProjectPaths, server: DataServer
) -> None:
    write_comments(server.folder / CSV)
    url = f"{server.url}/{CSV}"
    source.run(data_config(url), project)
    (server.folder / CSV).unlink()

    with pytest.raises(DataError, match=r"could not reach \S+/comments\.csv \(HTTPError: 404"):
        source.run(data_config(url), project)


# --- what ingest does with the stamp --------------------------------------------------------


def test_ingest_downloads_once_and_reuses_the_copy_while_the_etag_holds(
    project: ProjectPaths, server: DataServer
) -> None:
    data = write_comments(server.folder / CSV)
    config = data_config(f"{server.url}/{CSV}")
    source.run(config, project)

    first = ingest.run(config, project)
    server.stop()  # offline: the stamp is kept and the download reused
    source.run(config.model_copy(update={"download_timeout_s": 5}), project)
    second = ingest.run(config, project)

    assert first.rows == second.rows == 30
    copy = project.downloads_dir / CSV
    assert copy.read_bytes() == data
    record = json.loads((project.downloads_dir / f"{CSV}.http.json").read_text())
    assert record["etag"] == json.loads(project.source_stamp.read_text())["etag"]
    assert [r for r in server.requests if r[0] == "GET"] == [("GET", f"/{CSV}")]
    assert not list(project.downloads_dir.glob(".*.tmp"))


def test_ingest_downloads_again_when_the_stamp_changed(
    project: ProjectPaths, server: DataServer
) -> None:
    write_comments(server.folder / CSV)
    config = data_config(f"{server.url}/{CSV}")
    source.run(config, project)
    ingest.run(config, project)

    write_comments(server.folder / CSV, n=45, seed=1)
    source.run(config, project)
    result = ingest.run(config, project)

    assert result.rows == 45
    assert pd.read_parquet(project.raw_dataset).shape == (45, 4)
    assert [r[0] for r in server.requests].count("GET") == 2


def test_ingest_without_a_stamp_says_to_run_the_source_stage(project: ProjectPaths) -> None:
    with pytest.raises(
        DataError, match=r"no readable source stamp at \S+/data/raw/source\.json; run the source "
    ):
        ingest.run(data_config(CSV), project)


def test_ingest_refuses_the_stamp_of_another_source(project: ProjectPaths) -> None:
    write_comments(project.root / CSV)
    source.run(data_config(CSV), project)

    with pytest.raises(
        DataError,
        match=r"source\.json is for 'comments\.csv', but data\.source is 'other\.csv'; run the "
        "source stage first",
    ):
        ingest.run(data_config("other.csv"), project)
