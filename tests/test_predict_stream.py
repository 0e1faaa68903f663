"""Streamed file prediction: formats, one row per input row in order, blanks, interruptions."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sentiment_pipeline import predict
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.models.artifacts.loader import load_model
from synthetic import LABELS, make_comments
from tiny_sklearn import save_tiny_model

P_COLUMNS = [f"p_{label}" for label in LABELS]
PREDICTED = ["label", "score", *P_COLUMNS, "blank"]
ROWS, CHUNK = 50, 7


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny") / "model"
    save_tiny_model(folder)
    return load_model(folder, trust=True)


class CountingModel:
    """Wraps a model: records each batch size, and raises `error` on call number `fail_on`."""

    def __init__(self, model, fail_on: int | None = None, error: BaseException | None = None):
        self.model, self.fail_on, self.error = model, fail_on, error
        self.labels = model.labels
        self.batches: list[int] = []
        self.on_call = None

    def predict_proba(self, texts):
        self.batches.append(len(texts))
        if self.on_call is not None:
            self.on_call(len(self.batches))
        if len(self.batches) == self.fail_on:
            raise self.error
        return self.model.predict_proba(texts)


def sample_frame(n: int = ROWS) -> pd.DataFrame:
    frame = make_comments(n).rename(columns={"label": "truth"})
    frame.insert(0, "id", range(n))
    return frame


def write_input(frame: pd.DataFrame, path: Path) -> Path:
    fmt = path.suffix.lstrip(".")
    if fmt in ("csv", "tsv"):
        frame.to_csv(path, sep="," if fmt == "csv" else "\t", index=False)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    return path


def read_output(path: Path) -> pd.DataFrame:
    fmt = path.suffix.lstrip(".")
    if fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        return pd.read_csv(path, sep=sep, keep_default_na=False, na_values=[""])
    if fmt == "parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=True, dtype=False)


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


@pytest.mark.parametrize("source_fmt", ["csv", "tsv", "parquet", "jsonl"])
@pytest.mark.parametrize("target_fmt", ["parquet", "csv", "jsonl"])
def test_round_trip_keeps_every_row_in_order(model, tmp_path, source_fmt, target_fmt):
    frame = sample_frame()
    source = write_input(frame, tmp_path / f"in.{source_fmt}")
    output = tmp_path / "out" / f"preds.{target_fmt}"
    counting = CountingModel(model)

    result = predict.predict_file(
        counting, source, output, chunk_size=CHUNK, progress=False
    )

    assert (result.rows, result.blank) == (ROWS, 0)
    assert counting.batches == [7, 7, 7, 7, 7, 7, 7, 1]  # chunk by chunk, never all at once
    preds = read_output(output)
    assert list(preds.columns) == ["id", "text", "truth", *PREDICTED]
    assert len(preds) == ROWS
    assert preds["id"].astype(int).tolist() == list(range(ROWS))
    assert preds["text"].tolist() == frame["text"].tolist()
    expected = model.predict(frame["text"].tolist())
    assert preds["label"].tolist() == expected
    assert np.allclose(preds[P_COLUMNS].sum(axis=1), 1)
    assert np.allclose(preds["score"], preds[P_COLUMNS].max(axis=1))
    assert not preds["blank"].astype(bool).any()
    assert siblings(output) == [output.name]  # no temporary file left
    if target_fmt == "parquet":
        assert pq.ParquetFile(output).num_row_groups == 8  # written chunk by chunk


def test_parquet_input_columns_keep_their_types(model, tmp_path):
    frame = sample_frame(10)
    frame["id"] = pd.array([None, *range(1, 10)], dtype="Int64")
    frame["when"] = pd.date_range("2024-01-01", periods=10, freq="h")
    source = write_input(frame, tmp_path / "in.parquet")
    output = tmp_path / "out.parquet"
    predict.predict_file(model, source, output, chunk_size=3, progress=False)
    schema = pq.read_schema(output)
    assert str(schema.field("id").type) == "int64"
    assert str(schema.field("when").type).startswith("timestamp")
    assert str(schema.field("blank").type) == "bool"


def test_blank_and_missing_texts_get_a_prediction_and_a_flag(model, tmp_path):
    texts = ["great friendly crew", None, "", "   ", "awful delayed flight", "\t\n"]
    source = tmp_path / "in.parquet"
    pd.DataFrame({"text": texts}).to_parquet(source)
    output = tmp_path / "out.jsonl"
    counting = CountingModel(model)
    result = predict.predict_file(counting, source, output, chunk_size=4, progress=False)
    preds = read_output(output)
    assert result.blank == 4
    assert len(preds) == len(texts)
    assert preds["blank"].tolist() == [False, True, True, True, False, True]
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["text"] for r in records] == texts  # missing stays missing (null), the rest kept
    empty = model.predict_proba([""])[0]
    for row in (1, 2, 3, 5):  # a blank text is classified as the empty string
        assert np.allclose(preds.loc[row, P_COLUMNS].astype(float), empty)
    assert preds["label"].notna().all()


def test_a_number_in_a_json_text_column_is_classified_as_its_text(model, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": 12}\n{"text": "great crew"}\n{"other": 1}\n')
    output = tmp_path / "out.csv"
    result = predict.predict_file(model, source, output, progress=False)
    preds = read_output(output)
    assert result.rows == 3
    assert preds["text"].astype(str).tolist()[:2] == ["12", "great crew"]
    assert preds["blank"].tolist() == [False, False, True]


def test_input_columns_named_like_predictions_are_renamed(model, tmp_path):
    source = write_input(
        pd.DataFrame({"text": ["great crew"], "label": ["positive"], "blank": [1]}),
        tmp_path / "in.csv",
    )
    output = tmp_path / "out.csv"
    predict.predict_file(model, source, output, progress=False)
    assert list(read_output(output).columns) == ["text", "input_label", "input_blank", *PREDICTED]


def test_no_keep_columns_writes_the_text_and_the_predictions(model, tmp_path):
    source = write_input(sample_frame(5), tmp_path / "in.csv")
    output = tmp_path / "out.parquet"
    predict.predict_file(model, source, output, keep_columns=False, progress=False)
    assert list(read_output(output).columns) == ["text", *PREDICTED]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_an_empty_input_gives_an_empty_output_with_the_columns(model, tmp_path, suffix):
    source = tmp_path / f"in{suffix}"
    if suffix == ".jsonl":
        source.write_text("")
    else:
        write_input(pd.DataFrame({"text": pd.Series([], dtype=str)}), source)
    output = tmp_path / "out.parquet"
    result = predict.predict_file(model, source, output, progress=False)
    assert result.rows == 0
    assert list(pq.read_schema(output).names) == ["text", *PREDICTED]


def test_compressed_inputs(model, tmp_path):
    frame = sample_frame(20)
    output = tmp_path / "out.csv"
    for name, text in [
        ("in.csv.gz", frame.to_csv(index=False)),
        ("in.jsonl.gz", frame.to_json(orient="records", lines=True)),
    ]:
        source = tmp_path / name
        source.write_bytes(gzip.compress(text.encode()))
        assert predict.predict_file(model, source, output, chunk_size=6, progress=False).rows == 20
        assert read_output(output)["text"].tolist() == frame["text"].tolist()


def test_json_columns_that_change_type_between_chunks(model, tmp_path):
    lines = [f'{{"text": "great crew {i}", "note": null, "n": {i}}}' for i in range(6)]
    lines += ['{"text": "awful", "note": "late", "n": 7}']
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    # A column with no value in the first chunk is stored as text.
    output = tmp_path / "out.parquet"
    predict.predict_file(model, source, output, chunk_size=3, progress=False)
    assert read_output(output)["note"].tolist()[-1] == "late"

    source.write_text("\n".join([*lines, '{"text": "good", "n": "seven"}']) + "\n")
    with pytest.raises(DataError, match=r"column 'n' \(int64 in the first rows, .*string.* "
                       r"from row 8\).*write csv or jsonl instead, or pass --no-keep-columns"):
        predict.predict_file(model, source, output, chunk_size=7, progress=False)
    with pytest.raises(DataError, match=r"cannot write column 'n' \(int, str in rows 5-8\) "
                       r"to Parquet, which needs one type per column"):
        predict.predict_file(model, source, output, chunk_size=4, progress=False)
    assert siblings(output) == ["in.jsonl", "out.parquet"]  # the earlier output, untouched
    predict.predict_file(
        model, source, output, chunk_size=4, keep_columns=False, progress=False
    )
    assert len(read_output(output)) == 8


def test_json_keys_that_appear_later_are_reported_not_misaligned(model, tmp_path, caplog):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "a", "x": 1}\n{"text": "b", "x": 2}\n{"text": "c", "y": 3}\n')
    output = tmp_path / "out.csv"
    with caplog.at_level(logging.WARNING, logger="sentiment_pipeline.predict"):
        predict.predict_file(model, source, output, chunk_size=2, progress=False)
    assert "columns ['y'] first appear at row 3" in caplog.text
    preds = read_output(output)
    assert list(preds.columns) == ["text", "x", *PREDICTED]
    assert preds["x"].tolist()[:2] == [1, 2] and pd.isna(preds["x"].iloc[2])


@pytest.mark.parametrize(
    "error", [RuntimeError("model crashed"), KeyboardInterrupt()], ids=["error", "interrupt"]
)
@pytest.mark.parametrize("target_fmt", ["parquet", "csv"])
def test_an_interrupted_run_leaves_no_output_and_no_temporary_file(
    model, tmp_path, error, target_fmt
):
    source = write_input(sample_frame(), tmp_path / "in.csv")
    output = tmp_path / "out" / f"preds.{target_fmt}"
    failing = CountingModel(model, fail_on=3, error=error)
    with pytest.raises(type(error)):
        predict.predict_file(failing, source, output, chunk_size=CHUNK, progress=False)
    assert failing.batches == [7, 7, 7]
    assert not output.exists()
    assert list(output.parent.iterdir()) == []


def test_while_writing_only_a_hidden_temporary_sibling_exists(model, tmp_path):
    """What a kill -9 at any moment would leave: no file under the output's name."""
    source = write_input(sample_frame(), tmp_path / "in.csv")
    output = tmp_path / "out" / "preds.parquet"
    seen: list[list[str]] = []
    watching = CountingModel(model)
    watching.on_call = lambda _: seen.append(siblings(output))
    predict.predict_file(watching, source, output, chunk_size=CHUNK, progress=False)
    assert len(seen) == 8
    for names in seen:
        assert len(names) == 1 and names[0].startswith(".preds.parquet.")
        assert names[0].endswith(".tmp")
    assert siblings(output) == ["preds.parquet"]


