"""MLflow set-up: local SQLite default, env override, nested runs with tags."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from mlflow_server import free_port
from sentiment_pipeline import tracking
from sentiment_pipeline.config.split import SplitConfig
from sentiment_pipeline.errors import ConfigError
from sentiment_pipeline.service_settings import ServiceSettings
from sentiment_pipeline.settings import Settings, get_settings
from sentiment_pipeline.tracking import experiments, runs, store
from sentiment_pipeline.urls import redact


def test_default_store_is_sqlite_in_the_project(project):
    assert tracking.tracking_uri(project, Settings()) == f"sqlite:///{project.mlflow_db}"


def test_environment_points_elsewhere(project, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    get_settings.cache_clear()
    assert tracking.tracking_uri(project) == "http://127.0.0.1:5999"


def test_settings_prefix(monkeypatch):
    monkeypatch.setenv("SENTIMENT_PIPELINE_OPTUNA_STORAGE", "postgresql://u@h/db")
    monkeypatch.setenv("SENTIMENT_PIPELINE_PORT", "9001")
    settings = ServiceSettings()  # the service's settings extend the stages' (one prefix)
    assert settings.optuna_storage == "postgresql://u@h/db" and settings.port == 9001
    assert Settings().optuna_storage == "postgresql://u@h/db"


def test_flatten():
    assert runs.flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {
        "a.b": 1,
        "a.c": "[1, 2]",
        "d": None,
    }


@pytest.mark.slow
def test_parent_and_nested_child_runs(project):
    config = SplitConfig()
    with tracking.stage_run("prepare", config, project) as parent:
        tracking.log_metrics({"rows": 10, "skip": None, "nested": {"x": 0.5}})
        child = runs.start_child_run("trial-0", tags={"optuna_trial": "0"})
        runs.log_params({"lr": 0.1}, child)
        tracking.log_metrics({"f1": 0.7}, run_id=child)
        assert mlflow.active_run().info.run_id == parent.info.run_id
    client = MlflowClient(tracking.tracking_uri(project))
    parent_run = client.get_run(parent.info.run_id)
    child_run = client.get_run(child)
    assert parent_run.data.params["val_fraction"] == "0.15"
    assert parent_run.data.metrics == {"rows": 10.0, "nested.x": 0.5}
    assert parent_run.data.tags["params_hash"]
    assert child_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child_run.data.tags["stage"] == "prepare"
    assert child_run.data.tags["optuna_trial"] == "0"
    assert child_run.data.params == {"lr": "0.1"}
    assert child_run.data.metrics == {"f1": 0.7}
    experiment = client.get_experiment(parent_run.info.experiment_id)
    assert experiment.name == "sentiment-pipeline/prepare"
    assert experiment.artifact_location.startswith(project.mlflow_artifacts.as_uri())
    assert mlflow.active_run() is None


def test_runs_left_running_by_a_dead_process_of_this_machine_are_closed(project):
    """kill -9 leaves a stage's run and its trials RUNNING; the next start of the stage closes
    them, and only them: not a live process's run, not another machine's worker's."""
    config = SplitConfig()
    dead = subprocess.Popen(["true"])
    dead.wait()
    client = MlflowClient(tracking.tracking_uri(project))
    experiment = experiments.use_experiment("prepare", project)

    def running(host: str, pid: int, parent: str | None = None) -> str:
        tags = {experiments.HOST_TAG: host, experiments.PID_TAG: str(pid)}
        if parent:
            tags["mlflow.parentRunId"] = parent
        return client.create_run(experiment, tags=tags).info.run_id

    here = socket.gethostname()
    killed = running(here, dead.pid)
    killed_trial = running(here, dead.pid, parent=killed)
    finished_trial = running(here, dead.pid, parent=killed)
    client.set_terminated(finished_trial, status="FINISHED")
    alive = running(here, os.getpid())
    elsewhere = running("another-host", dead.pid)

    with tracking.stage_run("prepare", config, project) as run:
        tags = client.get_run(run.info.run_id).data.tags
        assert tags[experiments.HOST_TAG] == here and tags[experiments.PID_TAG] == str(os.getpid())
    status = {name: client.get_run(run_id).info.status for name, run_id in [
        ("killed", killed), ("killed_trial", killed_trial), ("finished_trial", finished_trial),
        ("alive", alive), ("elsewhere", elsewhere)]}
    assert status == {"killed": "KILLED", "killed_trial": "KILLED",
                      "finished_trial": "FINISHED", "alive": "RUNNING", "elsewhere": "RUNNING"}


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
    assert experiments.git_commit(repo) == expected
    assert experiments.git_commit(tmp_path) is None  # a folder outside any repository


