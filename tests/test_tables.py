"""The one table reader: ingest, predict and analyze read a file alike, each naming its options.

Each file is read the four ways a user reaches the reader: the ingest stage (params.yaml keys
data.*), `predict --input` (--input-format, --encoding), an upload to /v1/analyze (the form
fields format, encoding) and `analyze --input` (--format, --encoding).
"""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import lzma
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from sentiment_pipeline import predict
from sentiment_pipeline.cli import app
from sentiment_pipeline.config.data import DataConfig
from sentiment_pipeline.data import ingest, tables
from sentiment_pipeline.errors import ConfigError, DataError, PipelineError
from sentiment_pipeline.insights import files, pipeline
from sentiment_pipeline.insights.comments import InsightsError
from tiny_sklearn import save_tiny_model

ROWS = [("café crème, très bon", "1"), ("naïve but fine", "0"), ("plain ascii", "-1")]
LIMIT = 100


def data_config(path: Path) -> DataConfig:
    return DataConfig(source=str(path), text_column="text", label_column="label")


def csv_text(rows: list[tuple[str, str]] = ROWS, sep: str = ",") -> str:
    return "".join(f'"{text}"{sep}{label}\n' for text, label in [("text", "label"), *rows])


def zipped(name: str, data: bytes, members: int = 1) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(members):
            archive.writestr(f"{i}-{name}", data)
    return buffer.getvalue()


# --- the four ways in: each gives (columns, rows as text) or raises the caller's error --------


def via_ingest(path: Path, encoding: str = "auto") -> list[list[str]]:
    frame = ingest.read_table(path, encoding=encoding)
    raw = ingest.select_columns(frame, data_config(path), str(path))
    assert not raw["undecodable"].any()
    return [list(frame.columns), *frame.astype(str).values.tolist()]


def via_predict(path: Path, encoding: str = "auto") -> list[list[str]]:
    predict.check_column(path, None, "text", encoding)
    frame = pd.concat([c.frame for c in predict.read_chunks(path, None, 2, encoding)])
    return [list(frame.columns), *frame.astype(str).values.tolist()]


def via_upload(path: Path, encoding: str = "auto") -> list[str]:
    """What /v1/analyze does with an upload: its bytes and its file name."""
    batch = files.read_comments(path.read_bytes(), filename=path.name, encoding=encoding,
                                limit=LIMIT)
    return [comment.text for comment in batch.comments]


def via_analyze(path: Path, encoding: str = "auto") -> list[str]:
    """What `analyze --input` does."""
    options = pipeline.FileOptions(encoding=encoding)
    return [comment.text for comment in pipeline.file_batch(path, options, limit=LIMIT).comments]


CALLERS: dict[str, Callable[..., object]] = {
    "ingest": via_ingest, "predict": via_predict, "upload": via_upload, "analyze": via_analyze,
}


def read_alike(path: Path, encoding: str = "auto") -> list[list[str]]:
    """The rows through every caller, checked to be the same; the rows."""
    table = via_ingest(path, encoding)
    assert via_predict(path, encoding) == table
    texts = [row[0] for row in table[1:]]
    assert via_upload(path, encoding) == texts
    assert via_analyze(path, encoding) == texts
    return table


def expected(rows: list[tuple[str, str]] = ROWS) -> list[list[str]]:
    return [["text", "label"], *([text, label] for text, label in rows)]


def zstandard_or_skip():  # noqa: ANN201 - the zstandard module
    return pytest.importorskip(
        "zstandard", reason="zstandard is not installed (the reader then refuses .zst files, "
        "see test_zst_without_zstandard_is_refused_the_same_everywhere)"
    )


# --- the same file, the same rows ------------------------------------------------------------


@pytest.mark.parametrize("codec", ["latin-1", "cp1252", "utf-16"])
def test_a_file_in_another_encoding_reads_alike_when_named(tmp_path: Path, codec: str) -> None:
    path = tmp_path / f"{codec}.csv"
    path.write_bytes(csv_text().encode(codec))

    assert read_alike(path, codec) == expected()


@pytest.mark.parametrize(
    ("name", "compress"),
    [
        ("c.csv.gz", gzip.compress),
        ("c.tsv.bz2", bz2.compress),
        ("c.jsonl.xz", lzma.compress),
        ("c.csv.zip", lambda data: zipped("c.csv", data)),
        ("c.csv.zst", lambda data: zstandard_or_skip().ZstdCompressor().compress(data)),
    ],
)
def test_every_compression_reads_alike(tmp_path: Path, name: str, compress) -> None:
    frame = pd.DataFrame(ROWS, columns=["text", "label"])
    fmt = name.split(".")[1]
    if fmt == "jsonl":
        data = frame.to_json(orient="records", lines=True, force_ascii=False)
    else:
        data = frame.to_csv(sep="," if fmt == "csv" else "\t", index=False)
    path = tmp_path / name
    path.write_bytes(compress(data.encode()))

    assert read_alike(path) == expected()


# --- one file, each caller's words ------------------------------------------------------------


