"""End to end: the data stages through `dvc repro` in a temporary git repository.

The source stage runs every time; the others rerun exactly when the data source changed: a
local file edited, a URL whose server gives a new ETag; offline nothing reruns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from http_source import DataServer
from synthetic import make_comments

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_STAGES = ("source", "ingest", "validate", "prepare")
SKIPPABLE = DATA_STAGES[1:]  # source is always_changed: it runs, and changes nothing
OUTS = (
    "data/raw/source.json",
    "data/raw/dataset.parquet",
    "data/interim/validated.parquet",
    "data/interim/rejected.parquet",
    "reports/data_validation.json",
    "data/processed/train.parquet",
    "data/processed/val.parquet",
    "data/processed/test.parquet",
    "data/processed/labels.json",
    "reports/data_preparation.json",
)


def sh(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def nothing_reran(output: str) -> bool:
    return all(f"Stage '{name}' didn't change, skipping" in output for name in SKIPPABLE)


def reran(output: str) -> list[str]:
    return [name for name in DATA_STAGES if f"Running stage '{name}'" in output]


def set_source(repo: Path, source: str) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["source"] = source
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def dvc_repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A git + DVC repository with the data stages, the sources they depend on and a CSV."""
    repo = tmp_path / "repo"
    repo.mkdir()
    pipeline = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    stages = {name: pipeline["stages"][name] for name in DATA_STAGES}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["data"].update(source="comments.csv", text_column="text", label_column="label")
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copytree(
        REPO_ROOT / "src" / "sentiment_pipeline",
        repo / "src" / "sentiment_pipeline",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    frame = make_comments(150, raw_labels={"negative": -1, "neutral": 0, "positive": 1})
    extra = pd.DataFrame({"text": [frame.loc[0, "text"], "a label nobody knows"], "label": [-1, 5]})
    pd.concat([frame, extra]).to_csv(repo / "comments.csv", index=False)

    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlruns.db'}",
        "DVC_NO_ANALYTICS": "1",
    }
    sh(["git", "init", "-q"], repo, env)
    sh(["dvc", "init", "-q"], repo, env)
    return repo, env


@pytest.mark.slow
def test_dvc_repro_runs_the_data_stages_once(dvc_repo: tuple[Path, dict[str, str]]) -> None:
    repo, env = dvc_repo

    sh(["dvc", "repro", "prepare"], repo, env)

    for out in OUTS:
        assert (repo / out).is_file(), out
    report = json.loads((repo / "reports/data_validation.json").read_text())
    assert (report["total"], report["accepted"], report["rejected"]) == (152, 150, 2)
    assert report["reasons"]["duplicate"] == 1 and report["reasons"]["unknown_label"] == 1
    assert json.loads((repo / "data/processed/labels.json").read_text()) == [
        "negative",
        "neutral",
        "positive",
    ]
    processed = repo / "data" / "processed"
    splits = [pd.read_parquet(processed / f"{n}.parquet") for n in ("train", "val", "test")]
    assert sum(len(s) for s in splits) == 150
    assert all(s["label"].dtype == "int64" for s in splits)
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert set(lock["stages"]) == set(DATA_STAGES)
    stamps = {out: (repo / out).stat().st_mtime_ns for out in OUTS}

    again = sh(["dvc", "repro", "prepare"], repo, env)
    assert nothing_reran(again), again

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["baseline"]["C"] = 2.5
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    unrelated = sh(["dvc", "repro", "prepare"], repo, env)
    assert nothing_reran(unrelated), unrelated
    assert {out: (repo / out).stat().st_mtime_ns for out in OUTS} == stamps


