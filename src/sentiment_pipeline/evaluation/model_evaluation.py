"""Evaluate every trained model on the test split, write the report and pick the champion."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sentiment_pipeline import runner
from sentiment_pipeline.config.evaluation import EvaluationConfig
from sentiment_pipeline.data.contract import read_labels, read_split
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.evaluation import behavioural, plots, variants
from sentiment_pipeline.evaluation.best_model import BestModel
from sentiment_pipeline.evaluation.metrics import classification_metrics, latency_ms_per_1000
from sentiment_pipeline.evaluation.variants import VariantReport
from sentiment_pipeline.io import atomic_dir, to_jsonable, write_json
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import SentimentModel
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage

logger = logging.getLogger(__name__)

TRAIN_STAGES = {
    "baseline": "train_baseline",
    "lightgbm": "train_lightgbm",
    "distilbert": "train_distilbert",
}
TIE_BREAK = ("macro_f1", "accuracy")


@dataclass
class ModelReport:
    """What the evaluation learnt about one model."""

    name: str
    kind: str
    path: Path
    mlflow_run_id: str | None = None
    skipped_reason: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    proba: np.ndarray | None = None
    scores: np.ndarray | None = None
    behavioural: dict[str, Any] | None = None


def read_test_data(paths: ProjectPaths) -> tuple[pd.DataFrame, list[str]]:
    labels = read_labels(paths)
    return read_split(paths, "test", labels), labels


def load_models(
    names: Sequence[str], paths: ProjectPaths, labels: Sequence[str]
) -> dict[str, SentimentModel]:
    models = {}
    for name in names:
        directory = paths.model_dir(name)
        if not directory.exists():
            stage = TRAIN_STAGES[name]
            raise PipelineError(
                f"no model directory for {name!r} at {directory}; run the {stage} stage first "
                f"(`sentiment-pipeline stage {stage}` or `dvc repro {stage}`), or remove "
                f"{name!r} from evaluation.models"
            )
        models[name] = load_model(directory, expected_labels=labels, project=paths)
    return models


def evaluate_model(
    name: str,
    model: SentimentModel,
    path: Path,
    frame: pd.DataFrame,
    config: EvaluationConfig,
    cases: Sequence[behavioural.Case],
) -> ModelReport:
    manifest = model.manifest
    report = ModelReport(name, manifest.kind, path, mlflow_run_id=manifest.mlflow_run_id)
    if manifest.kind == "placeholder":
        report.skipped_reason = manifest.reason or "placeholder"
        return report
    texts = frame["text"].tolist()
    report.scores, report.proba = variants.scores_of(model, texts)
    report.metrics = classification_metrics(frame["label"].to_numpy(), report.proba, model.labels)
    report.metrics["latency_ms_per_1000"] = latency_ms_per_1000(
        model.predict_proba, texts, config.latency_batch_size
    )
    if config.behavioural_tests:
        report.behavioural = behavioural.run_suite(model.predict, cases)
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


def _fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _variant_row(v: VariantReport) -> str:
    if v.skipped_reason is not None:
        return f"| {v.title} | skipped | | | | | | | |"
    if not v.metrics:
        return f"| {v.title} | variant, failed check | | | | | | | |"
    m = v.metrics
    status = "variant" if v.passed else "variant, failed check"
    return (
        f"| {v.title} | {status} | {_fmt(m['macro_f1'])} | {_fmt(m['weighted_f1'])} "
        f"| {_fmt(m['accuracy'])} | {_fmt(m['roc_auc_ovr'])} | {_fmt(m['log_loss'])} "
        f"| {_fmt(m['latency_ms_per_1000'], 1)} | |"
    )


def comparison_markdown(
    reports: Sequence[ModelReport],
    champion: str,
    primary_metric: str,
    exported: Mapping[str, Sequence[VariantReport]] | None = None,
) -> str:
    """The comparison table; each model's exported variants are rows beneath it."""
    exported = exported or {}
    lines = [
        "# Model comparison (test set)",
        "",
        f"Champion: **{champion}** (highest {primary_metric}; ties broken by "
        f"{', '.join(m for m in TIE_BREAK if m != primary_metric)}, then name).",
        "",
        "| model | status | macro-F1 | weighted-F1 | accuracy | ROC-AUC (OvR) | log-loss "
        "| latency ms/1000 | behavioural pass rate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        if r.skipped_reason is not None:
            lines.append(f"| {r.name} | skipped | | | | | | | |")
            continue
        m = r.metrics
        status = "champion" if r.name == champion else "evaluated"
        rate = r.behavioural["pass_rate"] if r.behavioural else None
        lines.append(
            f"| {r.name} | {status} | {_fmt(m['macro_f1'])} | {_fmt(m['weighted_f1'])} "
            f"| {_fmt(m['accuracy'])} | {_fmt(m['roc_auc_ovr'])} | {_fmt(m['log_loss'])} "
            f"| {_fmt(m['latency_ms_per_1000'], 1)} | {_fmt(rate)} |"
        )
        lines += [_variant_row(v) for v in exported.get(r.name, [])]
    skipped = [(r.name, r.skipped_reason) for r in reports if r.skipped_reason is not None]
    skipped += [(v.title, v.skipped_reason) for vs in exported.values() for v in vs
                if v.skipped_reason is not None]
    if skipped:
        lines += ["", "Skipped models:", ""]
        lines += [f"- {name}: {reason}" for name, reason in skipped]
    lines += variants.parity_markdown([v for vs in exported.values() for v in vs], primary_metric)
    evaluated = [r for r in reports if r.behavioural]
    if evaluated:
        lines += ["", "## Behavioural tests (pass rate)", "",
                  "| model | " + " | ".join(behavioural.TEST_TYPES) + " |",
                  "|---|" + "---|" * len(behavioural.TEST_TYPES)]
        for r in evaluated:
            rates = [_fmt(r.behavioural["tests"][t]["pass_rate"]) for t in behavioural.TEST_TYPES]
            lines.append(f"| {r.name} | " + " | ".join(rates) + " |")
    return "\n".join(lines) + "\n"


def model_metrics_payload(report: ModelReport) -> dict[str, Any]:
    return {
        "model": report.name,
        "kind": report.kind,
        "status": "evaluated",
        **report.metrics,
        "behavioural": report.behavioural,
        "mlflow_run_id": report.mlflow_run_id,
    }


def write_report(
    directory: Path,
    reports: Sequence[ModelReport],
    y_true: np.ndarray,
    labels: Sequence[str],
    champion: str,
    config: EvaluationConfig,
    exported: Mapping[str, Sequence[VariantReport]] | None = None,
) -> None:
    exported = exported or {}
    evaluated = [r for r in reports if r.skipped_reason is None]
    for r in evaluated:
        (directory / f"{r.name}_test_metrics.json").write_text(
            json.dumps(to_jsonable(model_metrics_payload(r)), indent=2) + "\n"
        )
        plots.save_confusion_matrix(
            r.metrics["confusion_matrix"], labels, f"{r.name} (test)",
            directory / f"{r.name}_confusion_matrix.png",
        )
    probas = {r.name: r.proba for r in evaluated}
    plots.save_roc_curves(y_true, probas, labels, directory / "roc_curves.png")
    plots.save_pr_curves(y_true, probas, labels, directory / "pr_curves.png")
    behaviour = {
        "enabled": config.behavioural_tests,
        "models": {r.name: r.behavioural for r in evaluated if r.behavioural is not None},
        "skipped": {r.name: r.skipped_reason for r in reports if r.skipped_reason is not None},
    }
    (directory / "behavioural.json").write_text(json.dumps(to_jsonable(behaviour), indent=2) + "\n")
    (directory / "comparison.md").write_text(
        comparison_markdown(reports, champion, config.primary_metric, exported)
    )
    for v in (v for vs in exported.values() for v in vs):
        (directory / f"{v.source}_{v.backend}_test_metrics.json").write_text(
            json.dumps(to_jsonable(variants.metrics_payload(v)), indent=2) + "\n"
        )


def _tracked_metrics(report: ModelReport) -> dict[str, Any]:
    metrics = {k: v for k, v in report.metrics.items() if k != "confusion_matrix"}
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


def run(config: EvaluationConfig, paths: ProjectPaths) -> BestModel:
    import mlflow

    from sentiment_pipeline import tracking

    frame, labels = read_test_data(paths)
    models = load_models(config.models, paths, labels)
    cases = behavioural.build_suite(labels)
    reports = [
        evaluate_model(name, model, paths.model_dir(name), frame, config, cases)
        for name, model in models.items()
    ]
    skipped = {r.name: r.skipped_reason for r in reports if r.skipped_reason is not None}
    scores = {r.name: r.metrics for r in reports if r.skipped_reason is None}
    if not scores:
        details = "; ".join(f"{name}: {reason}" for name, reason in skipped.items())
        raise PipelineError(
            f"no model to evaluate: every model in evaluation.models is a placeholder "
            f"({details}); train at least one of them"
        )
    champion = select_champion(scores, config.primary_metric)
    for name, reason in skipped.items():
        logger.warning("model %s skipped: %s", name, reason)
    exported = {
        r.name: variants.evaluate_variants(
            r.name, r.path, r.scores, r.metrics, frame, labels, config, paths
        )
        for r in reports
        if r.skipped_reason is None and paths.model_variants(r.name)
    }
    best = next(r for r in reports if r.name == champion)
    logger.info(
        "champion: %s (%s %s)", champion, config.primary_metric,
        _fmt(best.metrics[config.primary_metric], 4),
    )

    with tracking.stage_run(STAGE.name, config, paths) as active:
        for r in reports:
            if r.skipped_reason is None:
                tracking.log_metrics(_tracked_metrics(r))
        for v in (v for vs in exported.values() for v in vs if v.skipped_reason is None):
            tracking.log_metrics(variants.tracked_metrics(v))
        mlflow.set_tags({"champion": champion, "skipped_models": ",".join(skipped) or "none",
                         **_variant_tags(exported)})
        with atomic_dir(paths.evaluation_dir) as tmp:
            write_report(tmp, reports, frame["label"].to_numpy(), labels, champion, config,
                         exported)
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
        write_json(paths.best_model, result.model_dump(mode="json"))
        mlflow.log_artifacts(str(paths.evaluation_dir), artifact_path="evaluation")
        mlflow.log_artifact(str(paths.best_model))
    return result


STAGE = Stage("model_evaluation", "evaluation", EvaluationConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