def failures(path: Path, encoding: str = "auto") -> dict[str, str]:
    """Each caller's message for a file it cannot read (every caller must refuse it)."""
    found = {}
    for caller, read in CALLERS.items():
        with pytest.raises(PipelineError) as caught:
            read(path, encoding)
        error = caught.value
        found[caller] = error.message if isinstance(error, InsightsError) else str(error)
    # an upload is named as it was sent, never by its temporary copy
    assert str(path.parent) not in found["upload"] and "sentiment-upload-" not in found["upload"]
    return found


def shown(caller: str, path: Path) -> str:
    """What a caller's messages call the file: an upload its name, the others their path."""
    return path.name if caller == "upload" else str(path)


def test_a_utf16_file_under_auto_says_which_setting_to_change(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_bytes(csv_text().encode("utf-16"))

    found = failures(path)

    tail = {
        "ingest": "but data.encoding=auto reads UTF-8; set data.encoding=utf-16",
        "predict": "but --encoding auto reads UTF-8; pass --encoding utf-16",
        "upload": "but encoding=auto reads UTF-8; set encoding=utf-16",
        "analyze": "but --encoding auto reads UTF-8; pass --encoding utf-16",
    }
    for caller, message in found.items():
        assert message.endswith(f"wide.csv starts with a UTF-16 byte-order mark, {tail[caller]}")
    with pytest.raises(DataError, match=r"set data\.encoding=utf-16$"):
        ingest.read_table(path)
    with pytest.raises(DataError, match=r"pass --encoding utf-16$"):
        list(predict.read_chunks(path, None))


def test_a_semicolon_file_names_the_format_setting(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text(csv_text(sep=";"))

    found = failures(path)

    how = {"ingest": "data.format=auto", "predict": "--input-format auto",
           "upload": "format=auto", "analyze": "--format auto"}
    fix = {"ingest": "data.format", "predict": "--input-format", "upload": "format",
           "analyze": "--format"}
    for caller, message in found.items():
        assert message == (
            f"{shown(caller, path)} looks separated by semicolons "
            f"(';'), but it was read as csv ({how[caller]}, from the extension), which is "
            f"separated by commas (','); {fix[caller]} reads comma-separated (csv) and "
            "tab-separated (tsv) files: save the file with one of those separators"
        )


def test_a_tab_file_named_csv_says_how_to_read_it_as_tsv(tmp_path: Path) -> None:
    path = tmp_path / "tabs.csv"
    path.write_text(csv_text(sep="\t"))

    found = failures(path)

    fix = {"ingest": "set data.format=tsv", "predict": "pass --input-format tsv",
           "upload": "set format=tsv", "analyze": "pass --format tsv"}
    assert {caller: message.rsplit("; ", 1)[1] for caller, message in found.items()} == fix
    assert ingest.read_table(path, "tsv")["text"].tolist() == [t for t, _ in ROWS]
    assert len(next(iter(predict.read_chunks(path, "tsv"))).frame) == 3
    assert len(files.read_comments(path, format="tsv").comments) == 3


def test_an_unknown_extension_names_the_format_setting(tmp_path: Path) -> None:
    path = tmp_path / "c.xlsx"
    path.write_text(csv_text())

    found = failures(path)

    fix = {"ingest": "set data.format", "predict": "pass --input-format",
           "upload": "set format", "analyze": "pass --format"}
    for caller, message in found.items():
        assert "accepted formats: csv, tsv, parquet, jsonl" in message
        assert message.endswith(f"; rename the file or {fix[caller]}"), message
    with pytest.raises(DataError, match=r"rename the file or pass --input-format$"):
        predict.input_format(path)


def test_an_unknown_encoding_names_the_encoding_setting(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(csv_text())
    pattern = r"^{} 'klingon' is not a text encoding Python knows"

    with pytest.raises(ConfigError, match=pattern.format(r"data\.encoding")):
        via_ingest(path, "klingon")
    with pytest.raises(ConfigError, match=pattern.format("--encoding")):
        via_predict(path, "klingon")
    with pytest.raises(InsightsError, match=pattern.format("encoding")):
        via_upload(path, "klingon")
    with pytest.raises(InsightsError, match=pattern.format("--encoding")):
        via_analyze(path, "klingon")


def test_a_zip_of_two_files_is_refused_alike(tmp_path: Path) -> None:
    path = tmp_path / "two.csv.zip"
    path.write_bytes(zipped("c.csv", csv_text().encode(), members=2))

    for caller, message in failures(path).items():
        assert message == (
            f"{shown(caller, path)} holds 2 files ['0-c.csv', '1-c.csv']; a .zip file must "
            "hold one"
        )


def test_zst_without_zstandard_is_refused_the_same_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)  # `import zstandard` fails
    path = tmp_path / "c.csv.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd whatever")

    for caller, message in failures(path).items():
        assert message == (
            f"reading {shown(caller, path)} needs the zstandard package (pip install "
            "zstandard), or decompress the file first"
        )


def test_a_compressed_parquet_file_is_refused_naming_the_format_setting(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"text": ["a"], "label": ["1"]}), buffer)
    path = tmp_path / "c.parquet.gz"
    path.write_bytes(gzip.compress(buffer.getvalue()))

    found = failures(path)

    fix = {"ingest": "set data.format", "predict": "pass --input-format",
           "upload": "set format", "analyze": "pass --format"}
    for caller, message in found.items():
        assert message.endswith(
            "c.parquet.gz is compressed, but a Parquet file compresses its columns itself and "
            f"is read as it is; decompress it (or {fix[caller]} if it is not Parquet)"
        )


