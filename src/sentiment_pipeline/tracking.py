"""MLflow set-up: tracking URI, one experiment per stage, parent runs with nested child runs."""

from __future__ import annotations

import contextlib
import logging
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from sentiment_pipeline.config.manager import params_hash
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.settings import Settings, get_settings

if TYPE_CHECKING:
    import mlflow

logger = logging.getLogger(__name__)

EXPERIMENT_PREFIX = "sentiment-pipeline"


def tracking_uri(paths: ProjectPaths, settings: Settings | None = None) -> str:
    """MLFLOW_TRACKING_URI when set, else a SQLite store in the project folder."""
    settings = settings or get_settings()
    return settings.mlflow_tracking_uri or f"sqlite:///{paths.mlflow_db}"


def configure(paths: ProjectPaths, settings: Settings | None = None) -> str:
    """Point MLflow at the configured store and return its URI."""
    import mlflow

    uri = tracking_uri(paths, settings)
    mlflow.set_tracking_uri(uri)
    # The registry lives with the tracking store (a local database or the same server). Set it
    # every time: MLflow keeps the last registry URI, and exports it as MLFLOW_REGISTRY_URI.
    mlflow.set_registry_uri(uri)
    return uri


def experiment_name(stage: str) -> str:
    return f"{EXPERIMENT_PREFIX}/{stage}"


def use_experiment(stage: str, paths: ProjectPaths, settings: Settings | None = None) -> str:
    """Create (if needed) and activate the stage's experiment; return its id."""
    import mlflow

    uri = configure(paths, settings)
    name = experiment_name(stage)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        location = None
        if uri.startswith("sqlite:"):
            location = (paths.mlflow_artifacts / stage).as_uri()
        experiment_id = mlflow.create_experiment(name, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def git_commit(root: Path) -> str | None:
    """The commit of the project checkout, or None outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists and tuples become strings."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = str(list(value))
        else:
            flat[name] = value
    return flat


def run_tags(stage: str, config: BaseModel, paths: ProjectPaths) -> dict[str, str]:
    tags = {"stage": stage, "params_hash": params_hash(config)}
    commit = git_commit(paths.root)
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["git_commit"] = commit
    return tags


@contextlib.contextmanager
def stage_run(
    stage: str,
    config: BaseModel,
    paths: ProjectPaths,
    run_name: str | None = None,
    settings: Settings | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """The parent run of one stage execution, tagged and with the stage config as params."""
    import mlflow

    use_experiment(stage, paths, settings)
    with mlflow.start_run(run_name=run_name or stage, tags=run_tags(stage, config, paths)) as run:
        mlflow.log_params(flatten(config.model_dump(mode="json")))
        yield run


@contextlib.contextmanager
def child_run(
    run_name: str, params: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None
) -> Iterator[mlflow.ActiveRun]:
    """A nested run under the active parent (one per Optuna trial)."""
    import mlflow

    parent = mlflow.active_run()
    all_tags = dict(tags or {})
    if parent is not None:
        for key in ("stage", "params_hash", "git_commit", "mlflow.source.git.commit"):
            if key in parent.data.tags:
                all_tags.setdefault(key, parent.data.tags[key])
    with mlflow.start_run(run_name=run_name, nested=True, tags=all_tags) as run:
        if params:
            mlflow.log_params(flatten(params))
        yield run


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Log the numeric entries of `metrics` (None and non-numbers are skipped)."""
    import mlflow

    numeric = {
        k: float(v)
        for k, v in flatten(metrics).items()
        if isinstance(v, int | float) and not isinstance(v, bool) and v == v
    }
    if numeric:
        mlflow.log_metrics(numeric, step=step)
