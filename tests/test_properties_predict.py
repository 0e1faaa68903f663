"""Hostile input files through `predict --input`, as properties (hypothesis).

Each generated file (CSV, TSV, JSON Lines, Parquet) is streamed through predict_file with a
tiny scikit-learn model, in small chunks, to a random output format. It must end either in an
output file with exactly one row per input row, in order, or in a DataError with a message and
no output file (nor a temporary one) left behind; any other exception fails.

The run's summary counts the inputs and how they ended (property_suites.py sizes the suite).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from tempfile import TemporaryDirectory

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from property_suites import examples_per_test, outcome
from sentiment_pipeline import predict
from sentiment_pipeline.errors import DataError, PipelineError
from sentiment_pipeline.models.artifacts.loader import load_model
from tiny_sklearn import save_tiny_model

EXAMPLES = examples_per_test(properties=1)  # the profile's inputs per suite, shared
BIG = 1 << 20
SEPS = {"csv": ",", "tsv": "\t"}

TRICKY = ["\n", "\r", "\r\n", '"', ",", "\t", "\ufeff", "\u2028", "\x85", "\x00", "é", "😀",
          " ", "NA", "null", "{", "["]
PIECES = st.one_of(  # characters, and a few strings that parsers treat specially
    st.characters(),
    st.characters(categories=["Cc"]),
    st.characters(categories=["Cs"]),
    st.sampled_from(TRICKY),
)
SHORT = st.lists(PIECES, max_size=10).map("".join)
TEXT = st.one_of(
    SHORT,
    st.sampled_from(["", "  ", "NA", "null", "1", "great flight", "text"]),
    st.builds(lambda c: c * BIG, st.sampled_from(["x", "é"])),
)
OTHER = st.one_of(SHORT, st.none(), st.integers(-5, 5), st.floats(allow_nan=True),
                  st.booleans())
JSON_VALUE = st.one_of(TEXT, OTHER, st.lists(SHORT, max_size=2),
                       st.dictionaries(st.sampled_from(["a", "b"]), OTHER, max_size=2))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny") / "model"
    save_tiny_model(folder)
    return load_model(folder, trust=True)


def encode(text: str, codec: str) -> bytes:
    if codec == "utf-8":
        return text.encode("utf-8", "surrogatepass")  # lone surrogates: invalid UTF-8 bytes
    return text.encode(codec, "replace")


def _line(fields: list[str], sep: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=sep).writerow(fields)  # \r\n: a bare \r is quoted too
    return buffer.getvalue()


def as_field(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else json.dumps(value)


@st.composite
def input_files(draw: st.DrawFn) -> tuple[str, bytes | pa.Table, int, list | None]:
    """(format, file bytes or an Arrow table, data rows, the texts predict must write or None).

    The texts are known for CSV/TSV (as UTF-8 reads them; an empty field is missing) and for
    Parquet strings; JSON values that are not strings are written as their text, not checked.
    """
    fmt = draw(st.sampled_from(["csv", "tsv", "jsonl", "parquet"]))
    n = draw(st.integers(0, 7))
    if fmt == "parquet":
        kind = draw(st.sampled_from(["string", "string", "list", "int", "null"]))
        values, typ = {
            "string": (st.one_of(st.text(st.characters(codec="utf-8"), max_size=20),
                                 st.none()), pa.string()),
            "list": (st.one_of(st.lists(st.text(max_size=5), max_size=2), st.none()),
                     pa.list_(pa.string())),
            "int": (st.one_of(st.integers(-9, 9), st.none()), pa.int64()),
            "null": (st.none(), pa.null()),
        }[kind]
        texts = draw(st.lists(values, min_size=n, max_size=n))
        text = pa.array(texts, type=typ)
        extra = pa.array(draw(st.lists(st.one_of(st.integers(0, 9), st.none()), min_size=n,
                                       max_size=n)), type=pa.int64())
        names = draw(st.sampled_from([["text"], ["text", "label"], ["id", "text"],
                                      ["text", "text"], ["text", "blank", "score"]]))
        arrays = [text if name == "text" else extra for name in names]
        return fmt, pa.Table.from_arrays(arrays, names=names), n, (
            texts if kind == "string" else None
        )
    rows = draw(st.lists(st.tuples(JSON_VALUE, OTHER), min_size=n, max_size=n))
    if sum(len(t) for t, _ in rows if isinstance(t, str)) > BIG:
        rows, n = rows[:1], min(n, 1)
    codec = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "latin-1"]))
    bom = draw(st.sampled_from([b"", b"", b"\xef\xbb\xbf"]))
    if fmt == "jsonl":
        lines = [json.dumps({"text": t, "label": label}, ensure_ascii=draw(st.booleans()))
                 for t, label in rows]
        data = b"".join(encode(line, codec) + b"\n" for line in lines)
        return fmt, bom + data, n, None
    sep = "," if fmt == "csv" else "\t"
    header = draw(st.sampled_from([["text"], ["text", "label"], ["label", "text"],
                                   ["text", "text"], ["text", "score", "label"]]))
    out, texts = [_line(header, sep).encode()], []
    for t, label in rows:
        values = {"text": as_field(t), "label": as_field(label), "score": "0.5"}
        out.append(encode(_line([values[name] for name in header], sep), codec))
        texts.append(encode(values["text"], codec).decode("utf-8", "surrogateescape") or None)
    return fmt, bom + b"".join(out), n, texts


def written_texts(path: Path, fmt: str) -> list[str | None]:
    """The text column of an output file, in order (CSV/TSV: an empty field as None)."""
    if fmt == "parquet":
        return pq.read_table(path, columns=["text"]).column("text").to_pylist()
    with path.open(encoding="utf-8", newline="") as handle:  # a "\r" in a field stays one
        text = handle.read()
    if fmt == "jsonl":
        return [json.loads(line)["text"] for line in text.split("\n") if line]
    limit = csv.field_size_limit(2 * BIG)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=SEPS[fmt]))
    finally:
        csv.field_size_limit(limit)
    column = rows[0].index("text")
    return [row[column] or None for row in rows[1:]]


def count_rows(path: Path, fmt: str) -> int:
    """The data rows of an output file, read without pandas' guessing."""
    if fmt == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    with path.open(encoding="utf-8", newline="") as handle:
        text = handle.read()
    if fmt == "jsonl":
        return sum(1 for line in text.split("\n") if line)
    sep = "," if fmt == "csv" else "\t"
    limit = csv.field_size_limit(2 * BIG)  # a text may be 1 MB long
    try:
        return len(list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))) - 1
    finally:
        csv.field_size_limit(limit)


