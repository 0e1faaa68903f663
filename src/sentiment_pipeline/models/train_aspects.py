"""train_aspects stage: a (text, aspect) pair classifier, tuned on the tuning core or adopted."""

from __future__ import annotations

import logging
import time

from sentiment_pipeline import runner, tracking
from sentiment_pipeline.config.aspects_train import AspectsTrainConfig
from sentiment_pipeline.data.aspect_contract import (
    pairs_of,
    read_aspect_labels,
    read_aspect_split,
    skipped_reason,
)
from sentiment_pipeline.io import atomic_dir, write_json
from sentiment_pipeline.models.distilbert import tuned
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage
from sentiment_pipeline.tuning.results import TuningSummary

logger = logging.getLogger(__name__)

MODEL_NAME = "aspects"
SECTION = "train.aspects"
# As train_distilbert's, plus the keys of adopting a model (no study then).
RUN_ONLY_KEYS = frozenset(
    {"enable", "n_trials", "timeout", "device", "allow_cpu", "eval_batch_size",
     "max_train_samples", "max_eval_samples", "fine_tune", "label_map"}
)


def task(config: AspectsTrainConfig, paths: ProjectPaths) -> tuned.FineTuneTask:
    """The pair classifier on the aspect data, under models/aspects/."""
    return tuned.FineTuneTask(
        name=MODEL_NAME, stage=STAGE.name, section=SECTION, model_dir=paths.aspect_model,
        results_dir=paths.aspect_results, metrics_path=paths.aspect_metrics,
        run_only_keys=RUN_ONLY_KEYS,
        pair_style="marked" if config.mark_aspect else "plain",
        class_weight=config.class_weight,
        label_smoothing=config.label_smoothing,
        manifest_params={"class_weight": config.class_weight,
                         "label_smoothing": config.label_smoothing},
    )


def adopt(
    this: tuned.FineTuneTask, config: AspectsTrainConfig, paths: ProjectPaths, labels: list[str]
) -> TuningSummary:
    """fine_tune false: save the configured pair classifier as ours, scored on the val split."""
    from sentiment_pipeline.models.artifacts.loader import load_model
    from sentiment_pipeline.models.distilbert.adopt import adopt as adopt_model
    from sentiment_pipeline.models.text_features import scores

    start = time.perf_counter()
    manifest = tuned.manifest_of(
        this, labels=labels,
        params={"model_name_or_path": config.model_name_or_path, "max_length": config.max_length},
    )
    details = adopt_model(config.model_name_or_path, labels, config.label_map, SECTION,
                          this.model_dir, manifest)
    val = read_aspect_split(paths, "val", labels)
    found = {"macro_f1": None, "accuracy": None}
    if len(val):
        model = load_model(this.model_dir)
        found = scores(val["label"], model.predict_proba(pairs_of(val)).argmax(axis=1), labels)
    with tracking.stage_run(STAGE.name, config, paths) as active:
        tracking.log_metrics({"val_macro_f1": found["macro_f1"],
                              "val_accuracy": found["accuracy"]})
        run_id = active.info.run_id
    summary = TuningSummary(
        status="adopted", best_val_macro_f1=found["macro_f1"],
        best_val_accuracy=found["accuracy"], mlflow_run_id=run_id,
        wall_seconds=round(time.perf_counter() - start, 3),
        details={**details, "val_rows": len(val)},
    )
    with atomic_dir(this.results_dir) as tmp:
        write_json(tmp / "study.json", summary.model_dump(mode="json"))
    write_json(this.metrics_path, summary.model_dump(mode="json"))
    logger.info("adopted %s: val macro-F1 %s", config.model_name_or_path, found["macro_f1"])
    return summary


def no_data_reason(paths: ProjectPaths, labels: list[str]) -> str | None:
    """Why there is nothing to train on (prepare_aspects skipped, or an empty split), or None."""
    reason = skipped_reason(paths)
    if reason is not None:
        return reason
    for name in ("train", "val"):
        if read_aspect_split(paths, name, labels).empty:
            return f"no aspect rows in the {name} split ({paths.aspects_split(name)})"
    return None


def run(config: AspectsTrainConfig, paths: ProjectPaths) -> TuningSummary:
    """Placeholders (disabled, no aspect data, no CUDA without allow_cpu), else tune or adopt."""
    labels = read_aspect_labels(paths)
    this = task(config, paths)
    reason = "disabled" if not config.enable else no_data_reason(paths, labels)
    if reason is not None:
        logger.info("%s writes placeholders: %s", STAGE.name, reason)
        return tuned.write_placeholders(this, config, labels, reason)
    if not config.fine_tune:
        return adopt(this, config, paths, labels)
    placed = tuned.placement(config, SECTION)
    if isinstance(placed, str):
        return tuned.write_placeholders(this, config, labels, placed)
    device, precision = placed
    train, val = (read_aspect_split(paths, name, labels) for name in ("train", "val"))
    setup, data = tuned.prepare(this, config, train, val, labels, device, precision)
    logger.info("%d train / %d val pairs on %s (%s), max_length %d, class weights %s",
                len(setup.train), len(setup.val), device, precision, setup.max_length,
                setup.class_weights)
    return tuned.tune(this, config, paths, setup, data)


STAGE = Stage("train_aspects", SECTION, AspectsTrainConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
