"""What `run` says once the pipeline is done: each model's test score, the champion, where it
is, and the command to serve it."""

from __future__ import annotations

from typing import Any

from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.evaluation.best_model import BestModel
from sentiment_pipeline.io import read_json
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.service_settings import get_service_settings


def closing_summary(paths: ProjectPaths) -> str:
    """The summary of a finished run, from the files its stages wrote (reports/evaluation,
    models/evaluation/best_model.json, reports/registration.json)."""
    from sentiment_pipeline.registry.resolve import read_best_model  # scikit-learn under it

    try:
        best = read_best_model(paths)
    except PipelineError as exc:
        return f"No champion to report: {exc}"
    lines = model_lines(paths, best)
    lines.append(
        f"Champion: {best.name} ({best.primary_metric} {score(best.score)}), in {best.path}"
    )
    registration = read_registration(paths, best)
    if registration is None:
        where = paths.registration.relative_to(paths.root)
        lines.append(f"Not registered: {where} does not name {best.name}")
    elif registration.get("registered"):
        again = ", registered before" if registration.get("already_registered") else ""
        lines.append(
            f"Registered as {registration['model_uri']} "
            f"(version {registration['version']}{again})"
        )
    else:
        lines.append(f"Not registered: {registration.get('reason')}")
    lines.append(aspect_line(paths))
    if registration is not None and registration.get("registered"):
        settings = get_service_settings()
        lines.append(
            "Next: sentiment-pipeline serve   "
            f"(the champion, on http://{settings.host}:{settings.port})"
        )
    else:
        lines.append(f"Next: sentiment-pipeline serve --model {best.path}")
    return "\n".join(lines)


def aspect_line(paths: ProjectPaths) -> str:
    """The aspect model's line: its champion and registration, or why there is none."""
    try:
        best = read_json(paths.aspect_best_model)
        registration = read_json(paths.aspect_registration)
    except (OSError, ValueError):
        return "Aspect model: not evaluated (run the aspect stages: dvc repro register_aspects)"
    if not isinstance(best, dict) or best.get("status") == "skipped" or "name" not in best:
        reason = best.get("reason") if isinstance(best, dict) else None
        return f"Aspect model: none ({reason or 'no champion'})"
    line = (f"Aspect model: {best['name']} ({best.get('primary_metric')} "
            f"{score(best.get('score'))}), in {best.get('path')}")
    if isinstance(registration, dict) and registration.get("registered"):
        return f"{line}, registered as {registration.get('model_uri')}"
    reason = registration.get("reason") if isinstance(registration, dict) else None
    return f"{line}, not registered: {reason}"


def model_lines(paths: ProjectPaths, best: BestModel) -> list[str]:
    """A line per model: its test score (the champion marked), or why it was skipped."""
    names = [*best.evaluated, *best.skipped]
    width = max(len(name) for name in names)
    lines = [f"Models, scored on the test split ({best.primary_metric}):"]
    for name in best.evaluated:
        metrics = read_metrics(paths, name)
        value = metrics.get(best.primary_metric) if metrics is not None else None
        mark = "  champion" if name == best.name else ""
        lines.append(f"  {name:<{width}}  {score(value)}{mark}")
    for name, reason in best.skipped.items():
        lines.append(f"  {name:<{width}}  skipped: {reason}")
    return lines


def read_metrics(paths: ProjectPaths, name: str) -> dict[str, Any] | None:
    """reports/evaluation/<name>_test_metrics.json, or None when it cannot be read."""
    try:
        return read_json(paths.evaluation_dir / f"{name}_test_metrics.json")
    except (OSError, ValueError):
        return None


def read_registration(paths: ProjectPaths, best: BestModel) -> dict[str, Any] | None:
    """reports/registration.json when it is about this champion, else None."""
    try:
        registration = read_json(paths.registration)
    except (OSError, ValueError):
        return None
    if isinstance(registration, dict) and registration.get("champion") == best.name:
        return registration
    return None


def score(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "no score"
