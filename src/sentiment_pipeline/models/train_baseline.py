"""train_baseline stage: TF-IDF + LogisticRegression in one scikit-learn pipeline."""

from __future__ import annotations

import logging
import time

import pandas as pd
from pydantic import BaseModel, ConfigDict
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from sentiment_pipeline import runner, tracking
from sentiment_pipeline.config.baseline import BaselineConfig
from sentiment_pipeline.data.contract import read_labels, read_split
from sentiment_pipeline.io import write_json
from sentiment_pipeline.models.artifacts.manifest import ModelManifest
from sentiment_pipeline.models.artifacts.sklearn_model import save_sklearn
from sentiment_pipeline.models.text_features import (
    MLFLOW_MODEL_NAME,
    log_sklearn_model,
    make_tfidf,
    plain_vocabulary,
    scores,
)
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage

logger = logging.getLogger(__name__)

MODEL_NAME = "baseline"


class BaselineResult(BaseModel):
    """What train_baseline reports; also written as baseline_metrics.json."""

    model_config = ConfigDict(frozen=True)

    val_macro_f1: float
    val_accuracy: float
    val_f1_per_class: dict[str, float]
    train_rows: int
    val_rows: int
    fit_seconds: float
    mlflow_run_id: str
    model_uri: str
    run_model_uri: str


def build_pipeline(config: BaselineConfig) -> Pipeline:
    """The unfitted TF-IDF + LogisticRegression pipeline."""
    return Pipeline(
        [
            ("tfidf", make_tfidf(config)),
            (
                "clf",
                LogisticRegression(
                    C=config.C,
                    class_weight=config.class_weight,
                    solver=config.solver,
                    max_iter=config.max_iter,
                ),
            ),
        ]
    )


def train(config: BaselineConfig, train_frame: pd.DataFrame) -> Pipeline:
    pipeline = build_pipeline(config).fit(train_frame["text"], train_frame["label"])
    plain_vocabulary(pipeline["tfidf"])
    return pipeline


def run(config: BaselineConfig, paths: ProjectPaths) -> BaselineResult:
    labels = read_labels(paths)
    train_frame = read_split(paths, "train", labels)
    val_frame = read_split(paths, "val", labels)

    start = time.perf_counter()
    pipeline = train(config, train_frame)
    fit_seconds = time.perf_counter() - start
    val = scores(val_frame["label"], pipeline.predict(val_frame["text"]), labels)
    logger.info(
        "baseline: val macro-F1 %.4f, accuracy %.4f (%d train rows, fit %.1f s)",
        val["macro_f1"],
        val["accuracy"],
        len(train_frame),
        fit_seconds,
    )

    with tracking.stage_run(STAGE.name, config, paths) as active:
        run_id = active.info.run_id
        tracking.log_metrics(
            {
                "val_macro_f1": val["macro_f1"],
                "val_accuracy": val["accuracy"],
                "val_f1": val["f1_per_class"],
                "train_rows": len(train_frame),
                "val_rows": len(val_frame),
                "fit_seconds": fit_seconds,
            }
        )
        model_uri = log_sklearn_model(pipeline, train_frame["text"].head(5))
        result = BaselineResult(
            val_macro_f1=val["macro_f1"],
            val_accuracy=val["accuracy"],
            val_f1_per_class=val["f1_per_class"],
            train_rows=len(train_frame),
            val_rows=len(val_frame),
            fit_seconds=fit_seconds,
            mlflow_run_id=run_id,
            model_uri=model_uri,
            run_model_uri=f"runs:/{run_id}/{MLFLOW_MODEL_NAME}",
        )
        manifest = ModelManifest(
            name=MODEL_NAME,
            kind="sklearn",
            labels=labels,
            metrics={"val_macro_f1": val["macro_f1"], "val_accuracy": val["accuracy"]},
            params=config.model_dump(mode="json"),
            mlflow_run_id=run_id,
        )
        save_sklearn(paths.baseline_model, pipeline, manifest)
        write_json(paths.baseline_metrics, result.model_dump(mode="json"))
    return result


STAGE = Stage("train_baseline", "train.baseline", BaselineConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
