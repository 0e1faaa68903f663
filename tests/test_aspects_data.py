"""prepare_aspects: the aspect data read, validated, split grouped by text; or skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO_ROOT
from sentiment_pipeline.config.aspects import AspectsDataConfig, PrepareAspectsConfig
from sentiment_pipeline.config.split import SplitConfig
from sentiment_pipeline.data import prepare_aspects
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.paths import ProjectPaths

ABSA = REPO_ROOT.parent / "shared" / "data" / "absa"
LABELS = ["negative", "neutral", "positive"]


def sentences(n: int) -> list[tuple[str, str, str]]:
    """n sentences, each with 1 to 3 aspects of varied sentiment (all valid rows)."""
    rows = []
    terms = ["screen", "battery", "keyboard"]
    for i in range(n):
        text = f"Review {i}: the screen is nice, the battery is ok and the keyboard is bad."
        for j in range(1 + i % 3):
            rows.append((text, terms[j], LABELS[(i + j) % 3]))
    return rows


BAD = [
    ("The fan is loud.", "speaker", "negative"),  # aspect not in the text
    ("The case is sturdy.", "  ", "positive"),  # blank aspect
    ("The price is fair.", "PRICE", "neutral"),  # kept: occurrence is case-insensitive
    ("The price is fair.", "PRICE", "neutral"),  # duplicate of the row above
    ("The mouse works.", "mouse", "positive"),  # conflict: same (text, aspect), two labels
    ("The mouse works.", "mouse", "negative"),
    ("The mouse works.", "works", "neutral"),  # another aspect of that text: kept
    ("   ", "screen", "positive"),  # blank text
    ("The hinge broke.", "hinge", "conflict"),  # unknown label
]


def write_csv(path: Path, rows: list[tuple[str, str, str]], encoding: str = "utf-8") -> Path:
    frame = pd.DataFrame(rows, columns=["text", "aspect", "sentiment"])
    frame.to_csv(path, index=False, encoding=encoding)
    return path


def config(**aspects: object) -> PrepareAspectsConfig:
    split = SplitConfig(val_fraction=0.2, test_fraction=0.2, seed=3)
    return PrepareAspectsConfig(
        aspects=AspectsDataConfig(min_rows_per_class=2, max_rejected_fraction=0.5, **aspects),
        split=split,
    )


def read(paths: ProjectPaths) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(paths.aspects_split(name)) for name in ("train", "val", "test")}


def test_rows_are_rejected_with_reasons_and_the_split_is_grouped_by_text(
    project: ProjectPaths,
) -> None:
    write_csv(project.root / "aspects.csv", sentences(30) + BAD)

    result = prepare_aspects.run(config(source="aspects.csv"), project)

    rejected = pd.read_parquet(project.aspects_rejected)
    keys = rejected["text"].str.strip() + "|" + rejected["aspect"]
    reasons = dict(zip(keys, rejected["reason"], strict=True))
    assert reasons == {
        "The fan is loud.|speaker": "aspect_not_in_text",
        "The case is sturdy.|": "aspect_not_in_text",
        "The price is fair.|PRICE": "duplicate",
        "The mouse works.|mouse": "conflicting_duplicate",
        "|screen": "empty_text",
        "The hinge broke.|hinge": "unknown_label",
    }
    assert (rejected["reason"] == "conflicting_duplicate").sum() == 2
    splits = read(project)
    texts = {name: set(part["text"]) for name, part in splits.items()}
    assert not texts["train"] & texts["val"] and not texts["train"] & texts["test"]
    assert not texts["val"] & texts["test"]
    kept = pd.concat(splits.values())
    assert len(kept) == result.train + result.val + result.test == len(sentences(30)) + 2
    assert {("The mouse works.", "works"), ("The price is fair.", "PRICE")} <= set(
        zip(kept["text"], kept["aspect"], strict=True)
    )
    for part in splits.values():
        assert [str(t) for t in part.dtypes] == ["str", "str", "int64"]
        assert list(part.columns) == ["text", "aspect", "label"]
        pairs = zip(part["text"], part["aspect"], strict=True)
        assert all(a.lower() in t.lower() for t, a in pairs)
        assert set(part["label"]) <= {0, 1, 2}
    assert json.loads(project.aspects_labels.read_text()) == LABELS
    report = json.loads(project.aspects_report.read_text())
    assert report["status"] == "prepared"
    assert report["reasons"]["aspect_not_in_text"] == 2
    assert report["rows"] == {name: len(part) for name, part in splits.items()}
    assert sum(report["classes"]["train"].values()) == result.train
    # the same seed gives the same split
    prepare_aspects.run(config(source="aspects.csv"), project)
    assert all(read(project)[name].equals(part) for name, part in splits.items())


def test_a_predefined_test_split_is_used_as_given_and_its_texts_leave_training(
    project: ProjectPaths,
) -> None:
    train_rows = sentences(30)
    seen = {text for text, _, _ in train_rows}
    # new texts, and one text of data.source: it leaves train/val
    test_rows = [row for row in sentences(40) if row[0] not in seen] + [train_rows[0]]
    write_csv(project.root / "train.csv", train_rows)
    write_csv(project.root / "test.csv", test_rows)

    result = prepare_aspects.run(config(source="train.csv", test_source="test.csv"), project)

    splits = read(project)
    assert result.given == ("test",)
    assert len(splits["test"]) == len(test_rows)
    shared = train_rows[0][0]
    assert shared in set(splits["test"]["text"])
    assert shared not in set(splits["train"]["text"]) | set(splits["val"]["text"])
    report = json.loads(project.aspects_report.read_text())
    assert report["overlap_removed"] == {"source": {"test_source": 1}}
    assert set(report["sources"]) == {"source", "test_source"}


def test_a_latin1_file_is_read_with_its_encoding_and_rejected_without_it(
    project: ProjectPaths,
) -> None:
    rows = sentences(30) + [("Le café est très bon.", "café", "positive")]
    write_csv(project.root / "latin.csv", rows, encoding="latin-1")

    prepare_aspects.run(config(source="latin.csv", encoding="latin-1"), project)
    kept = pd.concat(read(project).values())
    assert "café" in set(kept["aspect"])

    prepare_aspects.run(config(source="latin.csv"), project)
    rejected = pd.read_parquet(project.aspects_rejected)
    assert list(rejected["reason"]) == ["bad_encoding"]


def test_no_aspect_data_writes_empty_splits_and_a_skipped_report(project: ProjectPaths) -> None:
    result = prepare_aspects.run(PrepareAspectsConfig(), project)

    assert result.status == "skipped"
    for part in read(project).values():
        assert part.empty
        assert list(part.columns) == ["text", "aspect", "label"]
        assert [str(t) for t in part.dtypes] == ["str", "str", "int64"]
    report = json.loads(project.aspects_report.read_text())
    assert report["status"] == "skipped"
    assert report["reason"] == "no aspect data configured (aspects.source is null)"
    assert json.loads(project.aspects_labels.read_text()) == LABELS
    assert pd.read_parquet(project.aspects_rejected).empty


def test_errors_name_the_file_the_key_and_what_is_accepted(project: ProjectPaths) -> None:
    path = write_csv(project.root / "aspects.csv", sentences(30))

    with pytest.raises(DataError, match=r"expected a column 'term' in .*aspects\.csv "
                       r"\(aspects\.source\), found \['text', 'aspect', 'sentiment'\]; set "
                       r"aspects\.aspect_column"):
        prepare_aspects.run(config(source=str(path), aspect_column="term"), project)
    with pytest.raises(DataError, match=r"reasons: unknown_label=40; fix the data or raise "
                       r"aspects\.max_rejected_fraction"):
        prepare_aspects.run(
            config(source="aspects.csv", label_map={"positive": "positive"}), project
        )
    with pytest.raises(ValueError, match=r"is a URL; the aspect data is read from a local file"):
        AspectsDataConfig(source="https://example.com/a.csv")


@pytest.mark.slow  # 2.3 s: 3,000 rows and an MLflow run
@pytest.mark.skipif(not (ABSA / "laptops_train.csv").is_file(), reason=f"no SemEval at {ABSA}")
def test_the_semeval_laptops_split_is_sane(project: ProjectPaths) -> None:
    result = prepare_aspects.run(
        PrepareAspectsConfig(
            aspects=AspectsDataConfig(
                source=str(ABSA / "laptops_train.csv"), test_source=str(ABSA / "laptops_test.csv")
            )
        ),
        project,
    )

    assert (result.train, result.val, result.test) == (1931, 323, 633)
    report = json.loads(project.aspects_report.read_text())
    assert report["reasons"]["aspect_not_in_text"] == 0
    assert report["reasons"]["conflicting_duplicate"] == 28
    assert report["classes"]["test"] == {"negative": 126, "neutral": 167, "positive": 340}
    splits = read(project)
    assert not set(splits["train"]["text"]) & set(splits["val"]["text"])
