"""Tests of the train_lightgbm stage: TF-IDF + LightGBM tuned by a resumable Optuna study."""

from __future__ import annotations

import threading

import numpy as np
import optuna
import pandas as pd
import pytest

from fake_trial import FakeReporter
from sentiment_pipeline import machine
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.io import read_json
from sentiment_pipeline.models import train_lightgbm as lt
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import read_manifest
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.tuning.trial import TrialFailure
from synthetic import LABELS

# Small enough for 144 training rows and a fraction of a second per trial; one trial at a time
# on one thread whatever the machine, so trial order is deterministic.
TINY = (
    "train.lightgbm.threads=1",
    "train.lightgbm.parallel_trials=1",
    "train.lightgbm.n_trials=3",
    "train.lightgbm.max_estimators=40",
    "train.lightgbm.early_stopping_rounds=10",
    "train.lightgbm.tfidf.max_features=300",
    "train.lightgbm.num_leaves=[4,8]",
    "train.lightgbm.min_child_samples=[2,8]",
    "train.lightgbm.learning_rate=[0.1,0.3]",
)


@pytest.fixture
def data(processed: ProjectPaths) -> ProjectPaths:
    return processed


def tiny_config(manager, paths: ProjectPaths, *overrides: str):
    return manager(paths, *TINY, *overrides).config.train.lightgbm