@settings(max_examples=EXAMPLES)  # model: module-scoped, read-only
@given(
    input_files(),
    st.sampled_from(["parquet", "csv", "tsv", "jsonl"]),
    st.integers(1, 4),
    st.booleans(),
)
def test_predict_writes_one_row_per_input_row_or_a_clear_error(
    model, file, out_fmt, chunk_size, keep_columns
) -> None:
    fmt, data, rows, texts = file
    with TemporaryDirectory() as folder:
        source = Path(folder) / "in" / f"input.{fmt}"
        source.parent.mkdir()
        if fmt == "parquet":
            pq.write_table(data, source)
        else:
            source.write_bytes(data)
        output = Path(folder) / "out" / f"predictions.{out_fmt}"
        try:
            result = predict.predict_file(
                model, source, output, chunk_size=chunk_size, keep_columns=keep_columns,
                progress=False,
            )
        except PipelineError as exc:
            outcome(exc, naming=[source.name, output.name, "column '"])
            left = sorted(p.name for p in output.parent.iterdir()) if output.parent.exists() else []
            assert left == [], f"an error left {left} behind"
            return
        outcome()
        assert result.rows == rows, "predict lost (or invented) input rows"
        assert sorted(p.name for p in output.parent.iterdir()) == [output.name]
        assert count_rows(output, out_fmt) == rows
        if texts is not None:  # each row's text, in order: nothing altered on the way
            # CSV/TSV cannot tell an empty text from a missing one: both are an empty field
            # (the `blank` column says which rows had no text).
            expected = texts if out_fmt in ("parquet", "jsonl") else [t or None for t in texts]
            assert written_texts(output, out_fmt) == expected
        if out_fmt == "parquet":
            written = pd.read_parquet(output)
            assert list(written.columns[-len(predict.output_columns(model)):]) == (
                predict.output_columns(model)
            )
            assert set(written["label"]) <= set(model.labels)