# --- the URI and the probe --------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "sqlite:///x/mlruns.db",
        "file:/x/mlruns",
        "mlruns",
        "/abs/mlruns",
        "http://127.0.0.1:5000",
        "https://mlflow.example.com/prefix",
        "databricks",
        "databricks://my-profile",
        "postgresql://u:p@db/mlflow",
        "postgresql+psycopg2://u:p@db/mlflow",
        "mysql+pymysql://u:p@db/mlflow",
        "mssql+pyodbc://u:p@db/mlflow",
    ],
)
def test_the_schemes_mlflow_accepts(uri):
    store.check_uri(uri)


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [("htp://x", "htp"), ("foo:bar", "foo"), ("localhost:5000", "localhost"),
     ("postgres://bob:s3cret@db/mlflow", "postgres")],
)
def test_an_unknown_scheme_is_a_config_error_naming_the_variable(uri, scheme):
    with pytest.raises(ConfigError) as error:
        store.check_uri(uri)
    message = str(error.value)
    assert message.startswith(f"MLFLOW_TRACKING_URI='{redact(uri)}' has a scheme")
    assert f"({scheme!r})" in message
    assert "sqlite:///" in message and "http(s)://" in message and "databricks" in message
    assert "postgresql|mysql|mssql" in message
    assert "s3cret" not in message and "\n" not in message


def test_redact_hides_the_password():
    assert redact("http://bob:s3cret@host:5000/x") == "http://bob:***@host:5000/x"
    assert redact("http://host:5000") == "http://host:5000"


def test_a_closed_port_is_refused_at_once():
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(tracking.TrackingUnavailable,
                       match=rf"^the MLflow server {uri} cannot be reached \(ConnectionRefused"):
        tracking.probe(uri, timeout_s=5)
    assert time.monotonic() - started < 2


def test_a_server_that_never_answers_is_given_up_after_the_timeout():
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(tracking.TrackingUnavailable,
                           match=rf"^the MLflow server {uri} did not answer within 1\.5 s$"):
            tracking.probe(uri, timeout_s=1.5)
        assert time.monotonic() - started < 3


def test_a_missing_local_store_is_refused_only_when_it_must_exist(tmp_path):
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    tracking.probe(missing)
    with pytest.raises(tracking.TrackingUnavailable, match="no MLflow store at"):
        tracking.probe(missing, existing=True)
    assert not (tmp_path / "none.db").exists()


# --- MLflow's HTTP bounds -----------------------------------------------------------------------

RETRIES = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
TIMEOUT = "MLFLOW_HTTP_REQUEST_TIMEOUT"


def test_stage_bounds_keep_what_the_user_set_and_quick_bounds_override_for_a_while(monkeypatch):
    monkeypatch.setenv(TIMEOUT, "90")
    monkeypatch.delenv(RETRIES, raising=False)
    bounds = store.HttpBounds()
    with bounds.applied(tracking.http_bounds(2, 20), override=False):
        assert os.environ[RETRIES] == "2" and os.environ[TIMEOUT] == "90"
        with bounds.applied(tracking.http_bounds(0, 2)):
            assert os.environ[RETRIES] == "0" and os.environ[TIMEOUT] == "2"
        assert os.environ[RETRIES] == "2" and os.environ[TIMEOUT] == "90"
    assert RETRIES not in os.environ and os.environ[TIMEOUT] == "90"


