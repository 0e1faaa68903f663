"""Tests of the validate stage: every rejection reason, the schema and the thresholds."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sentiment_pipeline.config.data import DataConfig
from sentiment_pipeline.data import rows, validate
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.io import write_parquet
from sentiment_pipeline.paths import ProjectPaths
from synthetic import make_comments

CONFIG = DataConfig(min_text_chars=3, max_text_chars=20)

# (text, raw label, expected reason or the accepted class name)
ROWS = [
    (None, None, "missing_text"),  # the first reason that applies wins
    (42, "1", "non_string_text"),
    ("caf\udce9 menu", "1", "bad_encoding"),  # a byte read with errors="surrogateescape"
    ("   \t ", "1", "empty_text"),
    ("  ab  ", "1", "too_short"),
    ("x" * 21, "1", "too_long"),
    ("no label here", None, "missing_label"),
    ("odd label", "7", "unknown_label"),
    ("same text", "-1", "conflicting_duplicate"),
    ("same text", "positive", "conflicting_duplicate"),
    ("said twice", "1", "positive"),
    ("said twice", "positive", "duplicate"),  # the same class through label_map
    ("fine one", "-1", "negative"),
    ("  fine two  ", "neutral", "neutral"),
    ("x" * 20, "0", "neutral"),
]


def raw_frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": pd.Series([r[0] for r in rows], dtype=object),
            "label": pd.Series([r[1] for r in rows], dtype=object),
        }
    )


def test_every_reason_is_assigned_to_the_rows_it_applies_to() -> None:
    good, rejected, report = rows.validate_frame(raw_frame(ROWS), CONFIG)

    expected_rejected = [r[2] for r in ROWS if r[2] in rows.REASONS]
    assert rejected["reason"].tolist() == expected_rejected
    assert list(rejected.columns) == ["text", "label", "reason"]
    assert rejected["text"].iloc[1:3].tolist() == ["42", "caf\\xe9 menu"]
    assert good.to_dict("records") == [
        {"text": "said twice", "label": "positive"},
        {"text": "fine one", "label": "negative"},
        {"text": "  fine two  ", "label": "neutral"},
        {"text": "x" * 20, "label": "neutral"},
    ]
    assert report["reasons"] == {
        name: expected_rejected.count(name) for name in rows.REASONS
    }
    assert (report["total"], report["accepted"], report["rejected"]) == (15, 4, 11)
    assert report["rejected_fraction"] == pytest.approx(11 / 15)
    assert report["class_balance"] == {
        "counts": {"negative": 1, "neutral": 2, "positive": 1},
        "shares": {"negative": 0.25, "neutral": 0.5, "positive": 0.25},
    }


def test_the_marks_of_ingest_decide_non_string_text_and_bad_encoding() -> None:
    # As ingest writes them: a non-string as its JSON text with its type, bytes escaped.
    frame = pd.DataFrame(
        {
            "text": ['{"a": 1}', "[1, 2]", "caf\\xe9 menu", "good text", "fine text", None],
            "label": ["1", "1", "1", "pos\\xe9", "1", "1"],
            "text_type": ["object", "array", "string", "string", "string", None],
            "undecodable": [False, False, True, True, False, False],
        }
    )

    good, rejected, report = rows.validate_frame(frame, CONFIG)

    assert rejected.iloc[:4].to_dict("records") == [
        {"text": '{"a": 1}', "label": "1", "reason": "non_string_text"},
        {"text": "[1, 2]", "label": "1", "reason": "non_string_text"},
        {"text": "caf\\xe9 menu", "label": "1", "reason": "bad_encoding"},
        {"text": "good text", "label": "pos\\xe9", "reason": "bad_encoding"},
    ]
    assert pd.isna(rejected.at[4, "text"]) and rejected.at[4, "reason"] == "missing_text"
    assert good.to_dict("records") == [{"text": "fine text", "label": "positive"}]
    assert (report["reasons"]["non_string_text"], report["reasons"]["bad_encoding"]) == (2, 2)


def test_report_lists_every_reason_even_when_nothing_is_rejected() -> None:
    frame = make_comments(30)

    good, rejected, report = rows.validate_frame(frame, CONFIG.model_copy(
        update={"max_text_chars": 200}))

    assert len(good) == 30 and rejected.empty
    assert report["reasons"] == dict.fromkeys(rows.REASONS, 0)


def test_empty_label_map_accepts_every_label_as_its_own_class() -> None:
    frame = raw_frame([("good text", "spam"), ("more text", "ham"), ("more text", "ham")])

    good, rejected, _ = rows.validate_frame(frame, DataConfig(label_map={}))

    assert good["label"].tolist() == ["spam", "ham"]
    assert rejected["reason"].tolist() == ["duplicate"]


def test_missing_columns_are_a_schema_error() -> None:
    frame = pd.DataFrame({"body": ["a"], "label": ["1"]})

    with pytest.raises(
        DataError, match=r"expected columns \['text', 'label'\] .*found \['body', 'label'\]"
    ):
        rows.validate_frame(frame, CONFIG)


def test_a_non_string_text_column_is_a_schema_error() -> None:
    frame = pd.DataFrame({"text": [570306, 570301], "label": ["1", "0"]})

    with pytest.raises(DataError, match=r"has dtype int64, expected strings; .*data\.text_column"):
        rows.validate_frame(frame, CONFIG)


def test_check_report_names_every_broken_threshold() -> None:
    frame = raw_frame([(f"text {i}", "1") for i in range(12)] + [(None, "0")] * 4)
    _, _, report = rows.validate_frame(frame, DataConfig())

    problems = rows.check_report(report, DataConfig())

    assert len(problems) == 2
    assert "4 of 16 rows rejected (25.0%) > data.max_rejected_fraction (0.2)" in problems[0]
    assert "missing_text=4" in problems[0]
    assert "{'negative': 0, 'neutral': 0}" in problems[1]
    assert "data.min_rows_per_class (10)" in problems[1]


def test_run_writes_outs_then_a_failing_run_removes_them(project: ProjectPaths) -> None:
    raw = make_comments(60, raw_labels={"negative": -1, "neutral": 0, "positive": 1})
    raw["label"] = raw["label"].astype(str)
    raw.loc[0, "label"] = "9"
    write_parquet(project.raw_dataset, raw)

    result = validate.run(DataConfig(), project)

    assert (result.total, result.accepted, result.rejected) == (60, 59, 1)
    report = json.loads(project.validation_report.read_text())
    assert report["reasons"]["unknown_label"] == 1
    rejected = pd.read_parquet(project.rejected)
    assert rejected.to_dict("records") == [
        {"text": raw.loc[0, "text"], "label": "9", "reason": "unknown_label"}
    ]
    assert set(pd.read_parquet(project.validated)["label"]) == {"negative", "neutral", "positive"}

    with pytest.raises(
        DataError, match=r"validation failed: .*data\.min_rows_per_class \(30\) rows: \{"
    ):
        validate.run(DataConfig(min_rows_per_class=30), project)
    for out in (project.validated, project.rejected, project.validation_report):
        assert not out.exists()


def test_run_without_raw_data_says_to_ingest(project: ProjectPaths) -> None:
    with pytest.raises(DataError, match=r"no raw dataset at .*; run the ingest stage first"):
        validate.run(DataConfig(), project)
