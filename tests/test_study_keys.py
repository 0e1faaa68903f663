"""Which settings start a new study: what changes what a trial measures, never the budget or
where and how fast trials run (so workers on different machines join one study)."""

from __future__ import annotations

import pytest

from sentiment_pipeline.config.distilbert import DistilBERTConfig
from sentiment_pipeline.config.lightgbm import LightGBMConfig
from sentiment_pipeline.config.tfidf import TfidfConfig
from sentiment_pipeline.models import train_distilbert as dt
from sentiment_pipeline.models import train_lightgbm as lt

# Another valid value for every key of each config. A new key must be added here, which makes
# its author decide whether it belongs to the study key.
DISTILBERT_CHANGES = {
    "enable": False,
    "model_name_or_path": "some/other-model",
    "device": "cuda",
    "allow_cpu": True,
    "n_trials": 99,
    "timeout": 60.0,
    "lr": (2e-5, 1e-4),
    "batch_size": [8, 16],
    "weight_decay": (0.0, 0.2),
    "epochs": (1, 4),
    "warmup_ratio": (0.0, 0.2),
    "max_length": 64,
    "group_by_length": False,
    "evals_per_epoch": 3,
    "pruner": "hyperband",
    "mixed_precision": "fp16",
    "max_train_samples": 500,
    "max_eval_samples": 100,
    "eval_batch_size": 128,
    "seed": 7,
    "nproc_per_node": 2,
}
DISTILBERT_SAME_STUDY = {  # budget, placement and speed; the subsample sizes are in the data
    "enable", "n_trials", "timeout", "device", "allow_cpu", "eval_batch_size",
    "max_train_samples", "max_eval_samples",
    "nproc_per_node",  # the processes that really train are in the key (study_key's processes)
}
LIGHTGBM_CHANGES = {
    "tfidf": TfidfConfig(max_features=500),
    "n_trials": 99,
    "timeout": 60.0,
    "seed": 7,
    "imbalance": "none",
    "pruner": "hyperband",
    "max_estimators": 500,
    "early_stopping_rounds": 10,
    "learning_rate": (0.05, 0.3),
    "num_leaves": (15, 63),
    "min_child_samples": (10, 100),
    "colsample_bytree": (0.5, 1.0),
    "reg_lambda": (1e-2, 10.0),
    "threads": 3,
    "parallel_trials": 2,
}
LIGHTGBM_SAME_STUDY = {"n_trials", "timeout", "threads", "parallel_trials"}


def test_every_config_key_is_classified() -> None:
    assert set(DISTILBERT_CHANGES) == set(DistilBERTConfig.model_fields)
    assert set(LIGHTGBM_CHANGES) == set(LightGBMConfig.model_fields)
    assert DISTILBERT_SAME_STUDY == dt.RUN_ONLY_KEYS and LIGHTGBM_SAME_STUDY == lt.RUN_ONLY_KEYS


STAGES = {
    "distilbert": (DistilBERTConfig, DISTILBERT_CHANGES, DISTILBERT_SAME_STUDY, dt.study_key),
    "lightgbm": (LightGBMConfig, LIGHTGBM_CHANGES, LIGHTGBM_SAME_STUDY, lt.study_key),
}


@pytest.mark.parametrize(
    ("stage", "key"),
    [(stage, key) for stage, (_, changes, _, _) in STAGES.items() for key in sorted(changes)],
)
def test_a_key_starts_a_new_study_unless_it_only_sets_budget_or_placement(stage, key) -> None:
    config_type, changes, same_study, study_key = STAGES[stage]
    base = config_type()
    changed = base.model_copy(update={key: changes[key]})
    assert getattr(changed, key) != getattr(base, key)
    same = study_key(base, "data") == study_key(changed, "data")
    assert same == (key in same_study)


@pytest.mark.parametrize("study_key", [dt.study_key, lt.study_key])
def test_the_data_is_part_of_the_key(study_key) -> None:  # noqa: ANN001
    config = DistilBERTConfig() if study_key is dt.study_key else LightGBMConfig()
    assert study_key(config, "data-a") != study_key(config, "data-b")
