"""Model directories: save/load round trips and every load error, with its message."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sentiment_pipeline.models import artifacts
from sentiment_pipeline.models.artifacts import ArtifactError, load_model
from synthetic import LABELS, make_processed_splits
from tiny_sklearn import save_tiny_model

TEXTS = ["awful delayed flight", "the gate today", "great friendly crew"]


@pytest.fixture
def models_dir(tmp_path):
    return tmp_path / "project" / "models"


@pytest.fixture
def sklearn_dir(models_dir):
    target = models_dir / "baseline" / "logistic_baseline"
    save_tiny_model(target)
    return target


def _edit_manifest(directory, **changes):
    path = directory / artifacts.MANIFEST
    payload = json.loads(path.read_text())
    payload.update(changes)
    path.write_text(json.dumps(payload))


def test_sklearn_round_trip(sklearn_dir, models_dir):
    model = load_model(sklearn_dir, expected_labels=LABELS, trusted_roots=[models_dir])
    assert isinstance(model, artifacts.SklearnModel)
    assert model.labels == LABELS
    assert model.manifest.mlflow_run_id == "train-run-1"
    proba = model.predict_proba(TEXTS)
    assert proba.shape == (3, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # columns are in label-id order: each cue word wins its own column
    assert list(proba.argmax(axis=1)) == [0, 1, 2]
    assert model.predict(TEXTS) == ["negative", "neutral", "positive"]


def test_columns_follow_label_ids_when_a_class_was_not_trained(tmp_path):
    train = make_processed_splits()["train"]
    train = train[train["label"] != 1]
    estimator = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(
        train["text"], train["label"]
    )
    manifest = artifacts.ModelManifest(name="baseline", kind="sklearn", labels=LABELS)
    artifacts.save_sklearn(tmp_path / "m", estimator, manifest)
    proba = load_model(tmp_path / "m", trust=True).predict_proba(TEXTS)
    assert proba.shape == (3, 3)
    assert (proba[:, 1] == 0).all()
    assert proba[0].argmax() == 0 and proba[2].argmax() == 2


def test_placeholder_round_trip(tmp_path):
    artifacts.save_placeholder(tmp_path / "m", "distilbert", LABELS, "no CUDA device")
    model = load_model(tmp_path / "m", expected_labels=LABELS)
    assert isinstance(model, artifacts.PlaceholderModel)
    assert model.manifest.status == "skipped"
    assert model.labels == LABELS
    with pytest.raises(ArtifactError, match="'distilbert' is a placeholder .skipped: no CUDA"):
        model.predict_proba(TEXTS)


def test_missing_directory(tmp_path):
    with pytest.raises(ArtifactError, match="no model directory at .*nowhere; train the model"):
        load_model(tmp_path / "nowhere")


def test_directory_without_manifest(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(ArtifactError, match="has no model.json manifest; it is not a model dir"):
        load_model(tmp_path / "m")


def test_corrupt_manifest_json(sklearn_dir):
    (sklearn_dir / artifacts.MANIFEST).write_text('{"name": "baseline", ')
    with pytest.raises(ArtifactError, match="model.json is not valid JSON .*; retrain the model"):
        load_model(sklearn_dir, trust=True)


def test_manifest_failing_the_schema(sklearn_dir):
    _edit_manifest(sklearn_dir, kind="xgboost", colour="blue")
    with pytest.raises(ArtifactError, match=r"model.json is corrupt: kind: .*; colour: Extra"):
        load_model(sklearn_dir, trust=True)


def test_placeholder_manifest_without_reason_fails_the_schema(tmp_path):
    artifacts.save_placeholder(tmp_path / "m", "distilbert", LABELS, "no CUDA device")
    _edit_manifest(tmp_path / "m", reason=None)
    with pytest.raises(ArtifactError, match="corrupt: <root>: .*a placeholder needs a reason"):
        load_model(tmp_path / "m")


def test_labels_differing_from_labels_json(sklearn_dir):
    with pytest.raises(
        ArtifactError,
        match=r"trained for labels \['negative', 'neutral', 'positive'\], but the data has "
        r"\['neg', 'pos'\] \(labels.json\)",
    ):
        load_model(sklearn_dir, expected_labels=["neg", "pos"], trust=True)


def test_placeholder_refused_when_a_real_model_is_required(tmp_path):
    artifacts.save_placeholder(tmp_path / "m", "distilbert", LABELS, "disabled in params")
    with pytest.raises(
        ArtifactError, match="placeholder for model 'distilbert' .skipped: disabled in params"
    ):
        load_model(tmp_path / "m", require_real=True)


def test_sklearn_outside_trusted_roots_is_refused_unless_trusted(sklearn_dir, tmp_path):
    elsewhere = tmp_path / "downloads" / "model"
    shutil.copytree(sklearn_dir, elsewhere)
    with pytest.raises(ArtifactError, match="refusing to load the scikit-learn artifact at"):
        load_model(elsewhere, trusted_roots=[sklearn_dir.parents[1]], trust=False)
    model = load_model(elsewhere, trusted_roots=[sklearn_dir.parents[1]], trust=True)
    assert model.predict(TEXTS) == ["negative", "neutral", "positive"]


def test_trust_comes_from_the_environment_by_default(sklearn_dir, tmp_path, monkeypatch):
    from sentiment_pipeline.settings import get_settings

    monkeypatch.setenv("SENTIMENT_PIPELINE_TRUST_ARTIFACTS", "false")
    get_settings.cache_clear()
    with pytest.raises(ArtifactError, match="refusing to load"):
        load_model(sklearn_dir)
    monkeypatch.setenv("SENTIMENT_PIPELINE_TRUST_ARTIFACTS", "true")
    get_settings.cache_clear()
    try:
        assert load_model(sklearn_dir).labels == LABELS
    finally:
        get_settings.cache_clear()


def test_skops_type_not_listed_in_the_manifest_is_refused(tmp_path):
    train = make_processed_splits()["train"]
    vectorizer = TfidfVectorizer(tokenizer=str.split, token_pattern=None, lowercase=False)
    estimator = make_pipeline(vectorizer, LogisticRegression()).fit(train["text"], train["label"])
    manifest = artifacts.ModelManifest(name="baseline", kind="sklearn", labels=LABELS)
    saved = artifacts.save_sklearn(tmp_path / "m", estimator, manifest)
    assert saved.trusted_types == ["builtins.method_descriptor"]
    _edit_manifest(tmp_path / "m", trusted_types=[])
    with pytest.raises(
        ArtifactError,
        match=r"contains types its manifest does not list as trusted: \['builtins.method_desc",
    ):
        load_model(tmp_path / "m", trust=True)


def test_missing_skops_file(sklearn_dir):
    (sklearn_dir / artifacts.SKOPS_FILE).unlink()
    with pytest.raises(ArtifactError, match="lists pipeline.skops in its manifest but the file"):
        load_model(sklearn_dir, trust=True)


def test_interrupted_save_leaves_no_target(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(artifacts, "write_manifest", explode)
    target = tmp_path / "models" / "m"
    with pytest.raises(RuntimeError, match="disk full"):
        save_tiny_model(target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_interrupted_save_keeps_the_previous_model(sklearn_dir, monkeypatch):
    monkeypatch.setattr(
        artifacts, "write_manifest", lambda *a: (_ for _ in ()).throw(RuntimeError("killed"))
    )
    with pytest.raises(RuntimeError, match="killed"):
        save_tiny_model(sklearn_dir, run_id="train-run-2")
    assert load_model(sklearn_dir, trust=True).manifest.mlflow_run_id == "train-run-1"
    assert [p.name for p in sklearn_dir.parent.iterdir()] == [sklearn_dir.name]