# --- regression tests for what the properties found ---------------------------------------------


def test_blank_lines_of_a_one_column_csv_are_blank_texts(model, tmp_path: Path) -> None:
    # Before: pandas skipped the empty and the all-blank line: 2 output rows for 4 input rows.
    source = tmp_path / "texts.csv"
    source.write_bytes(b"text\nhello\n\n \nworld\n")
    output = tmp_path / "out.parquet"

    result = predict.predict_file(model, source, output, progress=False)

    written = pd.read_parquet(output)
    assert result.rows == 4
    assert pq.read_table(output)["text"].to_pylist() == ["hello", None, " ", "world"]
    assert written["blank"].tolist() == [False, True, True, False]


@pytest.mark.parametrize("out_fmt", ["csv", "tsv"])
def test_a_carriage_return_in_a_text_is_quoted_in_csv_output(
    model, tmp_path: Path, out_fmt: str
) -> None:
    # Found by the `ci` profile: 'text,label\r\n,"\r"\r\n' to CSV with the input columns.
    # Before (Python < 3.11.9, whose csv writer quotes only its line terminator's characters):
    # the bare "\r" was written unquoted, and every CSV reader read 2 rows for 1.
    source = tmp_path / "texts.jsonl"
    source.write_text('{"text": "a\\rb", "label": "\\r"}\n{"text": "c", "label": "x"}\n')
    output = tmp_path / f"out.{out_fmt}"

    predict.predict_file(model, source, output, keep_columns=True, progress=False)

    with output.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=SEPS[out_fmt]))
    assert [row[:2] for row in rows] == [["text", "input_label"], ["a\rb", "\r"], ["c", "x"]]


def test_a_parquet_input_with_two_columns_of_one_name_is_refused(model, tmp_path: Path) -> None:
    # Before: AttributeError ('DataFrame' object has no attribute 'str') or ValueError
    # ("cannot reindex on an axis with duplicate labels"), as a traceback.
    source = tmp_path / "twice.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"])], ["text", "text"]),
                   source)
    output = tmp_path / "out.csv"

    with pytest.raises(
        DataError, match=r"twice\.parquet holds more than one column named 'text' \(columns "
        r"\['text', 'text'\]\); column names must be unique: rename or drop the copies$"
    ):
        predict.predict_file(model, source, output, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["twice.parquet"]


def test_json_lines_with_a_byte_order_mark_are_read(model, tmp_path: Path) -> None:
    # Before: "cannot read rows.jsonl as jsonl (line 1 or later): ValueError: Expected object
    # or value at position 0" (ingest and predict's CSV reader skip the mark).
    source = tmp_path / "rows.jsonl"
    source.write_bytes(b'\xef\xbb\xbf{"text": "hello"}\n{"text": "world"}\n')
    output = tmp_path / "out.jsonl"

    result = predict.predict_file(model, source, output, progress=False)

    assert result.rows == 2
    assert [json.loads(line)["text"] for line in output.read_text().splitlines()] == [
        "hello", "world"
    ]


@pytest.mark.parametrize(
    ("data", "where"),
    [(b'{"text": "ok", "id": "\\udc00"}\n{"text": "a", "id": 3}\n', r"row 1 \(column 'id'\)"),
     (b'{"text": "x\\udc00"}\n', "line 1 or later")],
)
def test_a_json_escape_of_a_lone_surrogate_is_refused(
    model, tmp_path: Path, data: bytes, where: str
) -> None:
    # Before: UnicodeEncodeError ("surrogates not allowed") as a traceback from pandas' Arrow
    # strings or from the UTF-8 writer, or "cannot read ... UnicodeEncodeError ...".
    source = tmp_path / "rows.jsonl"
    source.write_bytes(data)

    with pytest.raises(
        DataError, match=rf"rows\.jsonl, {where}, holds \"\S*\\udc00\": a JSON escape of half a "
        r"UTF-16 pair \(\\ud800-\\udfff\) without its other half, which is not text"
    ):
        predict.predict_file(model, source, tmp_path / "out.csv", progress=False)
    assert not (tmp_path / "out.csv").exists()
