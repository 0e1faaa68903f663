"""Tests of the train_baseline stage: TF-IDF + LogisticRegression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sentiment_pipeline.errors import DataError
from sentiment_pipeline.io import read_json
from sentiment_pipeline.models import train_baseline
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import read_manifest
from sentiment_pipeline.models.text_features import plain_vocabulary, scores
from sentiment_pipeline.paths import ProjectPaths
from synthetic import LABELS


@pytest.fixture
def data(processed: ProjectPaths) -> ProjectPaths:
    return processed


def majority_rate(paths: ProjectPaths, split: str) -> float:
    labels = pd.read_parquet(paths.split(split))["label"]
    return float(labels.value_counts(normalize=True).max())


def test_scores_cover_every_class_even_when_one_is_never_predicted():
    result = scores([0, 1, 2, 2], [0, 1, 1, 1], LABELS)

    assert result["accuracy"] == pytest.approx(0.5)
    assert result["f1_per_class"] == {
        "negative": pytest.approx(1.0),
        "neutral": pytest.approx(0.5),
        "positive": pytest.approx(0.0),
    }
    assert result["macro_f1"] == pytest.approx(0.5)


def test_build_pipeline_follows_the_config(manager, project):
    overrides = ("train.baseline.C=0.5", "train.baseline.ngram_range=[1,3]")
    overrides += ("train.baseline.min_df=1",)
    config = manager(project, *overrides).config.train.baseline

    pipeline = train_baseline.build_pipeline(config)

    assert [name for name, _ in pipeline.steps] == ["tfidf", "clf"]
    assert pipeline["tfidf"].ngram_range == (1, 3)
    assert pipeline["tfidf"].min_df == 1
    assert pipeline["clf"].C == 0.5
    assert pipeline["clf"].class_weight == "balanced"


def test_plain_vocabulary_keeps_the_features(processed):
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = pd.read_parquet(processed.split("train"))["text"]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2)).fit(texts)
    before = vectorizer.transform(texts)

    plain_vocabulary(vectorizer)

    assert {type(i) for i in vectorizer.vocabulary_.values()} == {int}
    assert (vectorizer.transform(texts) != before).nnz == 0


def test_run_without_processed_data_says_which_stage_to_run(manager, project):
    config = manager(project).config.train.baseline

    with pytest.raises(DataError, match="no labels file at .*labels.json; run the prepare stage"):
        train_baseline.run(config, project)


@pytest.mark.slow
def test_run_trains_saves_and_tracks_the_baseline(manager, data):
    import mlflow
    from mlflow import MlflowClient

    config = manager(data, "train.baseline.max_features=500").config.train.baseline

    result = train_baseline.run(config, data)

    metrics = read_json(data.baseline_metrics)
    assert metrics == result.model_dump(mode="json")
    assert set(metrics["val_f1_per_class"]) == set(LABELS)
    assert metrics["train_rows"] == 144 and metrics["val_rows"] == 48
    assert metrics["fit_seconds"] > 0
    assert metrics["run_model_uri"] == f"runs:/{result.mlflow_run_id}/model"
    assert result.val_macro_f1 > majority_rate(data, "val")

    model = load_model(data.baseline_model, expected_labels=LABELS, project=data)
    test = pd.read_parquet(data.split("test"))
    predicted = np.argmax(model.predict_proba(test["text"].tolist()), axis=1)
    assert (predicted == test["label"].to_numpy()).mean() > majority_rate(data, "test")
    manifest = read_manifest(data.baseline_model)
    assert manifest.name == "baseline"
    assert manifest.mlflow_run_id == result.mlflow_run_id
    assert manifest.params["C"] == config.C
    assert manifest.metrics["val_macro_f1"] == pytest.approx(result.val_macro_f1)

    client = MlflowClient(tracking_uri=f"sqlite:///{data.mlflow_db}")
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["max_features"] == "500"
    assert run.data.metrics["val_macro_f1"] == pytest.approx(result.val_macro_f1)
    assert set(run.data.metrics) >= {f"val_f1.{name}" for name in LABELS}
    logged = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], output_format="list"
    )
    assert [m.name for m in logged] == ["model"]
    assert logged[0].source_run_id == result.mlflow_run_id
    assert result.model_uri == f"models:/{logged[0].model_id}"


@pytest.mark.slow
def test_logged_mlflow_model_predicts_the_same_ids(manager, data, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    config = manager(data).config.train.baseline
    result = train_baseline.run(config, data)
    texts = ["great flight and friendly crew", "awful delayed plane", "my gate today"]

    served = mlflow.pyfunc.load_model(result.run_model_uri)

    local = load_model(data.baseline_model, project=data)
    expected = np.argmax(local.predict_proba(texts), axis=1)
    assert served.predict(np.asarray(texts, dtype=object)).tolist() == expected.tolist()