def load_study(paths: ProjectPaths, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{paths.optuna_db}")


def states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def majority_rate(paths: ProjectPaths, split: str) -> float:
    return float(pd.read_parquet(paths.split(split))["label"].value_counts(normalize=True).max())


def child_runs(paths: ProjectPaths, parent_id: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{paths.mlflow_db}")
    parent = client.get_run(parent_id)
    return client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )


def test_search_space_stays_within_the_configured_bounds(manager, project):
    config = tiny_config(manager, project, "train.lightgbm.reg_lambda=[0.5,2.0]")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    for _ in range(20):
        trial = study.ask()
        params = lt.search_space(trial, config)
        assert 0.1 <= params.learning_rate <= 0.3
        assert 4 <= params.num_leaves <= 8
        assert 2 <= params.min_child_samples <= 8
        assert 0.3 <= params.colsample_bytree <= 1.0
        assert 0.5 <= params.reg_lambda <= 2.0
    # one name from the search space to the classifier: Optuna's, the model's, LightGBM's
    assert trial.params == params.model_dump()
    assert set(lt.make_classifier(params, config, 10).get_params()) >= set(trial.params)


PARAMS = lt.LightGBMTrialParams(
    learning_rate=0.2, num_leaves=8, min_child_samples=4, colsample_bytree=1.0, reg_lambda=1.0
)


def test_imbalance_setting_maps_to_class_weight(manager, project):
    weighted = lt.make_classifier(PARAMS, tiny_config(manager, project), 10)
    plain = lt.make_classifier(
        PARAMS, tiny_config(manager, project, "train.lightgbm.imbalance=none"), 10
    )

    assert weighted.class_weight == "balanced"
    assert plain.class_weight is None
    assert weighted.random_state == 42
    assert weighted.n_jobs == 1


def test_fit_one_reports_macro_f1_and_stops_when_pruned(manager, processed):
    config = tiny_config(manager, processed, "train.lightgbm.early_stopping_rounds=40")
    frames = {name: pd.read_parquet(processed.split(name)) for name in ("train", "val")}
    features = lt.prepare_features(config, frames["train"], frames["val"], LABELS)
    keep, hopeless = FakeReporter(prune=False), FakeReporter(prune=True)

    fit = lt.fit_one(PARAMS, keep, config=config, features=features)
    pruned = lt.fit_one(PARAMS, hopeless, config=config, features=features, every=5)

    assert [step for step, _ in keep.reports] == [25]
    assert 0 < keep.reports[0][1] <= 1
    assert not fit.pruned and fit.metrics["best_iteration"] <= 40
    assert fit.model.predict(["great friendly crew"]).shape == (1,)
    assert [step for step, _ in hopeless.reports] == [5]
    assert pruned.pruned and pruned.metrics == {"rounds": 5} and pruned.model is None
    assert keep.progress[-1][1] == 40 and len(keep.progress) == len(set(keep.progress))


@pytest.mark.slow
def test_run_tunes_saves_and_tracks_the_study(manager, data):
    config = tiny_config(manager, data)

    result = lt.run(config, data)

    metrics = read_json(data.lightgbm_metrics)
    assert metrics == result.model_dump(mode="json")
    assert metrics["trials"]["complete"] + metrics["trials"]["pruned"] == 3
    assert metrics["trials_run_now"] == 3
    assert metrics["storage"] == f"sqlite:///{data.optuna_db}"
    assert set(metrics["best_params"]) == set(lt.LightGBMTrialParams.model_fields)
    study = load_study(data, result.study_name)
    best_iteration = study.best_trial.user_attrs["best_iteration"]
    assert 1 <= best_iteration <= 40
    assert study.best_trial.number == result.best_trial
    assert study.best_value == pytest.approx(result.best_val_macro_f1)
    assert (data.lightgbm_results / "trials.csv").is_file()
    assert (data.lightgbm_results / "optimization_history.png").is_file()

    model = load_model(data.lightgbm_model, expected_labels=LABELS, project=data)
    test = pd.read_parquet(data.split("test"))
    predicted = np.argmax(model.predict_proba(test["text"].tolist()), axis=1)
    assert (predicted == test["label"].to_numpy()).mean() > majority_rate(data, "test")
    manifest = read_manifest(data.lightgbm_model)
    assert manifest.files == {"estimator": "pipeline.skops"}
    assert manifest.params["trial_number"] == result.best_trial
    assert manifest.metrics["best_iteration"] == best_iteration
    assert manifest.mlflow_run_id == study.best_trial.user_attrs["mlflow_run_id"]

    from mlflow import MlflowClient

    parent = MlflowClient(tracking_uri=f"sqlite:///{data.mlflow_db}").get_run(result.mlflow_run_id)
    assert parent.data.tags["optuna_study"] == result.study_name
    assert parent.data.metrics["best_val_macro_f1"] == pytest.approx(result.best_val_macro_f1)
    assert parent.data.params["best.num_leaves"] == str(result.best_params["num_leaves"])
    assert manifest.mlflow_run_id in {c.info.run_id for c in child_runs(data, parent.info.run_id)}
    children = child_runs(data, result.mlflow_run_id)
    assert sorted(c.info.run_name for c in children) == ["trial-0", "trial-1", "trial-2"]
    assert {c.data.tags["state"] for c in children} <= {"complete", "pruned"}
    assert all("learning_rate" in c.data.params for c in children)
    trial_runs = {t.user_attrs["mlflow_run_id"] for t in study.trials}
    assert trial_runs == {c.info.run_id for c in children}


@pytest.mark.slow
def test_rerun_with_more_trials_resumes_the_same_study(manager, data):
    first = lt.run(tiny_config(manager, data), data)

    second = lt.run(tiny_config(manager, data, "train.lightgbm.n_trials=5"), data)
    third = lt.run(tiny_config(manager, data, "train.lightgbm.n_trials=5"), data)

    assert second.study_name == first.study_name == third.study_name
    assert second.trials_run_now == 2 and third.trials_run_now == 0
    assert len(load_study(data, first.study_name).trials) == 5
    params = [tuple(t.params.values()) for t in load_study(data, first.study_name).trials]
    assert len(set(params)) == 5, "a resumed study must not replay the first run's trials"


@pytest.mark.slow
def test_interrupted_study_completes_only_the_owed_trials(manager, data, monkeypatch):
    fit_one, calls = lt.fit_one, []

    def interrupt_third(params, reporter, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fit_one(params, reporter, **kwargs)

    monkeypatch.setattr(lt, "fit_one", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        lt.run(tiny_config(manager, data), data)
    assert not data.lightgbm_metrics.exists()
    monkeypatch.setattr(lt, "fit_one", fit_one)

    result = lt.run(tiny_config(manager, data), data)

    study = load_study(data, result.study_name)
    assert states(study).count("FAIL") == 1 and len(study.trials) == 4
    assert result.trials_run_now == 1
    assert result.trials["complete"] + result.trials["pruned"] == 3


@pytest.mark.slow
def test_trial_left_running_by_a_crash_is_failed_on_resume(manager, data):
    config = tiny_config(manager, data, "train.lightgbm.n_trials=2")
    first = lt.run(config, data)
    load_study(data, first.study_name).ask()  # a worker killed mid-trial leaves it RUNNING

    result = lt.run(tiny_config(manager, data, "train.lightgbm.n_trials=3"), data)

    assert states(load_study(data, first.study_name)).count("RUNNING") == 0
    assert result.trials["failed"] == 1
    assert result.trials_run_now == 1


@pytest.mark.slow
def test_failing_trial_is_recorded_and_the_study_goes_on(manager, data, monkeypatch):
    fit_one, calls = lt.fit_one, []

    def fail_second(params, reporter, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("cannot allocate the histogram (simulated)")
        return fit_one(params, reporter, **kwargs)

    monkeypatch.setattr(lt, "fit_one", fail_second)

    result = lt.run(tiny_config(manager, data), data)

    # the failed trial is owed again: 3 finished trials, 4 in all
    assert states(load_study(data, result.study_name)) == [
        "COMPLETE", "FAIL", "COMPLETE", "COMPLETE"
    ]
    children = child_runs(data, result.mlflow_run_id)
    assert {c.info.run_name: c.data.tags["state"] for c in children} == {
        "trial-0": "complete",
        "trial-1": "failed",
        "trial-2": "complete",
        "trial-3": "complete",
    }
    assert [c.info.status for c in children if c.info.run_name == "trial-1"] == ["FAILED"]
    assert result.best_trial in (0, 2, 3)


@pytest.mark.slow
def test_study_where_every_trial_fails_stops_with_a_clear_error(manager, data, monkeypatch):
    def always_fail(params, reporter, **kwargs):
        raise TrialFailure("boom")

    monkeypatch.setattr(lt, "fit_one", always_fail)

    expected = r"no trial of study lightgbm-\w+ .* completed .*'failed': 2"
    with pytest.raises(PipelineError, match=expected):
        lt.run(tiny_config(manager, data, "train.lightgbm.n_trials=2"), data)
    assert not data.lightgbm_model.exists()


@pytest.mark.slow
def test_pruned_trial_is_recorded_as_pruned(manager, data, monkeypatch):
    class PruneTrialOne(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return trial.number == 1

    monkeypatch.setattr(lt, "make_pruner", lambda kind, schedule, floor: PruneTrialOne())

    result = lt.run(tiny_config(manager, data, "train.lightgbm.early_stopping_rounds=40"), data)

    study = load_study(data, result.study_name)
    assert states(study) == ["COMPLETE", "PRUNED", "COMPLETE"]
    assert result.trials["pruned"] == 1
    pruned = next(c for c in child_runs(data, result.mlflow_run_id) if c.info.run_name == "trial-1")
    assert pruned.data.tags["state"] == "pruned"
    assert pruned.info.status == "FINISHED"
    assert "duration_s" in pruned.data.metrics


def test_unusable_storage_url_is_a_config_error(manager, processed, monkeypatch):
    from sentiment_pipeline.errors import ConfigError
    from sentiment_pipeline.settings import get_settings

    monkeypatch.setenv("SENTIMENT_PIPELINE_OPTUNA_STORAGE", "not a url")
    get_settings.cache_clear()

    with pytest.raises(ConfigError, match="cannot use the Optuna storage 'not a url'"):
        lt.run(tiny_config(manager, processed), processed)


@pytest.mark.slow
def test_shared_storage_from_the_environment_leaves_running_trials_alone(
    manager, data, monkeypatch, tmp_path
):
    from sentiment_pipeline.settings import get_settings

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setenv("SENTIMENT_PIPELINE_OPTUNA_STORAGE", url)
    get_settings.cache_clear()
    first = lt.run(tiny_config(manager, data, "train.lightgbm.n_trials=1"), data)
    study = optuna.load_study(study_name=first.study_name, storage=url)
    study.ask()  # another worker's trial in progress

    result = lt.run(tiny_config(manager, data, "train.lightgbm.n_trials=3"), data)

    assert result.storage == url
    assert not data.optuna_db.exists()
    # The running trial is left alone and counts as taken: the study owes one more, not two.
    assert sorted(states(study)) == ["COMPLETE", "COMPLETE", "RUNNING"]
    assert result.trials_run_now == 1


# --- threads and parallel trials ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cores", "expected"),
    [(1, (1, 1)), (2, (1, 1)), (3, (3, 1)), (4, (2, 2)), (8, (2, 4)), (16, (4, 4)), (64, (4, 4))],
)
def test_auto_uses_one_thread_and_one_trial_on_two_cores_and_fills_bigger_machines(
    cores, expected
):
    assert lt.auto_parallelism(cores) == expected


def test_auto_never_uses_more_threads_than_cores():
    for cores in range(1, 129):
        threads, trials = lt.auto_parallelism(cores)
        assert threads * trials <= cores and threads >= 1 and trials >= 1


def test_a_fixed_setting_is_used_as_given_and_auto_fills_the_rest(manager, project):
    def use(cores, *overrides):
        config = manager(project, *overrides).config.train.lightgbm
        found = lt.parallelism(config, cores=cores)
        return found.threads, found.trials

    assert use(2) == (1, 1)
    assert use(16) == (4, 4)
    assert use(2, "train.lightgbm.threads=2") == (2, 1)
    assert use(2, "train.lightgbm.parallel_trials=2") == (1, 2)
    assert use(16, "train.lightgbm.threads=1") == (1, 4)
    assert use(16, "train.lightgbm.parallel_trials=2") == (4, 2)
    assert use(16, "train.lightgbm.threads=8", "train.lightgbm.parallel_trials=3") == (8, 3)
    assert lt.parallelism(manager(project).config.train.lightgbm).cores == machine.usable_cores()


@pytest.mark.parametrize("value", ["0", "-1", "many", "1.5", "true"])
def test_threads_and_parallel_trials_accept_auto_or_a_positive_integer(manager, project, value):
    from sentiment_pipeline.errors import ConfigError

    for key in ("threads", "parallel_trials"):
        with pytest.raises(ConfigError, match=key):
            manager(project, f"train.lightgbm.{key}={value}")


def test_threads_reach_lightgbm_and_leave_the_study_key_alone(manager, project):
    base = tiny_config(manager, project)
    other = tiny_config(
        manager, project, "train.lightgbm.threads=3", "train.lightgbm.parallel_trials=5"
    )

    assert lt.make_classifier(PARAMS, other, 10, threads=3).n_jobs == 3
    assert lt.study_key(other, "data") == lt.study_key(base, "data")


@pytest.mark.slow
def test_parallel_trials_run_at_once_finish_exactly_the_owed_trials_and_log_each_run(
    manager, data, monkeypatch
):
    fit_one, lock = lt.fit_one, threading.Lock()
    running, overlap, failed = [0], [0], []
    # The first two trials (one per thread) wait for each other: they run at once however
    # slowly the threads are scheduled; the timeout only turns a hang into a failure.
    first_two = threading.Barrier(2, timeout=60)

    def overlapping(params, reporter, **kwargs):
        with lock:
            running[0] += 1
            overlap[0] = max(overlap[0], running[0])
            fail = not failed
            meet = len(failed) < 2
            failed.append(fail)
        try:
            if meet:
                first_two.wait()
            if fail:
                raise MemoryError("simulated: the failed trial is owed again")
            return fit_one(params, reporter, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(lt, "fit_one", overlapping)
    config = tiny_config(
        manager, data, "train.lightgbm.parallel_trials=2", "train.lightgbm.n_trials=4"
    )

    result = lt.run(config, data)

    assert overlap[0] == 2, "two trials must have run at the same time"
    study = load_study(data, result.study_name)
    assert sorted(states(study)).count("FAIL") == 1
    # exactly the owed trials finish: no overshoot by the trial still running at the end
    assert result.trials["complete"] + result.trials["pruned"] == 4
    assert result.trials_run_now == len(study.trials) == 5
    assert study.best_trial.number == result.best_trial
    children = child_runs(data, result.mlflow_run_id)
    assert sorted(c.info.run_name for c in children) == [f"trial-{n}" for n in range(5)]
    by_run = {c.info.run_id: c for c in children}
    for trial in study.trials:
        run = by_run[trial.user_attrs["mlflow_run_id"]]
        assert run.data.tags["optuna_trial"] == str(trial.number)
        assert run.data.tags["state"] == studies_state(trial)
        assert run.data.params["num_leaves"] == str(trial.params["num_leaves"])
    manifest = read_manifest(data.lightgbm_model)
    assert manifest.mlflow_run_id == study.best_trial.user_attrs["mlflow_run_id"]
    assert manifest.params["trial_number"] == result.best_trial


def studies_state(trial) -> str:
    return {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}[trial.state.name]
