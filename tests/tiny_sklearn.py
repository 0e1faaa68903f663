"""A tiny TF-IDF + LogisticRegression model directory, built in milliseconds for the tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from sentiment_pipeline.models.artifacts.manifest import ModelManifest
from sentiment_pipeline.models.artifacts.sklearn_model import save_sklearn
from synthetic import LABELS, make_processed_splits


def fit_pipeline(train: pd.DataFrame | None = None, C: float = 10.0) -> Pipeline:
    train = make_processed_splits()["train"] if train is None else train
    pipeline = Pipeline(
        [("tfidf", TfidfVectorizer()), ("clf", LogisticRegression(C=C, max_iter=500))]
    )
    return pipeline.fit(train["text"], train["label"])


def save_tiny_model(
    target: Path,
    name: str = "baseline",
    labels: list[str] | None = None,
    run_id: str | None = "train-run-1",
    C: float = 10.0,
) -> ModelManifest:
    manifest = ModelManifest(
        name=name,
        kind="sklearn",
        labels=labels or list(LABELS),
        mlflow_run_id=run_id,
        params={"C": C},
    )
    return save_sklearn(target, fit_pipeline(C=C), manifest)
