"""ONNX exports as variants of their source model: scored on the test split, checked against it."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sentiment_pipeline.config.evaluation import EvaluationConfig
from sentiment_pipeline.evaluation.metrics import (
    LabelledSplit,
    classification_metrics,
    latency_ms_per_1000,
)
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    SentimentModel,
    content_hash,
    softmax,
)
from sentiment_pipeline.paths import ProjectPaths

logger = logging.getLogger(__name__)

# serve.backend name -> how a variant is named beneath its source in the report.
TITLES = {"onnx": "onnx fp32", "onnx-int8": "onnx int8"}


@dataclass
class VariantReport:
    """One export of a source model: skipped, or scored with the outcome of its check."""

    backend: str
    source: str
    path: Path
    precision: str | None = None
    skipped_reason: str | None = None
    failure: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, float | None] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{self.source} · {TITLES.get(self.backend, self.backend)}"

    @property
    def passed(self) -> bool:
        return self.skipped_reason is None and self.failure is None

    @property
    def status(self) -> str:
        if self.skipped_reason is not None:
            return "skipped"
        return "passed" if self.failure is None else "failed"


def scores_of(model: SentimentModel, texts: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(raw scores, probabilities) of a model on `texts` (or pairs), from one pass over them."""
    if model.manifest.kind in ("transformers", "onnx"):
        raw = model.raw_scores(texts)
        return raw, softmax(raw)
    proba = model.predict_proba(texts)
    with np.errstate(divide="ignore"):
        return np.log(proba), proba


def parity(reference: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    """Largest absolute logit difference and the share of equal argmax, against the source."""
    if len(reference) == 0:
        return {"max_abs_logit_diff": None, "argmax_agreement": None}
    return {
        "max_abs_logit_diff": float(np.abs(np.asarray(scores) - reference).max()),
        "argmax_agreement": float(np.mean(scores.argmax(axis=1) == reference.argmax(axis=1))),
    }


def check(
    backend: str, figures: dict[str, float | None], config: EvaluationConfig
) -> str | None:
    """Why a variant fails its check (None: it passes).

    fp32 (onnx): the logits match the source's (evaluation.onnx_max_logit_diff and
    onnx_min_argmax_agreement); int8: the primary metric drops by at most int8_max_metric_drop.
    """
    problems = []
    if backend == "onnx":
        diff, agreement = figures["max_abs_logit_diff"], figures["argmax_agreement"]
        if diff is not None and diff > config.onnx_max_logit_diff:
            problems.append(
                f"max abs logit diff {diff:.2e} > evaluation.onnx_max_logit_diff "
                f"{config.onnx_max_logit_diff:g}"
            )
        if agreement is not None and agreement < config.onnx_min_argmax_agreement:
            problems.append(
                f"argmax agreement {agreement:.4f} < evaluation.onnx_min_argmax_agreement "
                f"{config.onnx_min_argmax_agreement:g}"
            )
    else:
        drop = figures["metric_drop"]
        if drop is None:
            problems.append(f"{config.primary_metric} is undefined on the test split")
        elif drop > config.int8_max_metric_drop:
            problems.append(
                f"{config.primary_metric} drop {drop:.4f} > evaluation.int8_max_metric_drop "
                f"{config.int8_max_metric_drop:g}"
            )
    return "; ".join(problems) or None


def _metric_drop(source: dict[str, Any], variant: dict[str, Any], metric: str) -> float | None:
    before, after = source.get(metric), variant.get(metric)
    return None if before is None or after is None else float(before - after)


def _short(digest: str | None) -> str:
    return "an unknown model" if digest is None else digest[: len("sha256:") + 12]


def _load(
    report: VariantReport,
    labels: Sequence[str],
    paths: ProjectPaths,
    source_hash: str,
    export_stage: str,
) -> SentimentModel | None:
    """The variant's model, or None with report.skipped_reason / failure set."""
    try:
        model = load_model(report.path, expected_labels=labels, project=paths)
    except ArtifactError as exc:
        report.failure = f"cannot be loaded: {exc}"
        return None
    manifest = model.manifest
    report.precision = manifest.precision
    if manifest.kind == "placeholder":
        report.skipped_reason = manifest.reason or "placeholder"
        return None
    if manifest.source_hash != source_hash:
        report.failure = (
            f"stale: exported from {_short(manifest.source_hash)}, but {report.source} is "
            f"now {_short(source_hash)}; run the {export_stage} stage again"
        )
        return None
    return model


def evaluate_variants(
    source: str,
    source_dir: Path,
    variant_dirs: Mapping[str, Path],
    test: LabelledSplit,
    source_scores: np.ndarray,
    source_metrics: dict[str, Any],
    config: EvaluationConfig,
    paths: ProjectPaths,
    export_stage: str,
) -> list[VariantReport]:
    """Score every export of `source` (`variant_dirs`, by backend) that exists on `test`, check it.

    A variant that is not there is left out; a placeholder is skipped; one that cannot be
    loaded, was exported from another model (run `export_stage` again), or fails its check is
    reported as failed.
    """
    reports = []
    source_hash = content_hash(source_dir)
    for backend, directory in variant_dirs.items():
        if not directory.exists():
            continue
        report = VariantReport(backend, source, directory)
        reports.append(report)
        model = _load(report, test.labels, paths, source_hash, export_stage)
        if model is None:
            continue
        scores, proba = scores_of(model, test.inputs)
        report.metrics = classification_metrics(test.y_true, proba, model.labels)
        report.metrics["latency_ms_per_1000"] = latency_ms_per_1000(
            model.predict_proba, test.inputs, config.latency_batch_size
        )
        report.parity = {
            **parity(source_scores, scores),
            "metric_drop": _metric_drop(source_metrics, report.metrics, config.primary_metric),
        }
        report.failure = check(backend, report.parity, config)
    for report in reports:
        if report.failure is not None:
            logger.warning("%s failed its check and is not served: %s", report.title,
                           report.failure)
    return reports


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def parity_markdown(variants: Sequence[VariantReport], primary_metric: str) -> list[str]:
    """The section of comparison.md with each variant's figures against its source."""
    if not variants:
        return []
    lines = [
        "", "## Exported variants (checked against their source on the test split)", "",
        f"| variant | max abs logit diff | argmax agreement | {primary_metric} drop | check |",
        "|---|---|---|---|---|",
    ]
    for v in variants:
        if v.skipped_reason is not None:
            lines.append(f"| {v.title} | | | | skipped: {v.skipped_reason} |")
            continue
        outcome = "passed" if v.failure is None else f"failed: {v.failure}"
        lines.append(
            f"| {v.title} | {_fmt(v.parity.get('max_abs_logit_diff'), '.2e')} "
            f"| {_fmt(v.parity.get('argmax_agreement'), '.4f')} "
            f"| {_fmt(v.parity.get('metric_drop'), '+.4f')} | {outcome} |"
        )
    return lines


def metrics_payload(report: VariantReport) -> dict[str, Any]:
    """{source}_{backend}_test_metrics.json."""
    return {
        "model": report.source,
        "variant": report.backend,
        "kind": "onnx",
        "precision": report.precision,
        "status": report.status,
        "check": report.failure or report.skipped_reason or "passed",
        **report.metrics,
        "parity": report.parity,
    }


def tracked_metrics(report: VariantReport) -> dict[str, Any]:
    """MLflow metrics `<source>.<backend>.<name>`: the test metrics and the parity figures."""
    metrics = {k: v for k, v in report.metrics.items() if k != "confusion_matrix"}
    return {f"{report.source}.{report.backend}": {**metrics, **report.parity,
                                                    "check_passed": int(report.passed)}}