def test_an_existing_output_stays_until_the_new_one_is_complete(model, tmp_path):
    source = write_input(sample_frame(), tmp_path / "in.csv")
    output = tmp_path / "preds.csv"
    output.write_text("previous\n")
    failing = CountingModel(model, fail_on=2, error=RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        predict.predict_file(failing, source, output, chunk_size=CHUNK, progress=False)
    assert output.read_text() == "previous\n"
    predict.predict_file(model, source, output, chunk_size=CHUNK, progress=False)
    assert len(read_output(output)) == ROWS


def test_output_paths_and_formats_are_checked(model, tmp_path):
    source = write_input(sample_frame(3), tmp_path / "in.csv")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(DataError, match=r"folder.csv is a directory; give a file name"):
        predict.predict_file(model, source, tmp_path / "folder.csv", progress=False)
    with pytest.raises(
        DataError,
        match=r"output format of .*out.xlsx from its extension \(.xlsx\); accepted: "
        r".parquet, .pq, .csv, .tsv, .jsonl, .ndjson",
    ):
        predict.predict_file(model, source, tmp_path / "out.xlsx", progress=False)
    with pytest.raises(DataError, match=r"--output-format 'xml' is not supported; accepted: "):
        predict.predict_file(model, source, tmp_path / "o.csv", out_format="xml", progress=False)
    with pytest.raises(DataError, match=r"is the input file; write the predictions elsewhere"):
        predict.predict_file(model, source, source, progress=False)
    predict.predict_file(model, source, tmp_path / "o.data", out_format="jsonl", progress=False)
    assert len(pd.read_json(tmp_path / "o.data", lines=True)) == 3


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_missing_text_column_names_the_file_and_the_columns(model, tmp_path, suffix):
    source = write_input(pd.DataFrame({"id": [1], "body": ["x"]}), tmp_path / f"in{suffix}")
    message = rf"expected a column 'text' in {source}, found \['id', 'body'\]; pass --text-column"
    if suffix != ".jsonl":  # JSON lines have no header: checked at the first chunk
        with pytest.raises(DataError, match=message):
            predict.check_column(source, suffix.lstrip("."), "text")
    with pytest.raises(DataError, match=message):
        predict.predict_file(model, source, tmp_path / "out.csv", progress=False)
    assert not (tmp_path / "out.csv").exists()


def test_missing_input_file(model, tmp_path):
    with pytest.raises(DataError, match=r"--input .*nope.csv: no file there"):
        predict.predict_file(model, tmp_path / "nope.csv", tmp_path / "o.csv", progress=False)


def test_invalid_utf8_names_the_file_and_the_line(model, tmp_path):
    source = tmp_path / "latin.csv"
    rows = ["id,text"] + [f"{i},fine text {i}" for i in range(30)]
    rows[21] = "20,caf\xe9 au lait"
    source.write_bytes("\n".join(rows).encode("latin-1") + b"\n")
    with pytest.raises(DataError) as caught:
        predict.predict_file(model, source, tmp_path / "o.csv", chunk_size=5, progress=False)
    message = str(caught.value)
    assert f"{source} is not valid UTF-8: line 22 holds bytes b'\\xe9'" in message
    assert "iconv -f latin1 -t utf-8 latin.csv > utf8_latin.csv" in message
    assert siblings(tmp_path / "o.csv") == ["latin.csv"]


def test_a_malformed_csv_row_names_the_file(model, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,a\n2,b\n3,c,extra,fields\n")
    with pytest.raises(DataError, match=rf"cannot read {source} as csv .*Expected 2 fields"):
        predict.predict_file(model, source, tmp_path / "o.csv", progress=False)
