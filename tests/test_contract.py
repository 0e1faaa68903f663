"""The processed-data contract: one reader, one message per broken rule."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from sentiment_pipeline.data.contract import read_labels, read_split
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.paths import ProjectPaths
from synthetic import LABELS


def write_split(paths: ProjectPaths, name: str, frame: pd.DataFrame) -> None:
    frame.to_parquet(paths.split(name), index=False)


def test_reads_the_labels_and_a_split_in_the_contract(processed: ProjectPaths) -> None:
    labels = read_labels(processed)
    train = read_split(processed, "train", labels)

    assert labels == LABELS
    assert list(train.columns) == ["text", "label"]
    assert train["label"].dtype == "int64"
    assert len(train) == 144 and all(isinstance(t, str) and t for t in train["text"])


def test_a_nullable_integer_label_column_is_read_as_int64(processed: ProjectPaths) -> None:
    write_split(processed, "val", pd.DataFrame({"text": ["a", "b"], "label": [0, 2]}).astype(
        {"label": "Int32"}))

    assert read_split(processed, "val", LABELS)["label"].tolist() == [0, 2]
    assert read_split(processed, "val", LABELS)["label"].dtype == "int64"


# --- labels.json --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"no labels file at \S+/data/processed/labels\.json; run the prepare stage first$"),
        ("[\"a\", ", r"labels\.json is not valid JSON \(Expecting value: line 1 column 7 "
                     r"\(char 6\)\); rerun the prepare stage$"),
        ('{"0": "neg"}', r"labels\.json must hold a JSON list of class names, found a dict: "
                         r"\{'0': 'neg'\}; rerun the prepare stage$"),
        ('["neg", 1, ""]', r"labels\.json holds class names that are not non-empty strings: "
                           r"\[1\] 1, \[2\] ''; rerun the prepare stage$"),
        ('["neg", "pos", "neg"]', r"labels\.json lists the class names \['neg'\] more than "
                                  r"once; rerun the prepare stage$"),
        ('["neg"]', r"labels\.json must list at least 2 classes, found \['neg'\]; rerun the "
                    r"prepare stage$"),
    ],
    ids=["missing", "not-json", "not-a-list", "not-strings", "repeated", "one-class"],
)
def test_every_broken_labels_rule_has_its_message(
    project: ProjectPaths, content: str | None, message: str
) -> None:
    if content is not None:
        project.processed_dir.mkdir(parents=True)
        project.labels.write_text(content)

    with pytest.raises(DataError, match=message):
        read_labels(project)


# --- the splits ---------------------------------------------------------------------------


def test_a_missing_split_says_which_stage_to_run(processed: ProjectPaths) -> None:
    processed.split("test").unlink()

    with pytest.raises(
        DataError, match=r"no test split at \S+/test\.parquet; run the prepare stage first$"
    ):
        read_split(processed, "test", LABELS)


def test_an_unreadable_split_names_the_parser_complaint(processed: ProjectPaths) -> None:
    processed.split("val").write_text("not parquet")

    with pytest.raises(
        DataError, match=r"cannot read \S+/val\.parquet as Parquet \(\w+: .*\); rerun the prepare "
    ) as caught:
        read_split(processed, "val", LABELS)
    assert caught.value.__cause__ is not None


def test_a_missing_column_names_the_columns_found(processed: ProjectPaths) -> None:
    write_split(processed, "val", pd.DataFrame({"body": ["a"], "label": [0]}))

    with pytest.raises(
        DataError,
        match=r"expected columns \['text', 'label'\] in \S+/val\.parquet, found \['body', "
        r"'label'\] \(missing \['text'\]\); rerun the prepare stage$",
    ):
        read_split(processed, "val", LABELS)


def test_an_empty_split_is_refused(processed: ProjectPaths) -> None:
    empty = pd.DataFrame(
        {"text": pd.Series([], dtype=object), "label": pd.Series([], dtype="int64")}
    )
    write_split(processed, "val", empty)

    with pytest.raises(
        DataError,
        match=r"\S+/val\.parquet has no rows; the val split must not be empty; rerun the prepare",
    ):
        read_split(processed, "val", LABELS)


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (
            pd.DataFrame({"text": ["fine", None, "ok", None], "label": [0, 1, 2, 0]}),
            "column 'text' holds values that are not strings (2 rows, e.g. row 1: None, "
            "row 3: None)",
        ),
        (
            pd.DataFrame({"text": [570306, 570301], "label": [0, 1]}),
            "column 'text' holds values that are not strings (2 rows, e.g. row 0: 570306, "
            "row 1: 570301)",
        ),
        (
            pd.DataFrame({"text": ["fine", "", "  "], "label": [0, 1, 2]}),
            "column 'text' holds empty or blank texts (2 rows, e.g. row 1: '', row 2: '  ')",
        ),
        (
            pd.DataFrame({"text": ["a", "b"], "label": ["negative", "neutral"]}),
            "column 'label' must hold integer class ids, found dtype str",
        ),
        (
            pd.DataFrame({"text": ["a", "b"], "label": [0.0, 1.0]}),
            "column 'label' must hold integer class ids, found dtype float64",
        ),
        (
            pd.DataFrame({"text": ["a", "b", "c"], "label": [0, 3, -1]}),
            "column 'label' holds ids outside 0..2 (the 3 classes of {labels}) (2 rows, e.g. "
            "row 1: 3, row 2: -1)",
        ),
    ],
    ids=[
        "text-missing", "text-numbers", "text-empty", "label-strings", "label-float",
        "label-outside",
    ],
)
def test_every_broken_column_rule_has_its_message(
    processed: ProjectPaths, frame: pd.DataFrame, problem: str
) -> None:
    write_split(processed, "train", frame)
    path = processed.split("train")
    expected = (
        f"{path} breaks the processed-data contract: "
        f"{problem.format(labels=processed.labels)}; rerun the prepare stage"
    )

    with pytest.raises(DataError, match=f"^{re.escape(expected)}$"):
        read_split(processed, "train", LABELS)


def test_every_broken_column_rule_is_listed_in_one_error(processed: ProjectPaths) -> None:
    write_split(processed, "train", pd.DataFrame({"text": ["a", None], "label": [0, 9]}))

    with pytest.raises(DataError) as caught:
        read_split(processed, "train", LABELS)

    message = str(caught.value)
    assert "column 'text' holds values that are not strings (1 row, e.g. row 1: None)" in message
    assert "column 'label' holds ids outside 0..2" in message
    assert message.count("rerun the prepare stage") == 1
