"""Upload bombs: files of a few bytes that decode to far more than one analysis may hold,
refused with 413 while they are read (the app, `analyze --input`), the memory they may take,
and answers and messages that stay bounded whatever was sent."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sentiment_pipeline.cli import app as cli
from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.insights import files
from sentiment_pipeline.service_settings import ServiceSettings
from sentiment_pipeline.serving.app import create_app
from serving_fakes import FakeModel, FakeProvider

LIMIT = 100  # insights.max_comments_limit of most tests here
BUDGET = LIMIT * files.MAX_BYTES_PER_COMMENT  # 1,000,000 decoded bytes
HERE = Path(__file__).parent
MIB = 1 << 20


# --- the bombs ----------------------------------------------------------------------------------


def parquet(table: pa.Table, **options) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", **options)
    return buffer.getvalue()


def dictionary_parquet(rows: int = LIMIT, size: int = 300_000) -> bytes:
    """Finding 1: a column stored as an Arrow dictionary, `rows` references to one string."""
    indices = pa.array([0] * rows, pa.int32())
    column = pa.DictionaryArray.from_arrays(indices, pa.array(["x" * size]))
    return parquet(pa.table({"text": column}), use_dictionary=True)


def run_length_parquet(rows: int = LIMIT, size: int = 300_000) -> bytes:
    """A plain text column whose repeated value Parquet stores once (RLE_DICTIONARY)."""
    return parquet(pa.table({"text": pa.array(["y" * size] * rows)}), use_dictionary=True)


def list_parquet(references: int = 200, size: int = 300_000) -> bytes:
    """One row whose text is a list of `references` references to one string."""
    column = pa.array([["z" * size] * references])
    return parquet(pa.table({"text": column}), use_dictionary=True)


def rows_of(size: int, row: bytes) -> Callable[[], bytes]:
    """A CSV of about `size` bytes of rows `row`, made in pieces of at most 4 MB."""
    def pieces():
        yield b"text\n"
        left = size // len(row)
        while left:
            count = min(left, max(1, 4 * MIB // len(row)))
            yield row * count
            left -= count
    return pieces


def zipped(name: str, pieces: Callable[[], bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive, \
            archive.open(name, "w") as member:
        for piece in pieces():
            member.write(piece)
    return buffer.getvalue()


def zstd(pieces: Callable[[], bytes]) -> bytes:
    import zstandard

    buffer = io.BytesIO()
    with zstandard.ZstdCompressor(level=19).stream_writer(buffer, closefd=False) as writer:
        for piece in pieces():
            writer.write(piece)
    return buffer.getvalue()


def json_lists(size: int) -> Callable[[], bytes]:
    """One JSON line whose field holds `size` bytes of empty lists: 3 bytes each, 64 in Python."""
    def pieces():
        yield b'{"text": "hi", "x": ['
        for _ in range(size // MIB):
            yield b"[]," * (MIB // 3)
        yield b"[]]}\n"
    return pieces


def gzipped(pieces: Callable[[], bytes]) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as writer:
        for piece in pieces():
            writer.write(piece)
    return buffer.getvalue()


# Each over LIMIT's budget: by bytes (50 MB of long rows, dictionaries, JSON values as Python
# holds them) or by rows (400,000 one-letter rows: 800 KB, under the bytes of the budget).
LONG_ROWS = rows_of(50 * MIB, b"w" * 40_000 + b"\n")
BOMBS: dict[str, Callable[[], bytes]] = {
    "dictionary.parquet": dictionary_parquet,
    "run_length.parquet": run_length_parquet,
    "list.parquet": list_parquet,
    "bomb.csv.zip": lambda: zipped("bomb.csv", LONG_ROWS),
    "bomb.csv.zst": lambda: zstd(LONG_ROWS),
    "rows.csv.gz": lambda: gzipped(rows_of(800_000, b"a\n")),
    "lists.jsonl.gz": lambda: gzipped(json_lists(2 * MIB)),
}


def service(**insights) -> TestClient:
    config = InsightsConfig(**insights)
    return TestClient(create_app(ServeConfig(max_wait_ms=0), FakeProvider(FakeModel()),
                                 insights=config,
                                 settings=ServiceSettings(api_token=None, cors_origins=[])))


@pytest.fixture(scope="module")
def client():
    with service(max_comments_limit=LIMIT, max_comments=LIMIT) as started:
        yield started


def refused(response) -> str:
    assert response.status_code == 413, response.text[:300]
    body = response.json()
    assert body["error_type"] == "too_large"
    return body["error"]


# --- refused with 413, through the app and the CLI -------------------------------------------


@pytest.mark.parametrize("name", BOMBS)
def test_every_bomb_is_413_through_the_app(client, name):
    data = BOMBS[name]()
    assert len(data) < 200_000  # a small upload...

    message = refused(client.post("/v1/analyze", files={"file": (name, data)}))

    assert message.startswith(name)  # ... that expands past the budget, or holds too many rows
    assert (f"expands to more than {BUDGET:,} bytes" in message
            or f"holds more than {LIMIT:,} rows" in message)
    # the caller is told what to send; the server's setting is named in its log and the CLI
    assert "params.yaml" not in message and "insights." not in message


@pytest.mark.parametrize("name", BOMBS)
def test_every_bomb_is_a_clear_error_of_analyze(tmp_path, monkeypatch, name):
    (tmp_path / name).write_bytes(BOMBS[name]())
    (tmp_path / "params.yaml").write_text(
        f"insights:\n  max_comments_limit: {LIMIT}\n  max_comments: {LIMIT}\n"
    )
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(cli, ["analyze", "--input", name])  # refused before any model

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"{name} expands to more than" in result.output or "rows" in result.output
    assert "insights.max_comments_limit" in result.output


def test_the_491_byte_dictionary_parquet_is_413_not_a_300_mb_answer():
    """Finding 1, as reported: 1,000 references to one 300 KB string were sized as 4.8 MB and
    answered 200 with a 300 MB body; counted as decoded, they are 300 MB, over the 100 MB
    budget of the default insights.max_comments_limit."""
    data = dictionary_parquet(rows=1000)
    assert len(data) < 1000
    with service() as client:
        message = refused(client.post("/v1/analyze", files={"file": ("bomb.parquet", data)}))
    assert message.startswith("bomb.parquet expands to more than 100,000,000 bytes when read")


def test_a_138_kb_zip_of_9000_rows_and_120_mb_is_413_not_200():
    """Finding 2, as reported: under the row limit, over the bytes of the default budget."""
    data = zipped("comments.csv", rows_of(120_000_000, b"v" * 13_332 + b"\n"))
    assert len(data) < 150_000
    with service() as client:
        message = refused(client.post("/v1/analyze", files={"file": ("comments.csv.zip", data)}))
    assert message.startswith("comments.csv.zip expands to more than 100,000,000 bytes")


def test_a_file_just_under_the_budget_is_analysed_and_its_answer_is_cut(client):
    text = "a long comment " * 600  # 9,000 characters
    rows = (LIMIT - 1) * [text]
    for name, data in {
        "under.csv.gz": gzip.compress(("text\n" + "\n".join(rows) + "\n").encode()),
        "under.parquet": dictionary_parquet(rows=LIMIT - 1, size=9_000),
    }.items():
        response = client.post("/v1/analyze", files={"file": (name, data)})

        assert response.status_code == 200, response.text[:300]
        result = response.json()
        assert result["counts"]["comments"] == LIMIT - 1
        shown = InsightsConfig().max_text_chars
        assert {len(row["text"]) for row in result["comments"]} == {shown + 1}  # and the "…"
        assert result["comments"][0]["text"].endswith("…")
        assert len(response.content) < (LIMIT - 1) * (shown + 1000)


def test_json_comments_count_against_the_same_budget():
    with service(max_comments_limit=2, max_comments=2) as client:
        response = client.post("/v1/analyze", json={"comments": ["x" * 15_000, "y" * 6_000]})
    assert refused(response).startswith("comments expands to more than 20,000 bytes")


def test_text_author_and_id_are_cut_in_every_answer():
    long = "word " * 1000
    with service(max_text_chars=50) as client:
        response = client.post("/v1/analyze", json={"comments": [
            {"text": long, "author": "A" * 500, "id": "i" * 500}, "short one",
        ]})
    assert response.status_code == 200, response.text
    result = response.json()
    row = result["comments"][0]
    assert (row["text"], row["author"], row["id"]) == (long[:50] + "…", "A" * 50 + "…",
                                                       "i" * 50 + "…")
    shown = [r["text"] for rows in result["top_comments"].values() for r in rows]
    shown += [r["text"] for r in result["uncertain"]]
    assert max(map(len, shown)) == 51
    assert result["comments"][1]["text"] == "short one"


# --- nothing echoes an unbounded input ----------------------------------------------------------


def test_messages_do_not_echo_a_huge_header_name_or_option(client):
    header = ",".join(f"column_{i}" for i in range(50_000)).encode()  # 600 KB
    response = client.post("/v1/analyze", files={"file": ("wide.csv", header + b"\n" + b"1,2\n")})
    assert response.status_code == 422
    assert len(response.json()["error"]) < 1000 and "characters)" in response.json()["error"]

    response = client.post("/v1/analyze", files={"file": ("c.csv", b"text\nhi\n")},
                           data={"text_column": "t" * 30_000})
    assert response.status_code == 422 and len(response.json()["error"]) < 1000

    response = client.post("/v1/analyze", files={"file": ("n" * 1000 + ".csv", b"text\nhi\n")})
    assert response.status_code == 422
    assert "1,004 characters long" in response.json()["error"]
    assert len(response.json()["error"]) < 300


def test_long_words_are_not_terms():
    from sentiment_pipeline.insights.terms import MAX_WORD_CHARS, tokenize

    assert tokenize("great " + "a" * (MAX_WORD_CHARS + 1) + " crew") == ["great", "crew"]


# --- predict: each row and each chunk, not the file --------------------------------------------


def test_predict_refuses_a_chunk_that_decodes_past_its_bound(tmp_path):
    from sentiment_pipeline import predict

    for name, data in {"bomb.parquet": run_length_parquet(rows=1000),
                       "list.parquet": list_parquet(references=1000),
                       "bomb.csv.gz": gzipped(LONG_ROWS)}.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(Exception, match=r"the chunk of .* from data row 1 expands to more "
                           r"than 10,000,000 bytes when read \(--max-chunk-bytes 10,000,000\); "
                           r"lower --chunk-size") as caught:
            predict.predict_file(FakeModel(), tmp_path / name, tmp_path / "out.csv",
                                 max_chunk_bytes=10_000_000, progress=False)
        assert caught.type.__name__ == "DataError"
        assert not (tmp_path / "out.csv").exists()


def test_predict_refuses_a_text_over_max_text_chars_naming_its_row(tmp_path):
    from sentiment_pipeline import predict

    source = tmp_path / "in.csv"
    source.write_text("text\nfine\n" + "x" * 101 + "\nfine too\n")
    with pytest.raises(Exception, match=r"row 2 of .*in\.csv holds a text of 101 characters in "
                       r"column 'text', more than --max-text-chars 100"):
        predict.predict_file(FakeModel(), source, tmp_path / "out.csv", chunk_size=1,
                             max_text_chars=100, progress=False)
    result = predict.predict_file(FakeModel(), source, tmp_path / "out.csv", max_text_chars=101,
                                  progress=False)
    assert result.rows == 3


def test_predicts_cli_defaults_are_the_modules():
    from sentiment_pipeline import predict

    result = CliRunner().invoke(cli, ["predict", "--help"], env={"COLUMNS": "200"})
    assert f"[default: {predict.DEFAULT_MAX_TEXT_CHARS}]" in result.output
    assert f"[default: {predict.DEFAULT_MAX_CHUNK_BYTES}]" in result.output


# --- the memory a bomb may take ---------------------------------------------------------------

# The bombs against the default budget (insights.max_comments_limit = 10,000: 100 MB
# of decoded text and 10,000 rows); the service's peak memory may grow by the budget and a
# fixed margin for the parser's buffers, no more.
MEMORY_BOMBS: dict[str, Callable[[], bytes]] = {
    "dictionary.parquet": lambda: dictionary_parquet(rows=1000),
    "list.parquet": lambda: list_parquet(references=1000),
    "bomb.csv.zip": lambda: zipped("bomb.csv", rows_of(400_000_000, b"u" * 39_999 + b"\n")),
    "bomb.csv.zst": lambda: zstd(rows_of(400_000_000, b"u" * 39_999 + b"\n")),
    "rows.csv.gz": lambda: gzipped(rows_of(90_000_000, b"a\n")),
    "lists.jsonl.gz": lambda: gzipped(json_lists(72 * MIB)),
}
MARGIN_MIB = 64


@pytest.mark.slow
@pytest.mark.parametrize("name", MEMORY_BOMBS)
def test_a_bomb_takes_no_more_memory_than_the_budget_and_a_margin(tmp_path, name):
    (tmp_path / name).write_bytes(MEMORY_BOMBS[name]())
    found = subprocess.run(
        [sys.executable, str(HERE / "bomb_memory.py"), str(tmp_path / name)],
        capture_output=True, text=True, timeout=240, check=True,
    )
    measured = json.loads(found.stdout.splitlines()[-1])

    assert measured["status"] == 413, measured
    budget_mib = InsightsConfig().max_comments_limit * files.MAX_BYTES_PER_COMMENT / MIB
    assert measured["peak_growth_mib"] <= budget_mib + MARGIN_MIB, measured
    assert measured["kept_mib"] <= MARGIN_MIB, measured
