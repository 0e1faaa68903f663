"""Tests of the prepare stage: normalisation, stratified split, determinism."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sentiment_pipeline.config.split import SplitConfig
from sentiment_pipeline.data import prepare
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.io import write_parquet
from sentiment_pipeline.paths import ProjectPaths
from synthetic import make_comments


def imbalanced(n_neg: int = 150, n_neu: int = 90, n_pos: int = 60) -> pd.DataFrame:
    """Validated rows (text, class name) with unequal classes."""
    frame = make_comments(3 * max(n_neg, n_neu, n_pos), seed=1)
    wanted = {"negative": n_neg, "neutral": n_neu, "positive": n_pos}
    parts = [frame[frame["label"] == name].head(n) for name, n in wanted.items()]
    return pd.concat(parts).sample(frac=1, random_state=0).reset_index(drop=True)


def test_normalize_text_composes_unicode_and_collapses_whitespace() -> None:
    assert prepare.normalize_text("  Cafe\u0301 \t au\n\n  lait\u00a0 ") == "Caf\u00e9 au lait"


def test_normalize_frame_drops_and_counts_rows_that_collide() -> None:
    frame = pd.DataFrame(
        {
            "text": ["a  b", "a b", " \u00a0 ", "c\td", "c d", "unique"],
            "label": ["neutral", "neutral", "neutral", "negative", "positive", "positive"],
        }
    )

    clean, drops = prepare.normalize_frame(frame)

    assert clean.to_dict("records") == [
        {"text": "a b", "label": "neutral"},
        {"text": "unique", "label": "positive"},
    ]
    assert drops == {"dropped_empty": 1, "dropped_conflicting": 2, "dropped_duplicates": 1}


def test_split_is_stratified_disjoint_and_in_the_contract() -> None:
    config = SplitConfig(val_fraction=0.2, test_fraction=0.2, seed=3)
    frame = imbalanced()

    splits, labels, _ = prepare.prepare_frame(frame, config)

    assert labels == ["negative", "neutral", "positive"]
    sizes = {name: len(part) for name, part in splits.items()}
    assert sizes == {"train": 180, "val": 60, "test": 60}
    overall = frame["label"].map(labels.index).value_counts(normalize=True).sort_index()
    for name, part in splits.items():
        assert list(part.columns) == ["text", "label"]
        assert part["label"].dtype == "int64"
        assert pd.api.types.is_string_dtype(part["text"])
        shares = part["label"].value_counts(normalize=True).sort_index()
        assert (shares - overall).abs().max() < 0.02, name
    texts = [set(part["text"]) for part in splits.values()]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])


def test_the_seed_decides_the_split() -> None:
    frame = imbalanced()

    first, _, _ = prepare.prepare_frame(frame, SplitConfig(seed=1))
    again, _, _ = prepare.prepare_frame(frame, SplitConfig(seed=1))
    other, _, _ = prepare.prepare_frame(frame, SplitConfig(seed=2))

    assert first["test"].equals(again["test"])
    assert not first["test"].equals(other["test"])


def test_a_class_too_small_to_stratify_is_a_data_error() -> None:
    frame = imbalanced(n_neg=40, n_neu=40, n_pos=4)

    with pytest.raises(
        DataError,
        match=r"too few rows to stratify the split: classes \{'positive': 4\} "
        r"have fewer than 7 rows",
    ):
        prepare.prepare_frame(frame, SplitConfig())


def test_run_twice_writes_byte_identical_files(project: ProjectPaths) -> None:
    write_parquet(project.validated, imbalanced())
    outputs = [project.split(name) for name in prepare.SPLITS] + [project.labels]

    result = prepare.run(SplitConfig(), project)
    first = [path.read_bytes() for path in outputs]
    for path in outputs:
        path.unlink()
    prepare.run(SplitConfig(), project)

    assert [path.read_bytes() for path in outputs] == first
    assert json.loads(project.labels.read_text()) == ["negative", "neutral", "positive"]
    assert (result.train, result.val, result.test) == (210, 45, 45)
    assert pd.read_parquet(project.split("test"))["label"].dtype == "int64"


def test_run_without_validated_data_says_to_validate(project: ProjectPaths) -> None:
    with pytest.raises(DataError, match=r"no validated data at .*; run the validate stage"):
        prepare.run(SplitConfig(), project)