def test_undecodable_bytes_are_flagged_rows_in_ingest_and_analyze_an_error_in_predict(
    tmp_path: Path,
) -> None:
    # predict writes every text out again, which a lone surrogate cannot be: it refuses the file.
    path = tmp_path / "cp.csv"
    path.write_bytes(b"text,label\nfine text,1\nodd \x81 byte,0\n")

    frame = ingest.read_table(path, encoding="cp1252")
    raw = ingest.select_columns(frame, data_config(path), str(path))
    assert raw["undecodable"].tolist() == [False, True]
    assert [c.text for c in files.read_comments(path, encoding="cp1252").comments] == [
        "fine text", "odd \\x81 byte"
    ]
    with pytest.raises(
        DataError, match=rf"^{path} is not valid cp1252: line 3 holds bytes b'\\x81', which is "
        r"not cp1252 text; pass --encoding with the file's real encoding \(e\.g\. --encoding "
        r"latin-1\), or convert the file to UTF-8, e\.g\. `iconv -f latin1 -t utf-8 cp\.csv > "
        r"utf8_cp\.csv`"
    ):
        list(predict.read_chunks(path, None, encoding="cp1252"))


def test_a_repeated_column_name_is_reported_in_the_callers_words(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("text,label,text\nfirst text,1,second text\n")

    with caplog.at_level(logging.WARNING, logger="sentiment_pipeline.data"):
        assert ingest.read_table(path)["text"].tolist() == ["first text"]
        chunk = next(iter(predict.read_chunks(path, None)))
        assert chunk.frame["text"].tolist() == ["first text"]
        files.read_comments(path, options=files.COMMAND_OPTIONS)

    said = [
        record.getMessage().split(": ", 1)[1]
        for record in caplog.records
        if "columns named" in record.getMessage()
    ]
    assert said == [
        "data.text_column or data.label_column 'text' means the first; rename the columns "
        "to choose another",
        "--text-column 'text' means the first; rename the columns to choose another",
        "--text-column (or --time-column, --likes-column, --author-column) 'text' means the "
        "first; rename the columns to choose another",
    ]


def test_a_first_row_with_an_extra_field_does_not_shift_predicts_columns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: predict took the first column for the index; row 1's text became "extra".
    path = tmp_path / "extra.csv"
    path.write_text("id,text\n1,hello there,extra\n2,world peace\n")

    frame = next(iter(predict.read_chunks(path, None))).frame

    assert frame.astype(str).values.tolist() == [["1", "hello there"], ["2", "world peace"]]
    assert "extra.csv: Length of header or names does not match length of data" in caplog.text


def test_compressed_uploads_of_every_kind_are_bounded_while_streaming() -> None:
    bound = 2 * files.MAX_BYTES_PER_COMMENT
    data = b"text\n" + (b"b" * 1000 + b"\n") * (bound // 500)
    bombs = {"bomb.csv.zip": zipped("bomb.csv", data), "bomb.csv.bz2": bz2.compress(data)}
    for name, bomb in bombs.items():
        with pytest.raises(InsightsError) as caught:
            files.read_comments(bomb, filename=name, limit=2)
        assert caught.value.kind == "too_large"
        assert caught.value.message.startswith(f"{name} expands to more than 20,000 bytes")


def test_the_option_words_of_each_caller() -> None:
    assert ingest.OPTIONS.change("data.format", "tsv") == "set data.format=tsv"
    assert predict.INPUT_OPTIONS.change("--input-format", "tsv") == "pass --input-format tsv"
    assert files.UPLOAD_OPTIONS.value("encoding", "auto") == "encoding=auto"
    assert tables.resolve_format("x.csv.gz", "auto", files.UPLOAD_OPTIONS) == "csv"
    with pytest.raises(DataError, match=r"^--format 'xml' is not supported; accepted: auto, "):
        tables.resolve_format("x.csv", "xml", files.COMMAND_OPTIONS)


# --- the commands -----------------------------------------------------------------------------


def test_predict_encoding_option(project, tmp_path: Path) -> None:
    save_tiny_model(project.baseline_model)
    model = ["--model", "models/baseline/logistic_baseline"]
    source = tmp_path / "latin.csv"
    source.write_bytes(csv_text().encode("latin-1"))
    output = tmp_path / "out.csv"
    runner = CliRunner()

    result = runner.invoke(app, ["predict", *model, "-i", str(source), "-o", str(output)])
    assert result.exit_code == 1
    assert "is not valid UTF-8: line 2 holds bytes b'\\xe9'" in result.output
    assert "pass --encoding with the file's real encoding" in result.output

    result = runner.invoke(
        app, ["predict", *model, "-i", str(source), "-o", str(output), "--encoding", "latin-1"]
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(output)["text"].tolist() == [t for t, _ in ROWS]
