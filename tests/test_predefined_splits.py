"""Predefined splits: data.val_source / data.test_source read, validated and used as given."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from conftest import configure
from http_source import DataServer
from sentiment_pipeline.config.data import DataConfig
from sentiment_pipeline.config.split import SplitConfig
from sentiment_pipeline.data import ingest, prepare, source, validate
from sentiment_pipeline.errors import ConfigError, DataError
from sentiment_pipeline.paths import ProjectPaths
from synthetic import LABELS, make_comments

RAW = {"negative": -1, "neutral": 0, "positive": 1}


def data_config(**kwargs) -> DataConfig:
    kwargs.setdefault("source", "train.csv")
    return DataConfig(text_column="text", label_column="label", **kwargs)


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def stages(config: DataConfig, project: ProjectPaths, split: SplitConfig | None = None):
    """source, ingest, validate and prepare in this process, as `dvc repro prepare` runs them."""
    source.run(config, project)
    ingest.run(config, project)
    validate.run(config, project)
    return prepare.run(split or SplitConfig(), project)


def split_rows(project: ProjectPaths, name: str) -> list[tuple[str, str]]:
    labels = json.loads(project.labels.read_text())
    frame = pd.read_parquet(project.split(name))
    pairs = zip(frame["text"], frame["label"], strict=True)
    return [(text, labels[label]) for text, label in pairs]


def reports(project: ProjectPaths) -> tuple[dict, dict]:
    return (
        json.loads(project.validation_report.read_text()),
        json.loads(project.preparation_report.read_text()),
    )


@pytest.fixture
def train_frame() -> pd.DataFrame:
    return make_comments(120, seed=0, raw_labels=RAW)


def test_the_given_test_rows_are_exactly_the_test_split_and_overlaps_leave_training(
    project: ProjectPaths, train_frame: pd.DataFrame
) -> None:
    write_csv(project.root / "train.csv", train_frame)
    given = make_comments(30, seed=5, raw_labels=RAW)
    given["text"] = "test " + given["text"]
    # Three texts of data.source in the test set, one only after normalisation (NFC, spaces).
    shared = train_frame.loc[[0, 1, 2]].copy()
    shared.loc[2, "text"] = "  " + shared.loc[2, "text"].replace(" ", "   ") + "\t"
    test = pd.concat([given, shared], ignore_index=True)
    write_csv(project.root / "test.csv", test)

    result = stages(data_config(test_source="test.csv"), project)

    expected = [
        (prepare.normalize_text(text), LABELS[[-1, 0, 1].index(int(raw))])
        for text, raw in zip(test["text"], test["label"], strict=True)
    ]
    assert split_rows(project, "test") == expected  # as given: every row, in file order
    assert result.test == 33 and result.given == ("test",)
    assert result.overlap_removed == {"source": {"test_source": 3}}
    train_val = {text for name in ("train", "val") for text, _ in split_rows(project, name)}
    assert len(train_val) == result.train + result.val == 117
    assert not train_val & {text for text, _ in expected}
    assert result.val == 18  # split.val_fraction (0.15) of data.source's 117 remaining rows
    validated, prepared = reports(project)
    assert prepared["overlap_removed"] == {"source": {"test_source": 3}}
    assert prepared["split_from"] == {
        "train": "data.source", "val": "data.source", "test": "data.test_source"
    }
    assert prepared["rows"] == {"train": 99, "val": 18, "test": 33}
    assert validated["sources"]["test_source"]["location"] == "test.csv"
    assert (validated["total"], validated["sources"]["test_source"]["accepted"]) == (153, 33)


def test_each_source_is_validated_on_its_own_and_its_rejections_are_counted(
    project: ProjectPaths, train_frame: pd.DataFrame
) -> None:
    write_csv(project.root / "train.csv", train_frame)
    test = make_comments(30, seed=5, raw_labels=RAW)
    test.loc[len(test)] = [test.loc[0, "text"], -1]  # a duplicate within the test set
    test.loc[len(test)] = ["a label nobody knows", 7]
    path = write_csv(project.root / "test.csv", test)
    path.write_bytes(path.read_bytes() + b"caf\xe9 was fine,1\n")  # one latin-1 byte

    stages(data_config(test_source="test.csv"), project)

    validated, _ = reports(project)
    own = validated["sources"]["test_source"]
    assert (own["total"], own["accepted"], own["rejected"]) == (33, 30, 3)
    assert {k: v for k, v in own["reasons"].items() if v} == {
        "bad_encoding": 1, "unknown_label": 1, "duplicate": 1
    }
    assert validated["sources"]["source"]["rejected"] == 0
    assert validated["rejected"] == 3 and validated["reasons"]["duplicate"] == 1
    rejected = pd.read_parquet(project.rejected)
    assert set(rejected["origin"]) == {"test_source"}
    assert len(split_rows(project, "test")) == 30


def test_a_predefined_split_over_the_rejection_threshold_fails_naming_it(
    project: ProjectPaths, train_frame: pd.DataFrame
) -> None:
    write_csv(project.root / "train.csv", train_frame)
    test = make_comments(9, seed=5, raw_labels=RAW)
    test["label"] = [7, 7, 7] + list(test["label"][3:])
    write_csv(project.root / "test.csv", test)
    config = data_config(test_source="test.csv")
    source.run(config, project)
    ingest.run(config, project)

    with pytest.raises(
        DataError,
        match=r"validation failed: data\.test_source \(test\.csv\): 3 of 9 rows rejected "
        r"\(33\.3%\) > data\.max_rejected_fraction \(0\.2\); reasons: unknown_label=3",
    ):
        validate.run(config, project)


def test_classes_that_data_source_lacks_are_an_error_naming_the_file_and_the_labels(
    project: ProjectPaths, train_frame: pd.DataFrame
) -> None:
    write_csv(project.root / "train.csv", train_frame)
    test = make_comments(12, seed=5, raw_labels=RAW)
    test["label"] = test["label"].astype(str)
    test.loc[[0, 1], "label"] = ["sarcastic", "mixed"]
    write_csv(project.root / "test.csv", test)
    config = data_config(test_source="test.csv", label_map={}, max_rejected_fraction=0.5)
    source.run(config, project)
    ingest.run(config, project)

    with pytest.raises(
        DataError,
        match=r"data\.test_source \(test\.csv\) holds the classes \['mixed', 'sarcastic'\], which "
        r"data\.source \(train\.csv\) does not have \(its classes: \['-1', '0', '1'\]\)",
    ):
        validate.run(config, project)
    assert not project.validated.exists()


def test_given_val_and_test_are_used_as_given_and_train_is_the_rest_of_data_source(
    project: ProjectPaths, train_frame: pd.DataFrame
) -> None:
    write_csv(project.root / "train.csv", train_frame)
    val = make_comments(15, seed=6, raw_labels=RAW)
    test = make_comments(21, seed=7, raw_labels=RAW)
    val["text"], test["text"] = "val " + val["text"], "test " + test["text"]
    val = pd.concat([val, train_frame.loc[[5]], test.loc[[0, 1]]], ignore_index=True)
    test = pd.concat([test, train_frame.loc[[6, 7]]], ignore_index=True)
    write_csv(project.root / "val.csv", val)
    write_csv(project.root / "test.csv", test)

    result = stages(data_config(val_source="val.csv", test_source="test.csv"), project)

    assert (result.train, result.val, result.test) == (117, 16, 23)
    assert result.overlap_removed == {
        "source": {"val_source": 1, "test_source": 2},
        "val_source": {"test_source": 2},
    }
    assert [t for t, _ in split_rows(project, "val")] == list(val["text"][:16])
    assert [t for t, _ in split_rows(project, "test")] == list(test["text"])
    train = [t for t, _ in split_rows(project, "train")]
    assert sorted(train) == sorted(train_frame["text"].drop([5, 6, 7]))


def test_only_a_given_val_split_carves_the_test_split_from_data_source(
    project: ProjectPaths, train_frame: pd.DataFrame
) -> None:
    write_csv(project.root / "train.csv", train_frame)
    val = make_comments(15, seed=6, raw_labels=RAW)
    write_csv(project.root / "val.csv", val)

    result = stages(data_config(val_source="val.csv"), project, SplitConfig(test_fraction=0.25))

    assert (result.train, result.val, result.test) == (90, 15, 30)
    _, prepared = reports(project)
    assert prepared["split_from"]["val"] == "data.val_source"
    assert prepared["overlap_removed"] == {"source": {"val_source": 0}}


def test_without_predefined_splits_nothing_changes(
    project: ProjectPaths, train_frame: pd.DataFrame
) -> None:
    write_csv(project.root / "train.csv", train_frame)

    result = stages(data_config(), project)

    assert "origin" not in pd.read_parquet(project.raw_dataset).columns
    assert "origin" not in pd.read_parquet(project.validated).columns
    validated, prepared = reports(project)
    assert "sources" not in validated
    assert (result.given, result.overlap_removed) == ((), {})
    assert prepared["overlap_removed"] == {} and prepared["given"] == []
    assert json.loads(project.source_stamp.read_text()).keys() == {
        "source", "kind", "path", "size", "sha256"
    }


def test_a_changed_predefined_file_changes_the_stamp_and_a_stale_stamp_is_refused(
    project: ProjectPaths, train_frame: pd.DataFrame
) -> None:
    write_csv(project.root / "train.csv", train_frame)
    test = write_csv(project.root / "test.csv", make_comments(12, seed=5, raw_labels=RAW))
    config = data_config(test_source="test.csv")
    source.run(data_config(), project)

    with pytest.raises(
        DataError, match=r"source\.json has no stamp of data\.test_source \('test\.csv'\); run the "
    ):
        ingest.run(config, project)

    assert source.run(config, project).changed
    stamp = json.loads(project.source_stamp.read_text())
    assert stamp["test_source"]["path"] == "test.csv"
    assert stamp["source"] == "train.csv"  # data.source's own stamp is unchanged in shape
    assert not source.run(config, project).changed
    test.write_text(test.read_text().replace("awful", "AWFUL"))
    assert source.run(config, project).changed
    assert source.hash_cache(project, "test_source").is_file()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DataServer]:
    folder = tmp_path / "served"
    (folder / "test").mkdir(parents=True)
    served = DataServer(folder)
    yield served
    served.stop()


def test_urls_ending_in_the_same_name_are_downloaded_apart(
    project: ProjectPaths, server: DataServer, train_frame: pd.DataFrame
) -> None:
    write_csv(server.folder / "data.csv", train_frame)
    write_csv(server.folder / "test" / "data.csv", make_comments(12, seed=5, raw_labels=RAW))
    config = data_config(source=f"{server.url}/data.csv", test_source=f"{server.url}/test/data.csv")
    source.run(config, project)

    result = ingest.run(config, project)

    assert result.rows_by_source == {"source": 120, "test_source": 12}
    assert (project.downloads_dir / "test_source" / "data.csv").is_file()
    assert (project.downloads_dir / "data.csv").read_bytes() == (
        server.folder / "data.csv"
    ).read_bytes()


def test_offline_a_predefined_url_keeps_its_last_stamp(
    project: ProjectPaths, server: DataServer, train_frame: pd.DataFrame
) -> None:
    write_csv(project.root / "train.csv", train_frame)
    write_csv(server.folder / "test" / "data.csv", make_comments(12, seed=5, raw_labels=RAW))
    config = data_config(test_source=f"{server.url}/test/data.csv", download_timeout_s=5)
    source.run(config, project)
    before = project.source_stamp.read_bytes()
    server.stop()

    result = source.run(config, project)

    assert (result.offline, result.changed) == (True, False)
    assert project.source_stamp.read_bytes() == before


def test_the_class_minimum_is_for_data_source_only(project: ProjectPaths) -> None:
    write_csv(project.root / "train.csv", make_comments(60, seed=0, raw_labels=RAW))
    write_csv(project.root / "test.csv", make_comments(6, seed=5, raw_labels=RAW))

    result = stages(data_config(test_source="test.csv"), project)

    assert result.test == 6  # 2 rows a class, below data.min_rows_per_class (10)


# --- configuration --------------------------------------------------------------------------


def test_predefined_sources_default_to_none_and_are_checked_like_data_source(
    project: ProjectPaths,
) -> None:
    assert (DataConfig().val_source, DataConfig().test_source) == (None, None)
    assert configure(project, "data.test_source=dev.tsv").config.data.sources() == {
        "source": DataConfig().source, "test_source": "dev.tsv"
    }
    with pytest.raises(ConfigError, match=r"data\.test_source.*the scheme 'ftp' is not supported"):
        configure(project, "data.test_source=ftp://host/dev.tsv")
    with pytest.raises(
        ConfigError,
        match=r"data\.val_source and data\.source are both 'a\.csv'; a predefined split must be "
        "another file",
    ):
        configure(project, "data.source=a.csv", "data.val_source=a.csv")


# --- prepare_frame --------------------------------------------------------------------------


def validated(frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    return frame.assign(origin=origin)


def test_a_given_split_with_a_class_training_lacks_is_an_error() -> None:
    # Every row of the test set's "positive" texts is also in data.source: none is left there.
    main = make_comments(60, seed=0)
    positive = main[main["label"] == "positive"]
    frame = pd.concat([validated(main, "source"), validated(positive, "test_source")])

    with pytest.raises(
        DataError,
        match=r"the predefined test split \(data\.test_source\) holds the classes \['positive'\], "
        r"which data\.source's training rows do not \(classes \['negative', 'neutral'\]\)",
    ):
        prepare.prepare_frame(frame, SplitConfig())


def test_a_given_val_split_wholly_inside_the_test_split_is_an_error() -> None:
    main, test = make_comments(60, seed=0), make_comments(12, seed=5)
    frame = pd.concat(
        [validated(main, "source"), validated(test, "test_source"), validated(test, "val_source")]
    )

    with pytest.raises(DataError, match=r"no rows left in the predefined val split: every text of "
                       r"data\.val_source is in data\.test_source too"):
        prepare.prepare_frame(frame, SplitConfig())


def test_one_carved_split_needs_fewer_rows_per_class() -> None:
    main = make_comments(60, seed=0)
    main = main[(main["label"] != "positive") | (main.index < 15)]  # 5 positive rows
    test = make_comments(12, seed=5)
    frame = pd.concat([validated(main, "source"), validated(test, "test_source")])

    splits, _, report = prepare.prepare_frame(frame, SplitConfig(val_fraction=0.2))
    assert (len(splits["val"]), report["given"]) == (9, ["test"])
    with pytest.raises(
        DataError,
        match=r"classes \{'positive': 5\} have fewer than 10 rows \(needed with "
        r"split\.val_fraction=0\.1\); add data",
    ):
        prepare.prepare_frame(frame, SplitConfig(val_fraction=0.1))
