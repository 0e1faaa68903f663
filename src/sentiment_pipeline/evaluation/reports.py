"""What an evaluation writes: per-model metrics files, figures and the comparison table."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sentiment_pipeline.evaluation import plots, variants
from sentiment_pipeline.evaluation.variants import VariantReport
from sentiment_pipeline.io import to_jsonable

TIE_BREAK = ("macro_f1", "accuracy")
MAJORITY = "majority"  # the reference row: always the train split's most frequent class


@dataclass
class ModelReport:
    """What the evaluation learnt about one model."""

    name: str
    kind: str
    path: Path | None
    mlflow_run_id: str | None = None
    skipped_reason: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    proba: np.ndarray | None = None
    scores: np.ndarray | None = None
    behavioural: dict[str, Any] | None = None


def fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _variant_row(v: VariantReport) -> str:
    if v.skipped_reason is not None:
        return f"| {v.title} | skipped | | | | | | | |"
    if not v.metrics:
        return f"| {v.title} | variant, failed check | | | | | | | |"
    m = v.metrics
    status = "variant" if v.passed else "variant, failed check"
    return (
        f"| {v.title} | {status} | {fmt(m['macro_f1'])} | {fmt(m['weighted_f1'])} "
        f"| {fmt(m['accuracy'])} | {fmt(m['roc_auc_ovr'])} | {fmt(m['log_loss'])} "
        f"| {fmt(m['latency_ms_per_1000'], 1)} | |"
    )


def _status(report: ModelReport, champion: str | None) -> str:
    if report.name == champion:
        return "champion"
    return "reference" if report.kind == MAJORITY else "evaluated"


def comparison_markdown(
    reports: Sequence[ModelReport],
    champion: str | None,
    primary_metric: str,
    exported: Mapping[str, Sequence[VariantReport]] | None = None,
) -> str:
    """The comparison table; each model's exported variants are rows beneath it."""
    exported = exported or {}
    chosen = (
        f"Champion: **{champion}** (highest {primary_metric}; ties broken by "
        f"{', '.join(m for m in TIE_BREAK if m != primary_metric)}, then name)."
        if champion is not None else "No champion: no model was evaluated."
    )
    lines = [
        "# Model comparison (test set)",
        "",
        chosen,
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
        rate = r.behavioural["pass_rate"] if r.behavioural else None
        lines.append(
            f"| {r.name} | {_status(r, champion)} | {fmt(m['macro_f1'])} "
            f"| {fmt(m['weighted_f1'])} | {fmt(m['accuracy'])} | {fmt(m['roc_auc_ovr'])} "
            f"| {fmt(m['log_loss'])} | {fmt(m['latency_ms_per_1000'], 1)} | {fmt(rate)} |"
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
        test_types = list(evaluated[0].behavioural["tests"])
        lines += ["", "## Behavioural tests (pass rate)", "",
                  "| model | " + " | ".join(test_types) + " |",
                  "|---|" + "---|" * len(test_types)]
        for r in evaluated:
            rates = [fmt(r.behavioural["tests"][t]["pass_rate"]) for t in test_types]
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


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(to_jsonable(payload), indent=2) + "\n")


def write_report(
    directory: Path,
    reports: Sequence[ModelReport],
    y_true: np.ndarray,
    labels: Sequence[str],
    champion: str,
    primary_metric: str,
    behavioural_tests: bool,
    exported: Mapping[str, Sequence[VariantReport]] | None = None,
) -> None:
    exported = exported or {}
    evaluated = [r for r in reports if r.skipped_reason is None]
    for r in evaluated:
        _write_json(directory / f"{r.name}_test_metrics.json", model_metrics_payload(r))
        plots.save_confusion_matrix(
            r.metrics["confusion_matrix"], labels, f"{r.name} (test)",
            directory / f"{r.name}_confusion_matrix.png",
        )
    probas = {r.name: r.proba for r in evaluated}
    plots.save_roc_curves(y_true, probas, labels, directory / "roc_curves.png")
    plots.save_pr_curves(y_true, probas, labels, directory / "pr_curves.png")
    behaviour = {
        "enabled": behavioural_tests,
        "models": {r.name: r.behavioural for r in evaluated if r.behavioural is not None},
        "skipped": {r.name: r.skipped_reason for r in reports if r.skipped_reason is not None},
    }
    _write_json(directory / "behavioural.json", behaviour)
    (directory / "comparison.md").write_text(
        comparison_markdown(reports, champion, primary_metric, exported)
    )
    for v in (v for vs in exported.values() for v in vs):
        _write_json(directory / f"{v.source}_{v.backend}_test_metrics.json",
                    variants.metrics_payload(v))


def write_skipped(directory: Path, reason: str, skipped: Mapping[str, str]) -> None:
    """The report of an evaluation with nothing to evaluate: each model's reason, and why."""
    payload = {"status": "skipped", "reason": reason, "skipped": dict(skipped)}
    _write_json(directory / "evaluation.json", payload)
    lines = ["# Model comparison (test set)", "", f"Skipped: {reason}.", ""]
    lines += [f"- {name}: {why}" for name, why in skipped.items()]
    (directory / "comparison.md").write_text("\n".join(lines) + "\n")
