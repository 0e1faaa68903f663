"""evaluate_aspects stage: pair models, their exports and the majority on the aspect test set."""

from __future__ import annotations

import numpy as np

from sentiment_pipeline import runner
from sentiment_pipeline.config.evaluation import EvaluationConfig
from sentiment_pipeline.data.aspect_contract import read_aspect_labels, read_aspect_split
from sentiment_pipeline.evaluation.aspect_suite import ASPECT_TEST_TYPES, build_aspect_suite
from sentiment_pipeline.evaluation.best_model import BestModel, NoChampion
from sentiment_pipeline.evaluation.evaluate import Evaluation, evaluate, skip
from sentiment_pipeline.evaluation.metrics import LabelledSplit
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage


def majority_prior(paths: ProjectPaths, labels: list[str]) -> np.ndarray | None:
    """The train split's class frequencies (None without train rows)."""
    train = read_aspect_split(paths, "train", labels)
    if train.empty:
        return None
    counts = np.bincount(train["label"].to_numpy(), minlength=len(labels))
    return counts / counts.sum()


def run(config: EvaluationConfig, paths: ProjectPaths) -> BestModel | NoChampion:
    labels = read_aspect_labels(paths)
    frame = read_aspect_split(paths, "test", labels)
    evaluation = Evaluation(
        stage=STAGE.name,
        input="pair",
        models={"aspect_model": paths.aspect_model, "pair_baseline": paths.pair_baseline},
        train_stages={"aspect_model": "train_aspects", "pair_baseline": "train_aspect_baseline"},
        export_stage="export_aspects_onnx",
        test=LabelledSplit(list(zip(frame["text"], frame["aspect"], strict=True)),
                           frame["label"].to_numpy(dtype=np.int64), labels),
        cases=build_aspect_suite(labels),
        test_types=ASPECT_TEST_TYPES,
        report_dir=paths.aspect_evaluation_dir,
        best_model=paths.aspect_best_model,
        variants={"aspect_model": {"onnx": paths.aspect_onnx,
                                   "onnx-int8": paths.aspect_onnx_int8}},
        majority_prior=majority_prior(paths, labels),
    )
    if frame.empty:
        return skip(evaluation, f"{paths.aspects_split('test')} has no rows (no aspect data; "
                    "see reports/aspects_validation.json)", {})
    result = evaluate(evaluation, config, paths)
    if isinstance(result, NoChampion):
        return skip(evaluation, result.reason, result.skipped)
    return result


STAGE = Stage("evaluate_aspects", "evaluation", EvaluationConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
