"""The tuning core with a tiny stand-in stage: trial loop, states, MLflow runs, result files."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from pathlib import Path

import mlflow
import optuna
import pandas as pd
import pytest
from pydantic import BaseModel, ConfigDict

from mlflow_server import free_port, mlflow_server
from sentiment_pipeline import tracking
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.io import read_json
from sentiment_pipeline.settings import get_settings
from sentiment_pipeline.tuning import best as bests
from sentiment_pipeline.tuning import core
from sentiment_pipeline.tuning import storage as storages
from sentiment_pipeline.tuning.objective import OptunaReporter
from sentiment_pipeline.tuning.results import TuningSummary
from sentiment_pipeline.tuning.trial import TrialFailure, TrialResult

STAGE = "train_toy"


class ToyParams(BaseModel):
    model_config = ConfigDict(frozen=True)
    x: float


class ToyConfig(BaseModel):
    n_trials: int = 3


def suggest(trial: optuna.Trial) -> ToyParams:
    return ToyParams(x=trial.suggest_float("x", 0.0, 1.0))


def save_model(model, target: Path, info) -> None:  # noqa: ANN001
    target.mkdir(parents=True)
    (target / "model.json").write_text(json.dumps({"x": model, **info}))


def toy_stage(behaviour=None, **changes) -> core.TunedStage:  # noqa: ANN001
    """A stage whose trial n reports x/2 then x; behaviour(n) may raise or return a result."""
    calls = []

    def fit_one(params: ToyParams, reporter) -> TrialResult:  # noqa: ANN001
        number = len(calls)
        calls.append(number)
        if behaviour is not None:
            outcome = behaviour(number, params)
            if outcome is not None:
                return outcome
        for step, value in enumerate((params.x / 2, params.x), start=1):
            reporter.advance(step, 2)
            if reporter.report(step, value, {"val_accuracy": value}):
                return TrialResult(value, pruned=True)
        return TrialResult(params.x, metrics={"val_accuracy": params.x}, model=params.x)

    return core.TunedStage(
        prefix="toy", stage=STAGE, suggest=suggest, fit_one=fit_one, save_model=save_model,
        **changes,
    )


def spec(n_trials: int = 3, pruner=None, key=None) -> core.StudySpec:  # noqa: ANN001
    return core.StudySpec(
        key=key or {"space": "x in [0, 1]"},
        n_trials=n_trials,
        timeout=None,
        seed=7,
        pruner=pruner or optuna.pruners.NopPruner(),
        n_startup_trials=2,
    )


def outputs(project) -> core.Outputs:  # noqa: ANN001
    base = project.models_dir / "toy"
    return core.Outputs(base / "model", base / "results", base / "metrics.json", {"rows": 3})


def optimize(project, stage=None, study=None, n_trials: int = 3) -> TuningSummary:  # noqa: ANN001
    return core.optimize(
        stage or toy_stage(), study or spec(n_trials), ToyConfig(n_trials=n_trials), project,
        outputs(project),
    )


def child_runs(project, parent_id: str) -> list:  # noqa: ANN001
    tracking.configure(project)
    runs = mlflow.search_runs(experiment_names=[tracking.experiment_name(STAGE)],
                              output_format="list")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]
    return sorted(children, key=lambda r: int(r.data.tags["optuna_trial"]))


def load(project, name: str) -> optuna.Study:  # noqa: ANN001
    return optuna.load_study(study_name=name, storage=f"sqlite:///{project.optuna_db}")


@pytest.mark.slow
def test_a_study_runs_its_trials_keeps_the_best_and_writes_one_schema(project) -> None:
    summary = optimize(project)

    study = load(project, summary.study_name)
    assert summary.status == "trained" and summary.trials["complete"] == 3
    assert summary.best_trial == study.best_trial.number
    assert summary.best_val_macro_f1 == pytest.approx(study.best_value)
    assert summary.best_params == study.best_params and summary.details == {"rows": 3}
    assert summary.trials_run_now == 3 and summary.n_trials == 3 and summary.wall_seconds > 0
    out = outputs(project)
    metrics = read_json(out.metrics_path)
    assert set(metrics) == set(TuningSummary.model_fields)
    kept = read_json(out.model_dir / "model.json")
    assert kept["x"] == pytest.approx(study.best_value) and kept["trial_number"] == (
        summary.best_trial
    )
    trials = pd.read_csv(out.results_dir / "trials.csv")
    assert trials["state"].tolist() == ["complete"] * 3
    assert {"params_x", "val_accuracy", "mlflow_run_id"} <= set(trials.columns)
    assert (out.results_dir / "optimization_history.png").stat().st_size > 1000
    assert read_json(out.results_dir / "study.json")["best_trial"] == summary.best_trial

    children = child_runs(project, summary.mlflow_run_id)
    assert [c.data.tags["state"] for c in children] == ["complete"] * 3
    assert kept["mlflow_run_id"] == children[summary.best_trial].info.run_id
    history = mlflow.MlflowClient().get_metric_history(children[0].info.run_id, "val_macro_f1")
    assert [m.step for m in history] == [1, 2]


class PruneSecond(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:  # noqa: ANN001
        return trial.number == 1


@pytest.mark.slow
def test_pruned_and_legitimately_failed_trials_are_recorded_and_the_study_goes_on(
    project,
) -> None:
    def behaviour(number: int, params: ToyParams):  # noqa: ANN202
        if number == 2:
            raise TrialFailure("out of memory (simulated)")
        if number == 3:
            return TrialResult(float("nan"))  # a numerical failure

    summary = optimize(project, toy_stage(behaviour), spec(3, pruner=PruneSecond()))

    states = [t.state.name for t in load(project, summary.study_name).trials]
    assert states == ["COMPLETE", "PRUNED", "FAIL", "FAIL", "COMPLETE"]
    assert summary.trials == {"complete": 2, "pruned": 1, "failed": 2, "running": 0, "waiting": 0}
    children = child_runs(project, summary.mlflow_run_id)
    assert [c.data.tags["state"] for c in children] == [
        "complete", "pruned", "failed", "failed", "complete"
    ]
    assert [c.info.status for c in children] == [
        "FINISHED", "FINISHED", "FAILED", "FAILED", "FINISHED"
    ]


def test_a_programming_error_stops_the_stage_with_its_traceback(project) -> None:
    def behaviour(number: int, params: ToyParams):  # noqa: ANN202
        if number == 1:
            raise TypeError("a bug in our own code")

    with pytest.raises(TypeError, match="a bug in our own code"):
        optimize(project, toy_stage(behaviour))
    assert not outputs(project).metrics_path.exists()
    (study,) = optuna.get_all_study_names(f"sqlite:///{project.optuna_db}")
    assert [t.state.name for t in load(project, study).trials] == ["COMPLETE", "FAIL"]


def test_a_stage_may_declare_its_own_legitimate_errors(project) -> None:
    def behaviour(number: int, params: ToyParams):  # noqa: ANN202
        if number == 0:
            raise ZeroDivisionError("stands in for torch.cuda.OutOfMemoryError")

    summary = optimize(project, toy_stage(behaviour, trial_errors=(ZeroDivisionError,)), n_trials=2)
    assert summary.trials["failed"] == 1 and summary.trials["complete"] == 2


def test_failures_have_a_budget_and_a_study_without_a_complete_trial_is_an_error(project) -> None:
    def always(number: int, params: ToyParams):  # noqa: ANN202
        raise TrialFailure("always")

    expected = r"no trial of study toy-\w+ .* completed .*'failed': 2"
    with pytest.raises(PipelineError, match=expected):
        optimize(project, toy_stage(always), n_trials=2)


@pytest.mark.slow
def test_an_interrupted_study_resumes_and_a_deleted_out_is_republished(project) -> None:
    def interrupt(number: int, params: ToyParams):  # noqa: ANN202
        if number == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optimize(project, toy_stage(interrupt))
    load(project, optuna.get_all_study_names(f"sqlite:///{project.optuna_db}")[0]).ask()

    summary = optimize(project)
    assert summary.trials == {"complete": 3, "pruned": 0, "failed": 2, "running": 0, "waiting": 0}
    assert summary.trials_run_now == 2

    import shutil

    out = outputs(project)
    shutil.rmtree(out.model_dir.parent)  # DVC deletes the outs before a rerun
    again = optimize(project)
    assert again.trials_run_now == 0 and again.best_trial == summary.best_trial
    assert read_json(out.model_dir / "model.json")["trial_number"] == summary.best_trial


def test_a_best_model_no_trial_accounts_for_is_discarded(project, caplog) -> None:
    summary = optimize(project, n_trials=1)
    path = bests.best_dir(project, "toy", summary.study_name)
    (path / bests.BEST_RECORD).write_text(json.dumps({"number": 0, "value": 0.123}))
    optimize(project, n_trials=2)
    assert "belongs to no complete trial" in caplog.text
    assert bests.best_record(path)["number"] == load(project, summary.study_name).best_trial.number


def test_a_changed_key_starts_a_new_study_and_says_why(project, caplog) -> None:
    first = optimize(project, n_trials=1)
    caplog.set_level("INFO")
    second = core.optimize(
        toy_stage(), spec(1, key={"space": "x in [0, 2]"}), ToyConfig(n_trials=1), project,
        outputs(project),
    )
    assert second.study_name != first.study_name
    expected = f"starting study {second.study_name} afresh instead of resuming {first.study_name}"
    assert expected in caplog.text
    assert "these keys differ: space" in caplog.text


def test_a_study_from_before_study_keys_is_not_resumed_and_the_log_says_so(project, caplog):
    optuna.create_study(study_name="toy-0123456789ab", storage=f"sqlite:///{project.optuna_db}")
    caplog.set_level("INFO")
    optimize(project, n_trials=1)
    assert "instead of resuming toy-0123456789ab (0 trials)" in caplog.text
    assert "made before study keys were recorded, by an earlier version" in caplog.text


@pytest.mark.parametrize("prune", [True, False])
def test_the_reporter_reports_to_optuna_and_the_trial_run_and_relays_pruning(project, prune):
    from fake_trial import FakeTrial

    trial = FakeTrial(prune)
    guard = tracking.LoggingGuard(tracking.tracking_uri(project))
    with tracking.stage_run(STAGE, ToyConfig(), project), guard.child_run(
        "trial 0", "trial-0"
    ) as run_id:
        log = functools.partial(guard.log_metrics, "trial 0", run_id)
        stop = OptunaReporter(trial, log=log).report(
            2, 0.4, {"val_loss": 0.9, "val_accuracy": None}
        )
    assert stop is prune
    assert trial.reports == [(0.4, 2)]
    logged = mlflow.MlflowClient().get_run(run_id).data.metrics
    assert logged == {"val_macro_f1": 0.4, "val_loss": 0.9}
    assert not guard.missed


# --- the things around a study failing ------------------------------------------------------


def point_mlflow_at(monkeypatch, uri: str) -> None:  # noqa: ANN001
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    get_settings.cache_clear()


def test_mlflow_unreachable_fails_a_tuned_stage_within_seconds_before_any_trial(
    project, monkeypatch
) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    point_mlflow_at(monkeypatch, uri)

    started = time.monotonic()
    with pytest.raises(tracking.TrackingUnavailable,
                       match=rf"^the MLflow server {uri} cannot be reached \(ConnectionRefused"):
        optimize(project)
    assert time.monotonic() - started < 10
    (name,) = optuna.get_all_study_names(f"sqlite:///{project.optuna_db}")
    assert load(project, name).trials == []


@pytest.mark.slow
def test_a_storage_that_goes_away_mid_study_keeps_its_trials_and_the_best_model(
    project, monkeypatch
) -> None:
    opened = []
    real_open = storages.open_storage

    def open_storage(url: str, beats=None) -> optuna.storages.RDBStorage:  # noqa: ANN001
        opened.append(real_open(url, beats))
        return opened[-1]

    monkeypatch.setattr(storages, "open_storage", open_storage)
    db, gone = project.optuna_db, project.optuna_db.with_name("gone.db")

    def database_goes_away(number: int, params: ToyParams):  # noqa: ANN202
        if number == 2:  # the connection breaks as it would when the server is gone
            os.replace(db, gone)
            db.write_bytes(b"not a database" * 512)
            opened[-1].engine.dispose()

    started = time.monotonic()
    with pytest.raises(storages.StorageUnavailable) as error:
        optimize(project, toy_stage(database_goes_away), n_trials=4)
    assert time.monotonic() - started < 10

    message = str(error.value)
    name = message.split("during study ")[1].split()[0]
    best = bests.best_dir(project, "toy", name)
    assert message.startswith(f"the Optuna storage sqlite:///{db} stopped answering during "
                              f"study {name} (DatabaseError: file is not a database)")
    assert f"the best model so far in {best}; rerun once the database answers" in message
    assert "\n" not in message
    os.replace(gone, db)  # the database is back
    study = load(project, name)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "RUNNING"]
    assert bests.best_record(best)["number"] == study.best_trial.number
    assert not outputs(project).metrics_path.exists()
    runs = mlflow.search_runs(experiment_names=[tracking.experiment_name(STAGE)],
                              output_format="list")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FAILED"

    summary = optimize(project, n_trials=4)  # the rerun resumes with the trials still owed
    assert summary.trials == {"complete": 4, "pruned": 0, "failed": 1, "running": 0, "waiting": 0}


def test_a_storage_failure_names_the_storage_without_its_password(tmp_path) -> None:
    from sqlalchemy.exc import OperationalError

    url = "postgresql://bob:s3cret@db.example.com:5432/optuna"
    with pytest.raises(storages.StorageUnavailable) as error:
        with storages.storage_failures(url, "toy-0123", tmp_path / "best"):
            try:
                raise OperationalError("SELECT 1", {}, OSError("server closed the connection"))
            except OperationalError as exc:
                raise optuna.exceptions.StorageInternalError("during the commit") from exc
    message = str(error.value)
    assert message.startswith(
        "the Optuna storage postgresql://bob:***@db.example.com:5432/optuna stopped answering "
        "during study toy-0123 (OSError: server closed the connection)"
    )
    assert "s3cret" not in message

    with pytest.raises(KeyError):  # anything else is not the storage's
        with storages.storage_failures(url, "toy-0123", tmp_path / "best"):
            raise KeyError("x")


@pytest.mark.slow
def test_a_tracking_server_that_goes_away_mid_study_costs_its_logging_not_the_model(
    project, monkeypatch, tmp_path
) -> None:
    with contextlib.ExitStack() as server:
        url = server.enter_context(mlflow_server(tmp_path / "server"))
        point_mlflow_at(monkeypatch, url)

        def server_goes_away(number: int, params: ToyParams):  # noqa: ANN202
            if number == 1:
                server.close()

        started = time.monotonic()
        with pytest.raises(tracking.TrackingUnavailable) as error:
            optimize(project, toy_stage(server_goes_away), n_trials=3)
        elapsed = time.monotonic() - started

    message = str(error.value)
    out = outputs(project)
    assert message.startswith(f"MLflow at {url} stopped answering (ConnectionRefusedError: ")
    assert f"the best model and the results were saved ({out.model_dir}, " in message
    assert message.endswith(
        # trial 1 was the best so far: its model is not in its run either
        "not logged to MLflow: trial 1 (metrics, model, tag state, end of run); "
        "trial 2 (whole run); "
        "the stage run (best params, summary metrics, artifacts results/, end of run)"
    )
    assert elapsed < 30  # the server's shutdown (up to 5 s), then seconds, not minutes
    summary = TuningSummary.model_validate(read_json(out.metrics_path))
    assert summary.trials["complete"] == 3
    assert read_json(out.model_dir / "model.json")["trial_number"] == summary.best_trial
    study = load(project, summary.study_name)
    assert "mlflow_run_id" in study.trials[1].user_attrs
    assert "mlflow_run_id" not in study.trials[2].user_attrs
