"""MLflow set-up: local SQLite default, env override, nested runs with tags."""

from __future__ import annotations

import subprocess

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from sentiment_pipeline import tracking
from sentiment_pipeline.config import SplitConfig
from sentiment_pipeline.settings import Settings, get_settings


def test_default_store_is_sqlite_in_the_project(project):
    assert tracking.tracking_uri(project, Settings()) == f"sqlite:///{project.mlflow_db}"


def test_environment_points_elsewhere(project, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    get_settings.cache_clear()
    assert tracking.tracking_uri(project) == "http://127.0.0.1:5999"


def test_settings_prefix(monkeypatch):
    monkeypatch.setenv("SENTIMENT_PIPELINE_OPTUNA_STORAGE", "postgresql://u@h/db")
    monkeypatch.setenv("SENTIMENT_PIPELINE_PORT", "9001")
    settings = Settings()
    assert settings.optuna_storage == "postgresql://u@h/db" and settings.port == 9001


def test_flatten():
    assert tracking.flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {
        "a.b": 1,
        "a.c": "[1, 2]",
        "d": None,
    }


@pytest.mark.slow
def test_parent_and_nested_child_runs(project):
    config = SplitConfig()
    with tracking.stage_run("prepare", config, project) as parent:
        tracking.log_metrics({"rows": 10, "skip": None, "nested": {"x": 0.5}})
        with tracking.child_run("trial-0", params={"lr": 0.1}) as child:
            tracking.log_metrics({"f1": 0.7})
    client = MlflowClient(tracking.tracking_uri(project))
    parent_run = client.get_run(parent.info.run_id)
    child_run = client.get_run(child.info.run_id)
    assert parent_run.data.params["val_fraction"] == "0.15"
    assert parent_run.data.metrics == {"rows": 10.0, "nested.x": 0.5}
    assert parent_run.data.tags["params_hash"]
    assert child_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child_run.data.tags["stage"] == "prepare"
    assert child_run.data.params == {"lr": "0.1"}
    experiment = client.get_experiment(parent_run.info.experiment_id)
    assert experiment.name == "sentiment-pipeline/prepare"
    assert experiment.artifact_location.startswith(project.mlflow_artifacts.as_uri())
    assert mlflow.active_run() is None


def test_git_commit_is_the_commit_checked_out(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "f.txt"], [*identity, "commit", "-qm", "one"]):
        (repo / "f.txt").write_text("x")
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    # Read the commit from git's files, not through the command under test.
    branch = (repo / ".git" / "HEAD").read_text().removeprefix("ref: ").strip()
    expected = (repo / ".git" / branch).read_text().strip()

    assert len(expected) == 40
    assert tracking.git_commit(repo) == expected
    assert tracking.git_commit(tmp_path) is None  # a folder outside any repository
