"""The ConfigurationManager: defaults, overrides and one clear error per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sentiment_pipeline.config.distilbert import DistilBERTConfig
from sentiment_pipeline.config.loading import apply_overrides, params_hash
from sentiment_pipeline.config.manager import ConfigurationManager
from sentiment_pipeline.config.pipeline import PipelineConfig
from sentiment_pipeline.errors import ConfigError

REPO_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def load(*overrides: str) -> ConfigurationManager:
    return ConfigurationManager(REPO_PARAMS, overrides)


def test_repo_params_equal_the_model_defaults():
    # params.yaml documents every tunable; it must not drift from the typed defaults.
    from_file = load().config.model_dump(mode="json", by_alias=True)
    defaults = PipelineConfig().model_dump(mode="json", by_alias=True)
    assert from_file == defaults


def test_every_stage_gets_its_own_frozen_model():
    manager = load()
    distilbert = manager.config.train.distilbert
    assert isinstance(distilbert, DistilBERTConfig)
    assert distilbert.enable is True and distilbert.n_trials >= 1
    with pytest.raises(Exception, match="frozen"):
        distilbert.n_trials = 3
    assert manager.config.register_.model_name
    assert manager.config.split.seed == 42


def test_overrides_are_parsed_as_yaml():
    manager = load(
        "train.distilbert.enable=false",
        "train.distilbert.batch_size=[8, 16]",
        "data.source=../shared/data/airline_tweets.csv",
        "split.seed=7",
    )
    assert manager.config.train.distilbert.enable is False
    assert manager.config.train.distilbert.batch_size == [8, 16]
    assert manager.config.data.source == "../shared/data/airline_tweets.csv"
    assert manager.config.split.seed == 7


def test_label_map_keys_are_strings():
    assert load().config.data.label_map == {
        "-1": "negative",
        "0": "neutral",
        "1": "positive",
    }


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ("split.val_fraction=0", r"split\.val_fraction: got 0; Input should be greater than 0"),
        ("split.test_fraction=1.5", r"split\.test_fraction: got 1\.5; .*less than 1"),
        ("split.val_fraction=0.9", r"split: .*must be below 1 .*0\.9 \+ 0\.15"),
        ("train.distilbert.lr=[0, 1e-4]", r"train\.distilbert\.lr: .*lower bound must be > 0"),
        ("train.distilbert.lr=[1e-3, 1e-5]", r"train\.distilbert\.lr: .*low <= high"),
        ("train.distilbert.device=gpu", r"train\.distilbert\.device: got 'gpu'; .*'auto', 'cuda'"),
        ("train.distilbert.n_trials=0", r"train\.distilbert\.n_trials: got 0; .*greater than"),
        ("train.distilbert.batch_size=[16, 16]", r"batch_size: .*distinct"),
        ("train.distilbert.weight_decay=[0.2, 0.1]", r"weight_decay: .*low <= high"),
        ("train.distilbert.epochs=[3, 1]", r"epochs: .*low <= high"),
        ("train.distilbert.pruner=asha", r"train\.distilbert\.pruner: got 'asha'"),
        ("train.distilbert.enable=maybe", r"train\.distilbert\.enable: got 'maybe'"),
        ("train.distilbert.n_trail=3", r"train\.distilbert\.n_trail: unknown key"),
        ("train.lightgbm.learning_rate=[0.5, 0.1]", r"train\.lightgbm\.learning_rate"),
        ("train.baseline.ngram_range=[0, 2]", r"train\.baseline\.ngram_range: .*start at 1"),
        ("train.baseline.C=-1", r"train\.baseline\.C: got -1"),
        ("data.format=xlsx", r"data\.format: got 'xlsx'"),
        ("data.source=ftp://example.com/x.csv", r"data\.source: got 'ftp://.*scheme 'ftp' is not"),
        ("data.source=file:///etc/x.csv", r"data\.source: got 'file:///etc/x\.csv'; the scheme"),
        ("data.min_text_chars=6000", r"data: data\.min_text_chars \(6000\) must not exceed"),
        ("data.max_rejected_fraction=2", r"data\.max_rejected_fraction: got 2"),
        ("evaluation.models=[baseline, svm]", r"evaluation\.models\.1: got 'svm'"),
        ("evaluation.primary_metric=f1", r"evaluation\.primary_metric: got 'f1'"),
        ("register.min_score=1.5", r"register\.min_score: got 1\.5"),
        ("registry.model_name=x", r"registry: unknown key"),
    ],
)
def test_each_bad_value_names_key_value_and_what_is_allowed(override, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        load(override)
    assert info.value.exit_code == 2


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError, match=r"3 problems") as info:
        load("split.seed=-1", "train.distilbert.device=tpu", "register.min_score=9")
    message = str(info.value)
    assert "split.seed" in message and "device" in message and "min_score" in message


@pytest.mark.parametrize("override", ["novalue", "=3", "a..b=1"])
def test_malformed_override(override):
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load(override)


def test_override_through_a_value_is_refused():
    with pytest.raises(ConfigError, match=r"split\.seed holds a value"):
        apply_overrides({"split": {"seed": 1}}, ["split.seed.x=2"])


def test_missing_and_broken_params_files(tmp_path):
    with pytest.raises(ConfigError, match="no parameter file at"):
        ConfigurationManager(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        ConfigurationManager(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        ConfigurationManager(scalar)


def test_missing_sections_take_defaults(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  distilbert:\n    enable: false\n")
    manager = ConfigurationManager(params)
    assert manager.config.train.distilbert.enable is False
    assert manager.config.split.val_fraction == 0.15


def test_params_hash_changes_with_values_only():
    a = load().config.train.distilbert
    b = load("train.distilbert.n_trials=3").config.train.distilbert
    assert params_hash(a) == params_hash(load().config.train.distilbert)
    assert params_hash(a) != params_hash(b)


def test_resolved_yaml_round_trips(tmp_path):
    text = load("split.seed=3").to_yaml()
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(text)
    assert yaml.safe_load(text)["register"]["model_name"] == "sentiment-classifier"
    assert ConfigurationManager(resolved).config.split.seed == 3
