"""Messy source files, handled row by row: encodings, non-string values, separators, URL names.

Each case seen in issue 10 is a regression test here: one undecodable byte rejects one row
(bad_encoding), not the file; a latin-1 or cp1252 file is read when data.encoding names it;
nested JSON values and Parquet lists are rejected as non_string_text; a file with another
separator gets a message naming it; a URL with an odd last segment is downloaded under a safe
name instead of ending in an OSError.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from http_source import DataServer
from sentiment_pipeline.config.data import DataConfig
from sentiment_pipeline.data import ingest, rows, source, tables, validate
from sentiment_pipeline.errors import ConfigError, DataError
from sentiment_pipeline.paths import ProjectPaths
from synthetic import make_comments

RAW_LABELS = {"negative": -1, "neutral": 0, "positive": 1}


def data_config(src: str | Path = "x", **kwargs) -> DataConfig:
    return DataConfig(**{"source": str(src), "text_column": "text", "label_column": "label",
                         **kwargs})


def csv_bytes(rows: list[tuple[str, str]], sep: str = ",") -> str:
    return "".join(f"{text}{sep}{label}\n" for text, label in [("text", "label"), *rows])


def good_rows(n: int = 60) -> list[tuple[str, str]]:
    frame = make_comments(n, raw_labels=RAW_LABELS)
    return list(zip(frame["text"], frame["label"].astype(str), strict=True))


def ingest_file(path: Path, **kwargs) -> pd.DataFrame:
    """The raw contract ingest writes for `path` (read_table + select_columns, as run does)."""
    config = data_config(path, **kwargs)
    frame = ingest.read_table(path, config.format, encoding=config.encoding)
    return ingest.select_columns(frame, config, str(path))


def ingest_and_validate(project: ProjectPaths, name: str, **kwargs) -> dict:
    config = data_config(name, **kwargs)
    source.run(config, project)
    ingest.run(config, project)
    validate.run(config, project)
    return json.loads(project.validation_report.read_text())


# --- encodings ----------------------------------------------------------------------------------


def test_one_latin1_byte_in_a_utf8_csv_rejects_its_row_only(project: ProjectPaths) -> None:
    # Before: "cannot read comments.csv as csv: UnicodeDecodeError: 'utf-8' codec can't decode
    # byte 0xe9 ..." for the whole file.
    rows = good_rows()
    text = csv_bytes(rows).encode("utf-8")
    text += b"caf\xe9 was great,1\n" + "naïve but fine,0\n".encode()
    (project.root / "comments.csv").write_bytes(text)

    report = ingest_and_validate(project, "comments.csv")

    assert (report["total"], report["accepted"]) == (62, 61)
    assert report["reasons"]["bad_encoding"] == 1
    rejected = pd.read_parquet(project.rejected)
    assert rejected.to_dict("records") == [
        {"text": "caf\\xe9 was great", "label": "1", "reason": "bad_encoding"}
    ]
    raw = pd.read_parquet(project.raw_dataset)
    assert raw["undecodable"].tolist() == [False] * 60 + [True, False]
    assert "naïve but fine" in set(pd.read_parquet(project.validated)["text"])


def test_auto_reads_utf8_with_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + csv_bytes([("crème brûlée", "1")]).encode())

    raw = ingest_file(path)

    assert raw[["text", "label"]].values.tolist() == [["crème brûlée", "1"]]
    assert not raw["undecodable"].any()


@pytest.mark.parametrize("codec", ["latin-1", "cp1252"])
def test_a_file_wholly_in_another_encoding_is_read_when_data_encoding_names_it(
    tmp_path: Path, codec: str
) -> None:
    texts = ["déjà vu, très bien", "Ærø is nice", "plain ascii"]
    if codec == "cp1252":
        texts.append("it’s “quoted” – 5 €")
    path = tmp_path / "other.csv"
    path.write_bytes(csv_bytes([(f'"{t}"', "1") for t in texts]).encode(codec))

    named = ingest_file(path, encoding=codec)
    auto = ingest_file(path)

    assert named["text"].tolist() == texts and not named["undecodable"].any()
    # auto never reinterprets the file: only the ASCII row decodes as UTF-8
    assert auto["undecodable"].tolist() == [t != "plain ascii" for t in texts]
    assert auto["text"].iloc[0] == "d\\xe9j\\xe0 vu, tr\\xe8s bien"


def test_a_byte_cp1252_leaves_undefined_rejects_its_row(tmp_path: Path) -> None:
    path = tmp_path / "cp.csv"
    path.write_bytes(b"text,label\nfine text,1\nodd \x81 byte,0\n")

    raw = ingest_file(path, encoding="cp1252")

    assert raw["undecodable"].tolist() == [False, True]
    assert raw["text"].tolist() == ["fine text", "odd \\x81 byte"]


def test_an_undecodable_label_rejects_the_row_as_bad_encoding(tmp_path: Path) -> None:
    path = tmp_path / "label.csv"
    path.write_bytes(b"text,label\nfine text,pos\xe9\nother text,positive\n")

    raw = ingest_file(path)
    _, rejected, report = rows.validate_frame(raw, data_config(label_map={}))

    assert raw["label"].tolist() == ["pos\\xe9", "positive"]
    assert rejected["reason"].tolist() == ["bad_encoding"]
    assert report["reasons"]["bad_encoding"] == 1


def test_json_lines_with_a_bad_byte_or_a_lone_surrogate_reject_those_rows(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(
        b'{"text": "good one", "label": 1}\n'
        b'{"text": "bad \xff byte", "label": 1}\n'
        b'{"text": "lone \\ud800 surrogate", "label": 0}\n'
    )

    raw = ingest_file(path)
    _, rejected, _ = rows.validate_frame(raw, data_config())

    assert raw["text"].tolist() == ["good one", "bad \\xff byte", "lone \\ud800 surrogate"]
    assert rejected["reason"].tolist() == ["bad_encoding", "bad_encoding"]


def test_a_utf16_file_under_auto_says_which_encoding_to_set(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_bytes(csv_bytes([("wide text", "1")]).encode("utf-16"))

    with pytest.raises(
        DataError, match=r"wide\.csv starts with a UTF-16 byte-order mark, but data\.encoding="
        r"auto reads UTF-8; set data\.encoding=utf-16$"
    ):
        ingest_file(path)
    assert ingest_file(path, encoding="utf-16")["text"].tolist() == ["wide text"]


@pytest.mark.parametrize("codec", ["latin-9x", "base64"])
def test_an_unknown_codec_names_data_encoding_and_the_value(codec: str) -> None:
    """The config refuses it before any stage runs; ingestion refuses it too if handed one."""
    with pytest.raises(ValueError, match=rf"'{codec}' is not a text encoding"):
        data_config("comments.csv", encoding=codec)
    with pytest.raises(
        ConfigError, match=rf"data\.encoding '{codec}' is not a text encoding Python knows .*"
        r"use auto \(UTF-8\) or a codec name such as latin-1"
    ):
        tables.codec_of(codec, ingest.OPTIONS)


def test_many_bad_encoding_rows_say_to_set_data_encoding(project: ProjectPaths) -> None:
    rows = [(f"caf\xe9 number {i}", str(i % 3 - 1)) for i in range(40)] + good_rows(60)
    (project.root / "comments.csv").write_bytes(csv_bytes(rows).encode("latin-1"))

    with pytest.raises(
        DataError, match=r"40 of 100 rows rejected .*reasons: bad_encoding=40; .*set "
        r"data\.encoding \(e\.g\. cp1252 or latin-1\)"
    ):
        ingest_and_validate(project, "comments.csv")


# --- values that are not strings ----------------------------------------------------------------


def test_nested_json_values_reach_validation_as_what_they_are(tmp_path: Path) -> None:
    # Before: stored as Python reprs ("{'a': 1}") and accepted as texts.
    path = tmp_path / "nested.jsonl"
    lines = [
        {"text": "a plain text", "label": 1},
        {"text": {"body": "nested", "n": 1}, "label": 1},
        {"text": ["a", "list"], "label": 0},
        {"text": 42, "label": -1},
        {"text": True, "label": -1},
        {"text": None, "label": 0},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    raw = ingest_file(path)
    _, rejected, report = rows.validate_frame(raw, data_config())

    assert raw["text_type"].tolist()[:5] == ["string", "object", "array", "number", "boolean"]
    assert pd.isna(raw["text_type"].iloc[5])
    assert rejected.to_dict("records")[:4] == [
        {"text": '{"body": "nested", "n": 1}', "label": "1", "reason": "non_string_text"},
        {"text": '["a", "list"]', "label": "0", "reason": "non_string_text"},
        {"text": "42", "label": "-1", "reason": "non_string_text"},
        {"text": "true", "label": "-1", "reason": "non_string_text"},
    ]
    assert report["reasons"]["non_string_text"] == 4
    assert report["reasons"]["missing_text"] == 1


def test_list_values_in_a_parquet_text_column_are_non_string_text(tmp_path: Path) -> None:
    # Before: every row rejected as conflicting_duplicate.
    path = tmp_path / "lists.parquet"
    pd.DataFrame(
        {"text": [["good", "day"], ["bad", "day"], ["good", "day"]], "label": [1, -1, 0]}
    ).to_parquet(path)

    raw = ingest_file(path)
    _, rejected, report = rows.validate_frame(raw, data_config())

    assert raw["text"].tolist() == ['["good", "day"]', '["bad", "day"]', '["good", "day"]']
    assert rejected["reason"].tolist() == ["non_string_text"] * 3
    assert report["reasons"]["conflicting_duplicate"] == 0


def test_a_text_column_of_numbers_only_names_data_text_column(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("id,text,label\n570306,hello there,1\n570301,bye now,0\n")

    with pytest.raises(
        DataError, match=r"the column 'id' in \S+ids\.csv holds only numbers or booleans \(e\.g\. "
        r"'570306'\), no text; check that data\.text_column"
    ):
        ingest_file(path, text_column="id")


def test_an_extra_field_in_the_first_row_does_not_shift_the_columns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: pandas took the first column for the index: texts "1" and "0", labels "extra"
    # and missing, accepted without a word.
    path = tmp_path / "extra.csv"
    path.write_text("text,label\nhello there,1,extra\nworld peace,0\n")

    raw = ingest_file(path)

    assert raw[["text", "label"]].values.tolist() == [["hello there", "1"], ["world peace", "0"]]
    assert "extra.csv: Length of header or names does not match length of data" in caplog.text


def test_an_empty_json_lines_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")

    with pytest.raises(DataError, match=r"empty\.jsonl holds no JSON objects; check data\.source"):
        ingest_file(path)


def test_a_line_that_is_not_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "fine", "label": 1}\n{"text": "cut\n')

    with pytest.raises(
        DataError,
        match=r"line 2 of \S+broken\.jsonl is not JSON \(Invalid control character, column 14: "
        r"'\{\"text\": \"cut'\); each line must hold one JSON object",
    ):
        ingest_file(path)


# --- separators ---------------------------------------------------------------------------------


@pytest.mark.parametrize("commas_in_text", [False, True])
def test_a_semicolon_file_read_as_csv_names_the_separator(
    tmp_path: Path, commas_in_text: bool
) -> None:
    # Before: "expected a column 'text' ... found ['text;label']" or, with commas in the
    # texts, "cannot read ... ParserError: Error tokenizing data. C error: Expected 1 fields".
    rows = [(f"text {i}{', with a comma' if commas_in_text and i % 2 else ''}", "1")
            for i in range(10)]
    path = tmp_path / "semi.csv"
    path.write_text(csv_bytes(rows, sep=";"))

    with pytest.raises(
        DataError, match=r"semi\.csv looks separated by semicolons \(';'\), but it was read as "
        r"csv \(data\.format=auto, from the extension\), which is separated by commas \(','\); "
        r"data\.format reads comma-separated \(csv\) and tab-separated \(tsv\) files"
    ):
        ingest_file(path)


def test_a_tsv_named_csv_says_to_set_data_format_tsv(tmp_path: Path) -> None:
    path = tmp_path / "tabs.csv"
    path.write_text(csv_bytes([("hello, world", "1"), ("plain", "0")], sep="\t"))

    with pytest.raises(
        DataError, match=r"tabs\.csv looks separated by tabs, but it was read as csv .*; set "
        r"data\.format=tsv$"
    ):
        ingest_file(path)
    assert ingest_file(path, format="tsv")["text"].tolist() == ["hello, world", "plain"]


def test_a_csv_read_as_tsv_says_to_set_data_format_csv(tmp_path: Path) -> None:
    path = tmp_path / "commas.txt"
    path.write_text(csv_bytes([("hello", "1"), ("there", "0")]))

    with pytest.raises(DataError, match=r"read as tsv \(data\.format=tsv\), .*data\.format=csv$"):
        ingest_file(path, format="tsv")


# --- download names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/data/comments.csv", "comments.csv"),
        ("http://h/data/comments.csv?raw=true", "comments.csv"),
        ("http://h/", r"download-[0-9a-f]{12}"),
        ("http://h/x/%2E%2E", r"download-[0-9a-f]{12}"),
        ("http://h/a%00b.csv.gz", r"a_b-[0-9a-f]{12}\.csv\.gz"),
        ("http://h/caf%C3%A9 menu.JSONL", r"caf_menu-[0-9a-f]{12}\.jsonl"),
        ("http://h/" + "n" * 250 + ".tsv", "n" * 40 + r"-[0-9a-f]{12}\.tsv"),
    ],
)
def test_download_names_are_plain_short_file_names(url: str, expected: str) -> None:
    name = ingest.download_name(url)

    assert pd.Series([name]).str.fullmatch(expected).all(), name
    assert ingest.download_name(url) == name  # the same URL, the same copy


@pytest.mark.parametrize("name", ["n" * 240 + ".csv", "a%00b.csv"])
def test_a_url_with_an_odd_last_segment_is_downloaded_under_a_safe_name(
    project: ProjectPaths, tmp_path: Path, name: str
) -> None:
    # Before: a 244-character name: OSError [Errno 36] File name too long (the atomic write of
    # its <name>.http.json record); a NUL (%00): ValueError: embedded null byte.
    folder = tmp_path / "served"
    (folder / "d").mkdir(parents=True)
    (folder / "d" / name).write_text(csv_bytes(good_rows()))
    server = DataServer(folder)
    try:
        config = data_config(f"{server.url}/d/{name}", format="csv")
        source.run(config, project)
        result = ingest.run(config, project)
    finally:
        server.stop()

    assert result.rows == 60
    copies = [p.name for p in project.downloads_dir.iterdir()]
    assert len(copies) == 2 and all(len(c) < 80 for c in copies), copies


def test_a_url_without_an_extension_says_to_set_data_format(project: ProjectPaths) -> None:
    config = data_config("http://127.0.0.1:9/export")
    project.source_stamp.parent.mkdir(parents=True, exist_ok=True)
    project.source_stamp.write_text(json.dumps({"source": config.source, "kind": "url"}))

    with pytest.raises(
        DataError, match=r"cannot tell the format of http://127\.0\.0\.1:9/export from its name "
        r"\('export'\); set data\.format to one of csv, tsv, parquet, jsonl$"
    ):
        ingest.run(config, project)
