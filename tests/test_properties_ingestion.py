"""Hostile files through ingest and validate, as properties (hypothesis).

Each generated file (CSV, TSV, JSON Lines, Parquet) goes through what the two stages do in
process: read_table, select_columns, the raw Parquet write and read, validate_frame and the
validated/rejected Parquet writes. Every input must end in a clean result or in one of our
errors (PipelineError) with a message; any other exception fails. A clean result loses no row
(accepted + rejected == rows in the file), accepts only strings with a known class, and every
accepted text is exactly a text of the file (nothing silently altered).

The run's summary counts the inputs and how they ended (property_suites.py sizes the suite).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from pathlib import Path
from tempfile import TemporaryDirectory

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from property_suites import examples_per_test, outcome
from sentiment_pipeline.config.data import DataConfig
from sentiment_pipeline.data import ingest
from sentiment_pipeline.data import rows as row_rules
from sentiment_pipeline.errors import DataError, PipelineError
from sentiment_pipeline.io import write_parquet

CLASSES = {"negative", "neutral", "positive"}
BIG = 1 << 20  # a 1 MB text
EXAMPLES = examples_per_test(properties=4)  # the profile's inputs per suite, shared

# --- strategies ---------------------------------------------------------------------------------

TRICKY = ["\n", "\r", "\r\n", '"', ",", "\t", ";", "|", "\ufeff", "\u2028", "\x85", "\x00",
          "é", "’", "😀", " ", "NA", "null", "\\", "{", "["]
PIECES = st.one_of(  # characters, and a few strings that parsers treat specially
    st.characters(codec="utf-8"),  # any code point but surrogates
    st.characters(categories=["Cc"]),  # control characters
    st.characters(categories=["Cs"]),  # lone surrogates
    st.sampled_from(TRICKY),
)
SHORT_TEXT = st.lists(PIECES, max_size=12).map("".join)
TEXT = st.one_of(
    SHORT_TEXT,
    st.sampled_from(["", "   ", "NA", "null", "nan", "None", "1", "-1.0", '""', "text", "label"]),
    st.builds(lambda c: c * BIG, st.sampled_from(["x", "é", " "])),
)
LABEL_WORDS = st.sampled_from(["-1", "0", "1", "negative", "neutral", "positive", " 1 ", "1.0",
                               "+1", "2", "pos", "", "NaN", "None", "POSITIVE", "-0", "1e0"])
RAW_LABEL_TEXT = st.one_of(LABEL_WORDS, SHORT_TEXT)
NUMBER = st.one_of(st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([1.0, -1.0, 0.0, 0.5, 2**63]))
JSON_VALUE = st.one_of(
    TEXT, st.none(), NUMBER, st.booleans(),
    st.lists(SHORT_TEXT, max_size=3), st.dictionaries(SHORT_TEXT, NUMBER, max_size=2),
)
ENCODINGS = st.sampled_from(["utf-8", "utf-8", "utf-8", "latin-1", "cp1252"])


def data_config(**kwargs) -> DataConfig:
    return DataConfig(source="x", text_column="text", label_column="label", **kwargs)


def encode(text: str, codec: str) -> bytes:
    """A row as bytes: lone surrogates as their (invalid) UTF-8 bytes, the rest as `codec`."""
    if codec == "utf-8":
        return text.encode("utf-8", "surrogatepass")
    return text.encode(codec, "replace")


def as_field(value: object) -> str:
    """What a value looks like once written in a CSV field."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else json.dumps(value)


@st.composite
def separated_files(draw: st.DrawFn) -> tuple[bytes, str, int, list[str]]:
    """(bytes, format, data rows, the texts as UTF-8 reads them) of a CSV/TSV file."""
    fmt = draw(st.sampled_from(["csv", "tsv"]))
    header = draw(st.sampled_from([
        ["text", "label"], ["label", "text"], ["text", "label", "id"],
        ["text", "label", "text"], ["text", "text", "label"], ["id", "text", "label", "label"],
    ]))
    rows = draw(st.lists(st.tuples(TEXT, st.one_of(RAW_LABEL_TEXT, NUMBER, st.none())),
                         max_size=8))
    if sum(len(t) for t, _ in rows) > 2 * BIG:
        rows = rows[:1]
    out = io.BytesIO()
    bom = draw(st.sampled_from([b"", b"", b"\xef\xbb\xbf"]))
    out.write(bom)
    sep = "," if fmt == "csv" else "\t"
    out.write(_line(header, sep).encode())
    expected = []
    for i, (text, label) in enumerate(rows):
        codec = draw(ENCODINGS)
        values = {"text": as_field(text), "label": as_field(label), "id": str(i)}
        raw = encode(_line([values[name] for name in header], sep), codec)
        out.write(raw)
        expected.append(encode(values["text"], codec).decode("utf-8", "surrogateescape"))
    return out.getvalue(), fmt, len(rows), expected


