"""Evaluate every trained model on the test split, write the report and pick the champion."""

from __future__ import annotations

from sentiment_pipeline import runner
from sentiment_pipeline.config.evaluation import EvaluationConfig
from sentiment_pipeline.data.contract import read_labels, read_split
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.evaluation import behavioural
from sentiment_pipeline.evaluation.best_model import BestModel, NoChampion
from sentiment_pipeline.evaluation.evaluate import Evaluation, evaluate
from sentiment_pipeline.evaluation.metrics import LabelledSplit
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage

TRAIN_STAGES = {
    "baseline": "train_baseline",
    "lightgbm": "train_lightgbm",
    "distilbert": "train_distilbert",
}


def run(config: EvaluationConfig, paths: ProjectPaths) -> BestModel:
    labels = read_labels(paths)
    frame = read_split(paths, "test", labels)
    evaluation = Evaluation(
        stage=STAGE.name,
        input="text",
        models={name: paths.model_dir(name) for name in config.models},
        train_stages={name: TRAIN_STAGES[name] for name in config.models},
        missing_hint=", or remove it from evaluation.models",
        export_stage="export_onnx",
        test=LabelledSplit(frame["text"].tolist(), frame["label"].to_numpy(), labels),
        cases=behavioural.build_suite(labels),
        test_types=behavioural.TEST_TYPES,
        report_dir=paths.evaluation_dir,
        best_model=paths.best_model,
        variants={name: paths.model_variants(name) for name in config.models},
    )
    result = evaluate(evaluation, config, paths)
    if isinstance(result, NoChampion):
        raise PipelineError(
            f"no model to evaluate: every model in evaluation.models is a placeholder "
            f"({'; '.join(f'{n}: {r}' for n, r in result.skipped.items())}); train at least "
            "one of them"
        )
    return result


STAGE = Stage("model_evaluation", "evaluation", EvaluationConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
