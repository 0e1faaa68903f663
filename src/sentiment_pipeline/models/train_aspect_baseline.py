"""train_aspect_baseline stage: TF-IDF + LogisticRegression on (text, aspect) pair documents."""

from __future__ import annotations

import logging
import time

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from sentiment_pipeline import runner, tracking
from sentiment_pipeline.config.aspect_baseline import AspectBaselineConfig
from sentiment_pipeline.config.baseline import BaselineConfig
from sentiment_pipeline.data.aspect_contract import (
    pairs_of,
    read_aspect_labels,
    read_aspect_split,
    skipped_reason,
)
from sentiment_pipeline.models.artifacts.manifest import ModelManifest
from sentiment_pipeline.models.artifacts.pairs import pair_documents
from sentiment_pipeline.models.artifacts.placeholder import save_placeholder
from sentiment_pipeline.models.artifacts.sklearn_model import save_sklearn
from sentiment_pipeline.models.text_features import make_tfidf, plain_vocabulary, scores
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage

logger = logging.getLogger(__name__)

MODEL_NAME = "pair_baseline"


def build_pipeline(config: BaselineConfig) -> Pipeline:
    """The unfitted TF-IDF + LogisticRegression pipeline over pair documents."""
    return Pipeline([
        ("tfidf", make_tfidf(config)),
        ("clf", LogisticRegression(C=config.C, class_weight=config.class_weight,
                                   solver=config.solver, max_iter=config.max_iter)),
    ])


def run(config: BaselineConfig, paths: ProjectPaths) -> ModelManifest:
    """Fit on the train pairs, score on the val pairs; a placeholder without aspect data."""
    labels = read_aspect_labels(paths)
    reason = skipped_reason(paths)
    train = val = None
    if reason is None:
        train, val = (read_aspect_split(paths, name, labels) for name in ("train", "val"))
        if train.empty or val.empty:
            reason = (f"no aspect rows in {paths.aspect_data_dir} (train {len(train)}, "
                      f"val {len(val)})")
    if reason is not None:
        logger.info("%s writes a placeholder: %s", STAGE.name, reason)
        return save_placeholder(paths.pair_baseline, MODEL_NAME, labels, reason,
                                params=config.model_dump(mode="json"))
    start = time.perf_counter()
    pipeline = build_pipeline(config).fit(pair_documents(pairs_of(train)), train["label"])
    plain_vocabulary(pipeline["tfidf"])
    fit_seconds = time.perf_counter() - start
    val_scores = scores(val["label"], pipeline.predict(pair_documents(pairs_of(val))), labels)
    logger.info("pair baseline: val macro-F1 %.4f, accuracy %.4f (%d train pairs, %.1f s)",
                val_scores["macro_f1"], val_scores["accuracy"], len(train), fit_seconds)
    metrics = {"val_macro_f1": val_scores["macro_f1"], "val_accuracy": val_scores["accuracy"]}
    with tracking.stage_run(STAGE.name, config, paths) as active:
        tracking.log_metrics({**metrics, "val_f1": val_scores["f1_per_class"],
                              "train_rows": len(train), "val_rows": len(val),
                              "fit_seconds": fit_seconds})
        manifest = ModelManifest(
            name=MODEL_NAME, kind="sklearn", labels=labels, input="pair", metrics=metrics,
            params=config.model_dump(mode="json"), mlflow_run_id=active.info.run_id,
        )
        return save_sklearn(paths.pair_baseline, pipeline, manifest)


STAGE = Stage("train_aspect_baseline", "train.aspect_baseline", AspectBaselineConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