def _line(fields: list[str], sep: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=sep).writerow(fields)  # \r\n: a bare \r is quoted too
    return buffer.getvalue()


@st.composite
def json_lines_files(draw: st.DrawFn) -> tuple[bytes, int, list[str]]:
    """(bytes, object lines, texts) of a JSON Lines file; some lines may not be objects."""
    lines, objects, texts = [], 0, []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["object"] * 16 + ["duplicate_keys", "blank", "not_object",
                                                       "broken"]))
        ascii_only = draw(st.booleans())
        if kind == "blank":
            lines.append(b"  ")
            continue
        if kind == "not_object":
            not_object = st.one_of(TEXT, st.none(), NUMBER, st.booleans(), st.lists(SHORT_TEXT))
            lines.append(json.dumps(draw(not_object), ensure_ascii=True).encode())
            continue
        if kind == "broken":
            lines.append(b'{"text": "unterminated')
            continue
        record = {}
        if draw(st.integers(0, 9)):
            record["text"] = draw(JSON_VALUE)
        if draw(st.integers(0, 9)):
            record["label"] = draw(st.one_of(RAW_LABEL_TEXT, NUMBER, st.none(), st.booleans()))
        if draw(st.booleans()):
            record["extra"] = draw(JSON_VALUE)
        line = json.dumps(record, ensure_ascii=ascii_only)
        if kind == "duplicate_keys":  # JSON allows it; the last value counts
            line = '{"text": "first of two", ' + line[1:] if len(record) else '{"text": "x"}'
        objects += 1
        raw = encode(line, draw(ENCODINGS))
        lines.append(raw)  # the text as UTF-8 reads it (another code page may read otherwise)
        texts.append(json.loads(raw.decode("utf-8", "surrogateescape")).get("text"))
    bom = draw(st.sampled_from([b"", b"", b"\xef\xbb\xbf"]))
    return bom + b"\n".join(lines) + draw(st.sampled_from([b"", b"\n", b"\r\n"])), objects, texts


NO_SURROGATES = st.lists(  # what Arrow strings can hold
    st.one_of(st.characters(codec="utf-8"), st.characters(categories=["Cc"]),
              st.sampled_from(TRICKY)),
    max_size=12,
).map("".join)


@st.composite
def parquet_tables(draw: st.DrawFn) -> tuple[pa.Table, int]:
    """An Arrow table with typed text/label columns (strings, lists, numbers, nulls)."""
    n = draw(st.integers(0, 8))
    text_kind = draw(st.sampled_from(["string", "string", "large_string", "list", "float",
                                      "int", "binary", "null"]))
    texts = {
        "string": (st.one_of(NO_SURROGATES, st.none()), pa.string()),
        "large_string": (st.one_of(NO_SURROGATES, st.none()), pa.large_string()),
        "list": (st.one_of(st.lists(NO_SURROGATES, max_size=3), st.none()),
                 pa.list_(pa.string())),
        "float": (st.floats(allow_nan=True), pa.float64()),
        "int": (st.one_of(st.integers(-2**63, 2**63 - 1), st.none()), pa.int64()),
        "binary": (st.one_of(st.binary(max_size=8), st.none()), pa.binary()),
        "null": (st.none(), pa.null()),
    }
    label_kind = draw(st.sampled_from(["string", "int", "float", "bool"]))
    labels = {
        "string": (st.one_of(LABEL_WORDS, NO_SURROGATES, st.none()), pa.string()),
        "int": (st.one_of(st.integers(-2, 2), st.none()), pa.int64()),
        "float": (st.one_of(NUMBER.map(float), st.none()), pa.float64()),
        "bool": (st.one_of(st.booleans(), st.none()), pa.bool_()),
    }
    text_values, text_type = texts[text_kind]
    label_values, label_type = labels[label_kind]
    columns = {
        "text": pa.array(draw(st.lists(text_values, min_size=n, max_size=n)), type=text_type),
        "label": pa.array(draw(st.lists(label_values, min_size=n, max_size=n)), type=label_type),
    }
    names = draw(st.sampled_from([["text", "label"], ["label", "text"], ["text", "label", "text"],
                                  ["text", "label", "label"]]))
    arrays = [columns[name] for name in names]
    return pa.Table.from_arrays(arrays, names=names), n


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


