"""One evaluation of any set of models: score each on the test split, report, pick the best."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sentiment_pipeline.config.evaluation import EvaluationConfig
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.evaluation import behavioural, reports, variants
from sentiment_pipeline.evaluation.best_model import BestModel, NoChampion
from sentiment_pipeline.evaluation.metrics import (
    LabelledSplit,
    classification_metrics,
    latency_ms_per_1000,
)
from sentiment_pipeline.evaluation.reports import MAJORITY, TIE_BREAK, ModelReport
from sentiment_pipeline.evaluation.variants import VariantReport
from sentiment_pipeline.io import atomic_dir, write_json
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import SentimentModel
from sentiment_pipeline.paths import ProjectPaths

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation stage evaluates, on which split, and where it writes."""

    stage: str  # the stage (and its MLflow run) name
    input: Literal["text", "pair"]  # what one example of every evaluated model is
    models: Mapping[str, Path]  # model name -> folder
    train_stages: Mapping[str, str]  # model name -> the stage that writes its folder
    export_stage: str  # the stage that writes the variants
    test: LabelledSplit
    cases: Sequence[behavioural.Case]
    test_types: Sequence[str]
    report_dir: Path
    best_model: Path
    variants: Mapping[str, Mapping[str, Path]] = field(default_factory=dict)  # name -> backend
    missing_hint: str = ""  # added to the error for a missing model folder
    # the train split's class frequencies: the majority baseline's probabilities (None: no row)
    majority_prior: np.ndarray | None = None


def load_models(evaluation: Evaluation, paths: ProjectPaths) -> dict[str, SentimentModel]:
    models = {}
    for name, directory in evaluation.models.items():
        if not directory.exists():
            stage = evaluation.train_stages[name]
            raise PipelineError(
                f"no model directory for {name!r} at {directory}; run the {stage} stage first "
                f"(`sentiment-pipeline stage {stage}` or `dvc repro {stage}`)"
                f"{evaluation.missing_hint}"
            )
        model = load_model(directory, expected_labels=evaluation.test.labels, project=paths)
        manifest = model.manifest
        if manifest.kind != "placeholder" and manifest.input != evaluation.input:
            raise PipelineError(
                f"{directory} holds a model whose input is {manifest.input!r} (model.json "
                f"`input`), but the {evaluation.stage} stage evaluates {evaluation.input!r} models"
            )
        models[name] = model
    return models


def evaluate_model(
    name: str, model: SentimentModel, path: Path, test: LabelledSplit, config: EvaluationConfig,
    evaluation: Evaluation,
) -> ModelReport:
    manifest = model.manifest
    report = ModelReport(name, manifest.kind, path, mlflow_run_id=manifest.mlflow_run_id)
    if manifest.kind == "placeholder":
        report.skipped_reason = manifest.reason or "placeholder"
        return report
    report.scores, report.proba = variants.scores_of(model, test.inputs)
    report.metrics = classification_metrics(test.y_true, report.proba, model.labels)
    report.metrics["latency_ms_per_1000"] = latency_ms_per_1000(
        model.predict_proba, test.inputs, config.latency_batch_size
    )
    if config.behavioural_tests:
        report.behavioural = behavioural.run_suite(model.predict, evaluation.cases,
                                                   evaluation.test_types)
    return report


def majority_report(prior: np.ndarray, test: LabelledSplit) -> ModelReport:
    """The reference that always answers the train split's most frequent class."""
    proba = np.tile(np.asarray(prior, dtype=np.float64), (len(test.y_true), 1))
    report = ModelReport(MAJORITY, MAJORITY, None, proba=proba)
    report.metrics = {**classification_metrics(test.y_true, proba, test.labels),
                      "latency_ms_per_1000": None,
                      "majority_class": test.labels[int(np.argmax(prior))]}
    return report


def select_champion(scores: Mapping[str, Mapping[str, Any]], primary_metric: str) -> str:
    """Highest primary metric, then macro-F1, then accuracy, then the name alphabetically."""
    if not scores:
        raise ValueError("no evaluated model to choose from")

    def key(name: str) -> tuple:
        metrics = scores[name]
        values = [metrics.get(m) for m in (primary_metric, *TIE_BREAK)]
        # None (undefined) ranks below any number; negation sorts higher-is-better first.
        return (*((v is None, -(v or 0.0)) for v in values), name)

    return min(scores, key=key)


