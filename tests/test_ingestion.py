"""Tests of the ingest stage: formats, label strings, URLs and error messages.

The stamp of the source (the source stage, see test_source.py) comes first, as in dvc.yaml.
"""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from sentiment_pipeline.config.data import DataConfig
from sentiment_pipeline.data import ingest, source
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.paths import ProjectPaths
from synthetic import make_comments

RAW_LABELS = {"negative": -1, "neutral": 0, "positive": 1}


def source_frame(n: int = 30) -> pd.DataFrame:
    frame = make_comments(n, raw_labels=RAW_LABELS).rename(
        columns={"text": "body", "label": "category"}
    )
    frame["score"] = range(n)
    return frame


def write_source(frame: pd.DataFrame, path: Path) -> Path:
    name = path.name
    if name.endswith((".csv", ".csv.gz")):
        frame.to_csv(path, index=False)
    elif name.endswith(".tsv"):
        frame.to_csv(path, sep="\t", index=False)
    elif name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


def config(src: str | Path, **kwargs) -> DataConfig:
    return DataConfig(source=str(src), text_column="body", label_column="category", **kwargs)


def stamp_and_ingest(data: DataConfig, paths: ProjectPaths) -> ingest.IngestResult:
    source.run(data, paths)
    return ingest.run(data, paths)


@pytest.mark.parametrize(
    "name", ["comments.csv", "comments.tsv", "comments.parquet", "comments.jsonl", "c.csv.gz"]
)
def test_read_table_reads_every_format(tmp_path: Path, name: str) -> None:
    expected = source_frame()
    path = write_source(expected, tmp_path / name)

    frame = ingest.read_table(path)
    raw = ingest.select_columns(frame, config(path), str(path))

    assert list(frame.columns) == ["body", "category", "score"]
    assert list(raw.columns) == ["text", "label", "text_type", "undecodable"]
    assert set(raw["text_type"]) == {"string"} and not raw["undecodable"].any()
    assert raw["text"].tolist() == expected["body"].tolist()
    assert raw["label"].tolist() == expected["category"].astype(str).tolist()


def test_explicit_format_overrides_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "comments.txt"
    source_frame().to_csv(path, sep="\t", index=False)

    assert ingest.read_table(path, "tsv").shape == (30, 3)


def test_labels_become_exact_strings_and_missing_stays_missing(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text('body,category\na,-1\nb,-1.0\nc,"-1"\nd,\ne,NA\nf,positive\n')

    frame = ingest.read_table(path)
    raw = ingest.select_columns(frame, config(path), str(path))

    assert raw["label"].iloc[:3].tolist() == ["-1", "-1", "-1"]
    assert raw["label"].isna().tolist() == [False, False, False, True, False, False]
    assert raw["label"].iloc[4:].tolist() == ["NA", "positive"]


def test_numeric_labels_from_parquet_are_stringified() -> None:
    frame = pd.DataFrame({"body": ["a", "b", "c", "d"], "category": [-1.0, 0.0, 1.0, None]})

    raw = ingest.select_columns(frame, config("x"), "x")

    assert raw["label"].tolist()[:3] == ["-1", "0", "1"]
    assert raw["label"].isna().tolist() == [False, False, False, True]


def test_unknown_extension_names_the_accepted_formats(tmp_path: Path) -> None:
    path = tmp_path / "comments.xlsx"
    path.write_text("not a table")

    with pytest.raises(DataError, match=r"comments\.xlsx.*accepted formats: csv, tsv, parquet, "
                       r"jsonl.*set data\.format"):
        ingest.read_table(path)


def test_unreadable_file_names_the_file_and_the_parser_complaint(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_text("this is not parquet")

    with pytest.raises(DataError, match=r"cannot read .*broken\.parquet as parquet: \w+"):
        ingest.read_table(path)


def test_missing_local_file_is_reported(project: ProjectPaths) -> None:
    with pytest.raises(DataError, match=r"no file at .*missing\.csv; set data\.source"):
        stamp_and_ingest(config("missing.csv"), project)


def test_missing_column_names_the_columns_found(tmp_path: Path) -> None:
    path = write_source(source_frame(), tmp_path / "comments.csv")
    frame = ingest.read_table(path)

    with pytest.raises(
        DataError,
        match=r"expected a column 'text' in .*comments\.csv, found \['body', 'category', "
        r"'score'\]; set data\.text_column",
    ):
        ingest.select_columns(
            frame, DataConfig(text_column="text", label_column="category"), str(path)
        )


def test_run_writes_the_raw_contract_from_a_relative_path(project: ProjectPaths) -> None:
    write_source(source_frame(), project.root / "comments.csv")

    result = stamp_and_ingest(config("comments.csv"), project)

    raw = pd.read_parquet(project.raw_dataset)
    assert (result.rows, result.columns, result.source) == (30, 3, "comments.csv")
    assert list(raw.columns) == ["text", "label", "text_type", "undecodable"]
    assert set(raw["label"]) == {"-1", "0", "1"}


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server over a temporary folder: (base URL, folder)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # keep the test output quiet
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_run_downloads_a_url(project: ProjectPaths, http_folder: tuple[str, Path]) -> None:
    base, folder = http_folder
    write_source(source_frame(), folder / "comments.jsonl")

    result = stamp_and_ingest(config(f"{base}/comments.jsonl"), project)

    downloaded = project.raw_dataset.parent / "downloads" / "comments.jsonl"
    assert downloaded.read_bytes() == (folder / "comments.jsonl").read_bytes()
    assert result.rows == 30
    assert pd.read_parquet(project.raw_dataset)["label"].tolist()[:3] == ["-1", "0", "1"]
    assert not list(downloaded.parent.glob(".*.tmp"))


def test_http_error_is_reported(project: ProjectPaths, http_folder: tuple[str, Path]) -> None:
    base, _ = http_folder

    with pytest.raises(DataError, match=r"could not reach .*/absent\.csv \(HTTPError: 404"):
        stamp_and_ingest(config(f"{base}/absent.csv"), project)


def test_unreachable_url_says_how_to_use_a_local_file(project: ProjectPaths) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/comments.csv"

    with pytest.raises(
        DataError,
        match=rf"could not reach {url} \(ConnectionError: .*\) and there is no earlier check "
        r"of it to keep; .*--set data\.source=path/to/file\.csv",
    ):
        stamp_and_ingest(config(url, download_timeout_s=5), project)
    assert not project.raw_dataset.exists()
