"""Tests of the train_lightgbm stage: TF-IDF + LightGBM tuned by a resumable Optuna study."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest

from fake_trial import FakeTrial
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.io import read_json
from sentiment_pipeline.models import lightgbm_tuning as lt
from sentiment_pipeline.models.artifacts import load_model, read_manifest
from sentiment_pipeline.paths import ProjectPaths
from synthetic import LABELS

# Small enough for 144 training rows and a fraction of a second per trial.
TINY = (
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
    return manager(paths, *TINY, *overrides).get_lightgbm_config()


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
        params = lt.search_space(study.ask(), config)
        assert 0.1 <= params["learning_rate"] <= 0.3
        assert 4 <= params["num_leaves"] <= 8
        assert 2 <= params["min_child_samples"] <= 8
        assert 0.3 <= params["colsample_bytree"] <= 1.0
        assert 0.5 <= params["reg_lambda"] <= 2.0
    assert set(params) == {
        "learning_rate", "num_leaves", "min_child_samples", "colsample_bytree", "reg_lambda"
    }  # fmt: skip


def test_study_name_ignores_the_budget_but_not_the_search_space(manager, project):
    config = tiny_config(manager, project)
    more = tiny_config(manager, project, "train.lightgbm.n_trials=9", "train.lightgbm.timeout=60")
    wider = tiny_config(manager, project, "train.lightgbm.num_leaves=[4,16]")

    assert lt.study_name(config, "data-a") == lt.study_name(more, "data-a")
    assert lt.study_name(config, "data-a") != lt.study_name(wider, "data-a")
    assert lt.study_name(config, "data-a") != lt.study_name(config, "data-b")


def test_imbalance_setting_maps_to_class_weight(manager, project):
    weighted = lt.make_classifier({}, tiny_config(manager, project), 10)
    plain = lt.make_classifier(
        {}, tiny_config(manager, project, "train.lightgbm.imbalance=none"), 10
    )

    assert weighted.class_weight == "balanced"
    assert plain.class_weight is None
    assert weighted.random_state == 42
    assert weighted.n_jobs == 1


def test_pruning_callback_reports_macro_f1_and_prunes(manager, processed, monkeypatch):
    config = tiny_config(manager, processed, "train.lightgbm.early_stopping_rounds=40")
    frames = {name: pd.read_parquet(processed.split(name)) for name in ("train", "val")}
    features = lt.prepare_features(config, frames["train"], frames["val"], LABELS)
    keep, hopeless = FakeTrial(prune=False), FakeTrial(prune=True)

    fit = lt.fit_trial({"learning_rate": 0.2}, config, features, keep)
    monkeypatch.setattr(lt, "REPORT_EVERY", 5)
    with pytest.raises(optuna.TrialPruned, match="val macro-F1 .* at round 5"):
        lt.fit_trial({"learning_rate": 0.2}, config, features, hopeless)

    assert [step for _, step in keep.reports] == [25]
    assert 0 < keep.reports[0][0] <= 1
    assert fit.best_iteration <= 40
    assert [step for _, step in hopeless.reports] == [5]


@pytest.mark.slow
def test_run_tunes_saves_and_tracks_the_study(manager, data):
    config = tiny_config(manager, data)

    result = lt.run(config, data)

    metrics = read_json(data.lightgbm_metrics)
    assert metrics == result.model_dump(mode="json")
    assert metrics["n_trials_by_state"]["complete"] + metrics["n_trials_by_state"]["pruned"] == 3
    assert metrics["trials_run_now"] == 3
    assert metrics["storage"] == f"sqlite:///{data.optuna_db}"
    assert set(metrics["best_params"]) == {
        "learning_rate", "num_leaves", "min_child_samples", "colsample_bytree", "reg_lambda"
    }  # fmt: skip
    assert 1 <= result.best_iteration <= 40
    study = load_study(data, result.study_name)
    assert study.best_trial.number == result.best_trial_number
    assert study.best_value == pytest.approx(result.best_val_macro_f1)

    model = load_model(data.lightgbm_model, expected_labels=LABELS, trusted_roots=[data.root])
    test = pd.read_parquet(data.split("test"))
    predicted = np.argmax(model.predict_proba(test["text"].tolist()), axis=1)
    assert (predicted == test["label"].to_numpy()).mean() > majority_rate(data, "test")
    manifest = read_manifest(data.lightgbm_model)
    assert "lightgbm.sklearn.LGBMClassifier" in manifest.trusted_types
    assert manifest.params["n_estimators"] == result.best_iteration
    assert manifest.mlflow_run_id == result.mlflow_run_id

    from mlflow import MlflowClient

    parent = MlflowClient(tracking_uri=f"sqlite:///{data.mlflow_db}").get_run(result.mlflow_run_id)
    assert parent.data.tags["optuna_study"] == result.study_name
    assert parent.data.metrics["best_val_macro_f1"] == pytest.approx(result.best_val_macro_f1)
    assert parent.data.params["best.num_leaves"] == str(result.best_params["num_leaves"])
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
    fit_trial = lt.fit_trial

    def interrupt_third(params, config, features, trial):
        if trial.number == 2:
            raise KeyboardInterrupt
        return fit_trial(params, config, features, trial)

    monkeypatch.setattr(lt, "fit_trial", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        lt.run(tiny_config(manager, data), data)
    assert not data.lightgbm_metrics.exists()
    monkeypatch.setattr(lt, "fit_trial", fit_trial)

    result = lt.run(tiny_config(manager, data), data)

    study = load_study(data, result.study_name)
    assert states(study).count("FAIL") == 1 and len(study.trials) == 4
    assert result.trials_run_now == 1
    assert result.n_trials_by_state["complete"] + result.n_trials_by_state["pruned"] == 3


@pytest.mark.slow
def test_trial_left_running_by_a_crash_is_failed_on_resume(manager, data):
    config = tiny_config(manager, data, "train.lightgbm.n_trials=2")
    first = lt.run(config, data)
    load_study(data, first.study_name).ask()  # a worker killed mid-trial leaves it RUNNING

    result = lt.run(tiny_config(manager, data, "train.lightgbm.n_trials=3"), data)

    assert states(load_study(data, first.study_name)).count("RUNNING") == 0
    assert result.n_trials_by_state["failed"] == 1
    assert result.trials_run_now == 1


@pytest.mark.slow
def test_failing_trial_is_recorded_and_the_study_goes_on(manager, data, monkeypatch):
    fit_trial = lt.fit_trial

    def fail_second(params, config, features, trial):
        if trial.number == 1:
            raise ValueError("boom: bad split")
        return fit_trial(params, config, features, trial)

    monkeypatch.setattr(lt, "fit_trial", fail_second)

    result = lt.run(tiny_config(manager, data), data)

    assert states(load_study(data, result.study_name)) == ["COMPLETE", "FAIL", "COMPLETE"]
    children = child_runs(data, result.mlflow_run_id)
    assert {c.info.run_name: c.data.tags["state"] for c in children} == {
        "trial-0": "complete",
        "trial-1": "failed",
        "trial-2": "complete",
    }
    assert [c.info.status for c in children if c.info.run_name == "trial-1"] == ["FAILED"]
    assert result.best_trial_number in (0, 2)


@pytest.mark.slow
def test_study_where_every_trial_fails_stops_with_a_clear_error(manager, data, monkeypatch):
    def always_fail(params, config, features, trial):
        raise ValueError("boom")

    monkeypatch.setattr(lt, "fit_trial", always_fail)

    with pytest.raises(PipelineError, match=r"has no completed trial .*'failed': 2"):
        lt.run(tiny_config(manager, data, "train.lightgbm.n_trials=2"), data)
    assert not data.lightgbm_model.exists()


@pytest.mark.slow
def test_pruned_trial_is_recorded_as_pruned(manager, data, monkeypatch):
    class PruneTrialOne(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return trial.number == 1

    monkeypatch.setattr(lt, "make_pruner", lambda config: PruneTrialOne())
    monkeypatch.setattr(lt, "REPORT_EVERY", 5)

    result = lt.run(tiny_config(manager, data, "train.lightgbm.early_stopping_rounds=40"), data)

    study = load_study(data, result.study_name)
    assert states(study) == ["COMPLETE", "PRUNED", "COMPLETE"]
    assert result.n_trials_by_state["pruned"] == 1
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

    result = lt.run(tiny_config(manager, data, "train.lightgbm.n_trials=2"), data)

    assert result.storage == url
    assert not data.optuna_db.exists()
    assert sorted(states(study)) == ["COMPLETE", "COMPLETE", "RUNNING"]
    assert result.trials_run_now == 1