@pytest.mark.slow
def test_editing_the_local_source_reruns_ingest(dvc_repo: tuple[Path, dict[str, str]]) -> None:
    repo, env = dvc_repo
    sh(["dvc", "repro", "prepare"], repo, env)
    assert nothing_reran(sh(["dvc", "repro", "prepare"], repo, env))

    csv = repo / "comments.csv"
    csv.write_text(csv.read_text().replace("awful", "dreadful"))
    edited = sh(["dvc", "repro", "prepare"], repo, env)

    assert reran(edited) == list(DATA_STAGES), edited
    assert "dreadful" in " ".join(pd.read_parquet(repo / "data/raw/dataset.parquet")["text"])
    assert nothing_reran(sh(["dvc", "repro", "prepare"], repo, env))


@pytest.mark.slow
def test_a_predefined_test_set_is_the_test_split_and_its_edits_rerun_the_data_stages(
    dvc_repo: tuple[Path, dict[str, str]],
) -> None:
    repo, env = dvc_repo
    comments = pd.read_csv(repo / "comments.csv")
    test = make_comments(24, seed=9, raw_labels={"negative": -1, "neutral": 0, "positive": 1})
    test = pd.concat([test, comments.loc[[3, 4]]], ignore_index=True)  # two texts of comments.csv
    test.to_csv(repo / "dev.csv", index=False)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["test_source"] = "dev.csv"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    first = sh(["dvc", "repro", "prepare"], repo, env)

    assert reran(first) == list(DATA_STAGES), first
    given = pd.read_parquet(repo / "data/processed/test.parquet")
    assert given["text"].tolist() == test["text"].tolist()
    prepared = json.loads((repo / "reports/data_preparation.json").read_text())
    assert prepared["overlap_removed"] == {"source": {"test_source": 2}}
    assert prepared["rows"]["test"] == 26 and prepared["split_from"]["test"] == "data.test_source"
    assert nothing_reran(sh(["dvc", "repro", "prepare"], repo, env))

    (repo / "dev.csv").write_text((repo / "dev.csv").read_text().replace("awful", "dreadful"))
    edited = sh(["dvc", "repro", "prepare"], repo, env)

    assert reran(edited) == list(DATA_STAGES), edited
    texts = " ".join(pd.read_parquet(repo / "data/processed/test.parquet")["text"])
    assert "dreadful" in texts and "awful" not in texts


@pytest.fixture
def served(dvc_repo: tuple[Path, dict[str, str]], tmp_path: Path) -> Iterator[DataServer]:
    """The fixture's CSV on a local HTTP server with ETags, named by data.source."""
    repo, _ = dvc_repo
    folder = tmp_path / "served"
    folder.mkdir()
    os.replace(repo / "comments.csv", folder / "comments.csv")
    server = DataServer(folder)
    set_source(repo, f"{server.url}/comments.csv")
    yield server
    server.stop()


@pytest.mark.slow
def test_a_url_source_reruns_ingest_when_it_changes_and_nothing_when_offline(
    dvc_repo: tuple[Path, dict[str, str]], served: DataServer
) -> None:
    repo, env = dvc_repo
    sh(["dvc", "repro", "prepare"], repo, env)
    assert nothing_reran(sh(["dvc", "repro", "prepare"], repo, env))

    csv = served.folder / "comments.csv"
    csv.write_text(csv.read_text().replace("awful", "dreadful"))
    changed = sh(["dvc", "repro", "prepare"], repo, env)
    assert reran(changed) == list(DATA_STAGES), changed
    assert "dreadful" in " ".join(pd.read_parquet(repo / "data/raw/dataset.parquet")["text"])
    stamp = (repo / "data/raw/source.json").read_bytes()

    served.stop()
    offline = sh(["dvc", "repro", "prepare"], repo, env)
    assert nothing_reran(offline), offline
    assert "keeping the stamp of its last check" in offline
    assert (repo / "data/raw/source.json").read_bytes() == stamp
    # even a forced rerun of ingest works offline: the download is reused
    forced = sh(["dvc", "repro", "--force", "--single-item", "ingest"], repo, env)
    assert "reusing" in forced and reran(forced) == ["ingest"], forced