# --- the properties -----------------------------------------------------------------------------


def ingest_and_validate(path: Path, config: DataConfig) -> tuple[int, pd.DataFrame] | None:
    """The ingest and validate stages in process: (rows read, validated frame), or None on error.

    Any exception that is not a PipelineError fails the test (it would be a traceback).
    """
    try:
        frame = ingest.read_table(path, config.format, encoding=config.encoding)
        raw = ingest.select_columns(frame, config, str(path))
        write_parquet(path.with_name("raw.parquet"), raw)  # what ingest writes
        raw = pd.read_parquet(path.with_name("raw.parquet"))  # what validate reads
        good, rejected, report = row_rules.validate_frame(raw, config)
        write_parquet(path.with_name("validated.parquet"), good)
        write_parquet(path.with_name("rejected.parquet"), rejected)
    except PipelineError as exc:
        outcome(exc, naming=[path.name, "the raw dataset"])
        return None
    outcome()
    event(f"rows rejected: {'some' if len(rejected) else 'none'}")
    assert report["accepted"] + report["rejected"] == report["total"] == len(raw)
    assert set(rejected["reason"]) <= set(row_rules.REASONS)
    assert all(isinstance(t, str) for t in good["text"])
    assert set(good["label"]) <= CLASSES
    # the files hold what the frames held: nothing was lost or changed on the way to disk
    for name, written in (("validated", good), ("rejected", rejected)):
        back = pd.read_parquet(path.with_name(f"{name}.parquet"))
        assert back.astype(object).values.tolist() == written.astype(object).values.tolist()
    return report["total"], good


@settings(max_examples=EXAMPLES)
@given(separated_files(), st.sampled_from(["auto", "auto", "latin-1"]))
def test_csv_and_tsv_end_in_a_result_or_a_clear_error(file, encoding) -> None:
    data, fmt, rows, texts = file
    with TemporaryDirectory() as folder:
        path = Path(folder) / f"input.{fmt}"
        path.write_bytes(data)
        result = ingest_and_validate(path, data_config(encoding=encoding))
    if result is None:
        return
    total, good = result
    assert total == rows, "a row of the file was lost (or invented) by the reader"
    if encoding == "auto":  # every accepted text is a text of the file, as UTF-8 reads it
        assert not Counter(good["text"]) - Counter(texts)


@settings(max_examples=EXAMPLES)
@given(json_lines_files())
def test_json_lines_end_in_a_result_or_a_clear_error(file) -> None:
    data, objects, texts = file
    with TemporaryDirectory() as folder:
        path = Path(folder) / "input.jsonl"
        path.write_bytes(data)
        result = ingest_and_validate(path, data_config())
    if result is None:
        return
    total, good = result
    assert total == objects
    accepted_texts = Counter(good["text"])
    assert not accepted_texts - Counter(t for t in texts if isinstance(t, str))


@settings(max_examples=EXAMPLES)
@given(parquet_tables())
def test_parquet_ends_in_a_result_or_a_clear_error(table) -> None:
    table, rows = table
    with TemporaryDirectory() as folder:
        path = Path(folder) / "input.parquet"
        pq.write_table(table, path)
        result = ingest_and_validate(path, data_config())
    if result is None:
        return
    total, good = result
    assert total == rows
    texts = [t for t in table.column(table.column_names.index("text")).to_pylist()]
    assert not Counter(good["text"]) - Counter(t for t in texts if isinstance(t, str))


FRAME_VALUES = st.one_of(JSON_VALUE, st.just(pd.NA), st.just(float("nan")))


