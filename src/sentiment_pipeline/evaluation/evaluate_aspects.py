"""evaluate_aspects stage: pair models, their exports and the majority on the aspect test set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sentiment_pipeline import runner
from sentiment_pipeline.config.evaluation import EvaluationConfig
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.evaluation.aspect_suite import ASPECT_TEST_TYPES, build_aspect_suite
from sentiment_pipeline.evaluation.best_model import BestModel, NoChampion
from sentiment_pipeline.evaluation.evaluate import Evaluation, evaluate, skip
from sentiment_pipeline.evaluation.metrics import LabelledSplit
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage

COLUMNS = ("text", "aspect", "label")
FIX = "rerun the prepare_aspects stage"


def read_aspect_split(path: Path, labels: list[str]) -> pd.DataFrame:
    """One aspect split (text, aspect, label id); zero rows where no aspect data is configured."""
    if not path.is_file():
        raise DataError(f"no aspect split at {path}; run the prepare_aspects stage first")
    frame = pd.read_parquet(path)
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise DataError(f"expected columns {list(COLUMNS)} in {path}, found "
                        f"{list(frame.columns)} (missing {missing}); {FIX}")
    label = frame["label"]
    if len(frame) and (not pd.api.types.is_integer_dtype(label.dtype)
                       or label.min() < 0 or label.max() >= len(labels)):
        raise DataError(f"column 'label' of {path} must hold class ids 0..{len(labels) - 1}; {FIX}")
    return frame[list(COLUMNS)].reset_index(drop=True)


def read_aspect_labels(paths: ProjectPaths) -> list[str]:
    if not paths.aspect_labels.is_file():
        raise DataError(f"no {paths.aspect_labels}; run the prepare_aspects stage first")
    labels = json.loads(paths.aspect_labels.read_text())
    if not (isinstance(labels, list) and len(labels) >= 2
            and all(isinstance(x, str) and x for x in labels)):
        raise DataError(f"{paths.aspect_labels} must list at least 2 class names; {FIX}")
    return labels


def majority_prior(paths: ProjectPaths, labels: list[str]) -> np.ndarray | None:
    """The train split's class frequencies (None without train rows)."""
    train = read_aspect_split(paths.aspect_split("train"), labels)
    if train.empty:
        return None
    counts = np.bincount(train["label"].to_numpy(), minlength=len(labels))
    return counts / counts.sum()


def run(config: EvaluationConfig, paths: ProjectPaths) -> BestModel | NoChampion:
    labels = read_aspect_labels(paths)
    frame = read_aspect_split(paths.aspect_split("test"), labels)
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
        return skip(evaluation, f"{paths.aspect_split('test')} has no rows (no aspect data; "
                    "see reports/aspects_validation.json)", {})
    result = evaluate(evaluation, config, paths)
    if isinstance(result, NoChampion):
        return skip(evaluation, result.reason, result.skipped)
    return result


STAGE = Stage("evaluate_aspects", "evaluation", EvaluationConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
