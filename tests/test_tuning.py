"""Study plumbing of the tuning core: storage choice, names, resume, trial accounting."""

from __future__ import annotations

import optuna
import pytest

from sentiment_pipeline.errors import ConfigError
from sentiment_pipeline.settings import Settings
from sentiment_pipeline.tuning import storage
from sentiment_pipeline.tuning import study as tuning
from sentiment_pipeline.urls import redact


def test_default_storage_is_private_sqlite_in_the_project(project):
    assert storage.storage_url(project, Settings()) == (f"sqlite:///{project.optuna_db}", False)


def test_storage_from_the_environment_is_shared(project, monkeypatch):
    monkeypatch.setenv("SENTIMENT_PIPELINE_OPTUNA_STORAGE", "sqlite:////tmp/shared.db")
    assert storage.storage_url(project, Settings()) == ("sqlite:////tmp/shared.db", True)


def test_redact_hides_the_password():
    assert redact("postgresql://bob:s3cret@db:5432/optuna") == (
        "postgresql://bob:***@db:5432/optuna"
    )
    assert redact("sqlite:///x/optuna.db") == "sqlite:///x/optuna.db"


def test_unusable_storage_url_is_a_config_error():
    with pytest.raises(ConfigError, match=r"cannot use the Optuna storage 'nosuch://u:\*\*\*@h/db'"):
        storage.open_storage("nosuch://u:pw@h/db")


def _interrupted_study(url: str) -> float:
    study = optuna.create_study(
        study_name="s", storage=url, direction="maximize", sampler=optuna.samplers.TPESampler(1)
    )
    first = study.ask()
    x = first.suggest_float("x", 0, 1)
    study.tell(first, 0.5)
    study.tell(study.ask(), state=optuna.trial.TrialState.PRUNED)
    study.ask()  # left RUNNING, as by a killed process
    return x


def test_private_study_fails_stale_trials_and_counts_what_is_owed(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    first_x = _interrupted_study(url)
    study = tuning.open_study(
        "s", url, shared=False, pruner=optuna.pruners.NopPruner(), seed=1
    )
    assert tuning.count_states(study) == {
        "complete": 1, "pruned": 1, "failed": 1, "running": 0, "waiting": 0
    }
    assert tuning.owed_trials(study, 5) == 3
    assert tuning.owed_trials(study, 1) == 0
    # reseeded by the trials already there, so the first start-up point is not replayed
    assert study.ask().suggest_float("x", 0, 1) != first_x


def test_shared_study_leaves_running_trials_alone(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    _interrupted_study(url)
    study = tuning.open_study("s", url, shared=True, pruner=optuna.pruners.NopPruner(), seed=1)
    assert tuning.count_states(study)["running"] == 1
    assert tuning.owed_trials(study, 5) == 3


def test_study_names_hash_the_key_and_fingerprints_follow_the_data():
    from synthetic import make_processed_splits

    assert tuning.study_name("toy", {"a": 1, "b": [1, 2]}) == tuning.study_name(
        "toy", {"b": [1, 2], "a": 1}
    )
    assert tuning.study_name("toy", {"a": 1}) != tuning.study_name("toy", {"a": 2})
    assert tuning.study_name("toy", {"a": 1}).startswith("toy-")
    splits = make_processed_splits()
    train, val = splits["train"], splits["val"]
    assert tuning.data_fingerprint(train, val) == tuning.data_fingerprint(train.copy(), val)
    assert tuning.data_fingerprint(train, val) != tuning.data_fingerprint(train.iloc[:-1], val)
    assert tuning.data_fingerprint(train, val) != tuning.data_fingerprint(val, train)
    relabelled = train.assign(label=(train["label"] + 1) % 3)
    assert tuning.data_fingerprint(train, val) != tuning.data_fingerprint(relabelled, val)