def tracked_metrics(report: ModelReport) -> dict[str, Any]:
    metrics = {k: v for k, v in report.metrics.items()
               if k != "confusion_matrix" and not isinstance(v, str)}
    if report.behavioural:
        metrics["behavioural"] = {
            "pass_rate": report.behavioural["pass_rate"],
            **{t: v["pass_rate"] for t, v in report.behavioural["tests"].items()},
        }
    return {report.name: metrics}


def _served_variants(exported: Sequence[VariantReport], paths: ProjectPaths) -> dict[str, str]:
    """The variants of the champion that passed their checks -> project-relative folder."""
    return {v.backend: v.path.relative_to(paths.root).as_posix() for v in exported if v.passed}


def _variant_tags(exported: Mapping[str, Sequence[VariantReport]]) -> dict[str, str]:
    failed = [f"{v.source}.{v.backend}" for vs in exported.values() for v in vs
              if v.failure is not None]
    return {"failed_variants": ",".join(failed) or "none"} if exported else {}


def skip(evaluation: Evaluation, reason: str, skipped: Mapping[str, str]) -> NoChampion:
    """No model to evaluate: the report and best_model.json say why (no MLflow run)."""
    logger.warning("%s: nothing evaluated: %s", evaluation.stage, reason)
    with atomic_dir(evaluation.report_dir) as tmp:
        reports.write_skipped(tmp, reason, skipped)
    result = NoChampion(reason=reason, skipped=dict(skipped))
    write_json(evaluation.best_model, result.model_dump(mode="json"))
    return result


def evaluate(
    evaluation: Evaluation, config: EvaluationConfig, paths: ProjectPaths
) -> BestModel | NoChampion:
    """Evaluate every model of `evaluation`, write its report and best_model.json.

    Every model a placeholder: nothing is written and a NoChampion with the reasons is
    returned (the caller decides whether that is an error).
    """
    import mlflow

    from sentiment_pipeline import tracking

    test = evaluation.test
    models = load_models(evaluation, paths)
    evaluated = [
        evaluate_model(name, model, evaluation.models[name], test, config, evaluation)
        for name, model in models.items()
    ]
    skipped = {r.name: r.skipped_reason for r in evaluated if r.skipped_reason is not None}
    scores = {r.name: r.metrics for r in evaluated if r.skipped_reason is None}
    if not scores:
        details = "; ".join(f"{name}: {reason}" for name, reason in skipped.items())
        return NoChampion(reason=f"every model is a placeholder ({details})", skipped=skipped)
    champion = select_champion(scores, config.primary_metric)
    for name, reason in skipped.items():
        logger.warning("model %s skipped: %s", name, reason)
    exported = {
        r.name: variants.evaluate_variants(
            r.name, r.path, evaluation.variants[r.name], test, r.scores, r.metrics, config,
            paths, evaluation.export_stage,
        )
        for r in evaluated
        if r.skipped_reason is None and evaluation.variants.get(r.name)
    }
    if evaluation.majority_prior is not None:
        evaluated.append(majority_report(evaluation.majority_prior, test))
    best = next(r for r in evaluated if r.name == champion)
    logger.info("champion: %s (%s %s)", champion, config.primary_metric,
                reports.fmt(best.metrics[config.primary_metric], 4))

    with tracking.stage_run(evaluation.stage, config, paths) as active:
        for r in evaluated:
            if r.skipped_reason is None:
                tracking.log_metrics(tracked_metrics(r))
        for v in (v for vs in exported.values() for v in vs if v.skipped_reason is None):
            tracking.log_metrics(variants.tracked_metrics(v))
        mlflow.set_tags({"champion": champion, "skipped_models": ",".join(skipped) or "none",
                         **_variant_tags(exported)})
        with atomic_dir(evaluation.report_dir) as tmp:
            reports.write_report(tmp, evaluated, test.y_true, test.labels, champion,
                                 config.primary_metric, config.behavioural_tests, exported)
        result = BestModel(
            name=champion,
            path=best.path.relative_to(paths.root).as_posix(),
            kind=best.kind,
            primary_metric=config.primary_metric,
            score=best.metrics[config.primary_metric],
            metrics={k: v for k, v in best.metrics.items() if k != "confusion_matrix"},
            mlflow_run_id=best.mlflow_run_id,
            evaluation_run_id=active.info.run_id,
            evaluated=list(scores),
            skipped=skipped,
            variants=_served_variants(exported.get(champion, []), paths),
        )
        write_json(evaluation.best_model, result.model_dump(mode="json"))
        mlflow.log_artifacts(str(evaluation.report_dir),
                             artifact_path=evaluation.report_dir.name)
        mlflow.log_artifact(str(evaluation.best_model))
    return result