# --- the logging guard ----------------------------------------------------------------------


def refused() -> None:
    import requests

    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError as exc:
        raise requests.exceptions.ConnectionError("Max retries exceeded") from exc


def test_the_guard_records_an_outage_skips_while_down_and_lets_bugs_through():
    guard = tracking.LoggingGuard("http://bob:s3cret@127.0.0.1:9")
    calls = []
    assert guard.call("trial 0", "params", calls.append, 1) is None and calls == [1]
    with pytest.raises(ValueError):
        guard.call("trial 0", "metrics", int, "x")  # not an outage: raised as it is

    assert guard.call("trial 0", "metrics", refused) is None
    assert guard.down and guard.cause == "ConnectionRefusedError: [Errno 111] Connection refused"
    guard.call("trial 0", "tag state", calls.append, 2)  # skipped while down
    assert calls == [1]
    assert guard.missed == {"trial 0": ["metrics", "tag state"]}


def test_the_guard_probes_a_down_store_and_resumes_when_it_answers(monkeypatch):
    guard = tracking.LoggingGuard("http://127.0.0.1:9")
    guard.call("trial 0", "metrics", refused)
    answers = []

    def probe(uri: str) -> None:
        if not answers:
            raise tracking.TrackingUnavailable("down")

    monkeypatch.setattr("sentiment_pipeline.tracking.guard.probe", probe)
    assert guard.answering() is False and guard.down
    answers.append(True)
    assert guard.answering() is True and not guard.down
    assert guard.call("trial 2", "metrics", lambda: 5) == 5


def test_the_summary_names_what_was_not_logged():
    guard = tracking.LoggingGuard("http://bob:s3cret@127.0.0.1:9")
    guard.call("trial 1", "metrics", refused)
    for scope, what in [("trial 1", "metrics"), ("trial 1", "end of run"), ("trial 2", "run"),
                        ("trial 2", "metrics"), ("trial 3", "run"), ("trial 4", "run"),
                        ("trial 6", "run"), (tracking.STAGE_SCOPE, "best params")]:
        guard.miss(scope, what)
    assert guard.summary() == (
        "trial 1 (metrics, end of run); trials 2-4 (whole runs); trial 6 (whole run); "
        "the stage run (best params)"
    )
    with pytest.raises(tracking.TrackingUnavailable) as error:
        guard.check("the model was saved")
    assert str(error.value) == (
        "MLflow at http://bob:***@127.0.0.1:9 stopped answering (ConnectionRefusedError: "
        "[Errno 111] Connection refused); the model was saved; not logged to MLflow: "
        + guard.summary()
    )
    tracking.LoggingGuard("http://x").check("nothing missed")  # no error


# --- a stage against an unreachable store ------------------------------------------------------


def test_a_stage_fails_within_seconds_naming_the_uri_when_mlflow_is_unreachable(
    project, monkeypatch
):
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    get_settings.cache_clear()
    started = time.monotonic()
    with pytest.raises(tracking.TrackingUnavailable) as error:
        with tracking.stage_run("prepare", SplitConfig(), project):
            pytest.fail("the stage ran without its tracking store")
    assert time.monotonic() - started < 10
    assert str(error.value).startswith(f"the MLflow server {uri} cannot be reached")
    assert mlflow.active_run() is None
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_a_stage_with_an_unknown_scheme_fails_at_once(project, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "htp://x")
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match=r"^MLFLOW_TRACKING_URI='htp://x' has a scheme"):
        with tracking.stage_run("prepare", SplitConfig(), project):
            pytest.fail("the stage ran without its tracking store")