@settings(max_examples=EXAMPLES)
@given(
    st.lists(st.tuples(FRAME_VALUES, FRAME_VALUES), max_size=10),
    st.dictionaries(st.sampled_from(["-1", "0", "1", "pos", "neg", ""]),
                    st.sampled_from(sorted(CLASSES)), max_size=3),
    st.integers(1, 5), st.integers(1, 40),
)
def test_validate_frame_handles_any_in_memory_values(rows, label_map, low, high) -> None:
    """validate_frame on frames built in memory (no ingest flags), values of any type."""
    frame = pd.DataFrame(rows, columns=["text", "label"], dtype=object)
    config = data_config(label_map=label_map, min_text_chars=min(low, high),
                         max_text_chars=max(low, high))
    try:
        good, rejected, report = row_rules.validate_frame(frame, config)
    except PipelineError as exc:
        outcome(exc, naming=["the raw dataset", "data."])
        return
    outcome()
    assert report["accepted"] + report["rejected"] == report["total"] == len(rows)
    assert all(isinstance(t, str) for t in good["text"])
    allowed = set(label_map.values()) if label_map else {
        str(label) for _, label in rows if isinstance(label, str)
    } | {str(label) for _, label in rows}
    assert set(good["label"]) <= allowed
    assert not Counter(good["text"]) - Counter(t for t, _ in rows if isinstance(t, str))
    for text in good["text"]:
        assert config.min_text_chars <= len(text.strip()) <= config.max_text_chars
        assert not _has_surrogate(text)


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"text,label\n", b"\n\n\n"])
def test_empty_files_are_a_result_or_a_clear_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(data)
    try:
        frame = ingest.read_table(path)
        raw = ingest.select_columns(frame, data_config(), str(path))
    except PipelineError as exc:
        assert str(exc).strip()
        return
    assert len(raw) == 0


# --- regression tests for what the properties found ---------------------------------------------


def test_a_parquet_file_with_two_columns_of_one_name_says_so(tmp_path: Path) -> None:
    # Before: "cannot read x.parquet as parquet: ArrowInvalid: Multiple matches for
    # FieldRef.Name(text) in text: string ... __fragment_index: int32 ..." (pyarrow's internals).
    path = tmp_path / "twice.parquet"
    table = pa.table({"text": ["a text"], "label": ["1"]})
    pq.write_table(table.append_column("text", pa.array(["other"])), path)

    with pytest.raises(
        DataError, match=r"twice\.parquet holds more than one column named 'text' \(columns "
        r"\['text', 'label', 'text'\]\); column names must be unique: rename or drop the copies$"
    ):
        ingest.read_table(path)


def test_a_json_null_line_is_named_null(tmp_path: Path) -> None:
    # Before: "line 2 of rows.jsonl holds a JSON None, expected an object ..."
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "fine", "label": 1}\nnull\n')

    with pytest.raises(DataError, match=r"line 2 of \S+rows\.jsonl holds a JSON null, expected"):
        ingest.read_table(path)


def test_the_bad_encoding_warning_shows_a_long_text_shortened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: the whole 1 MB text was written into the log line.
    path = tmp_path / "long.csv"
    path.write_bytes(b"text,label\n" + b"\xe9" * BIG + b",1\nfine text,0\n")

    raw = ingest.select_columns(ingest.read_table(path), data_config(), str(path))

    assert raw["undecodable"].tolist() == [True, False]
    (message,) = [r.getMessage() for r in caplog.records if "do not decode" in r.getMessage()]
    assert "(e.g. row 0: '\\\\xe9\\\\xe9" in message and len(message) < 500


def test_a_csv_header_naming_a_column_twice_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: pandas renamed the second 'text' to 'text.1' and the first was used, silently.
    path = tmp_path / "twice.csv"
    path.write_text("text,label,text\nfirst text,1,second text\n")

    raw = ingest.select_columns(ingest.read_table(path), data_config(), str(path))

    assert raw["text"].tolist() == ["first text"]
    assert re.search(
        r"twice\.csv has 2 columns named 'text', read as \['text', 'text\.1'\]: data\.text_column "
        r"or data\.label_column 'text' means the first; rename the columns to choose another",
        caplog.text,
    )
