"""Logging to MLflow runs: child runs nested under a stage run, flattened params, metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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


def start_child_run(
    run_name: str, tags: Mapping[str, str] | None = None, parent: Any = None
) -> str:
    """A run nested under `parent` (a Run), by default the active (stage) run, left inactive
    (logged to by id); its id. A thread other than the stage run's must pass the parent:
    MLflow's active run is per thread.

    It inherits the parent's stage, params_hash and git tags.
    """
    import mlflow
    from mlflow.tracking.context import registry

    parent = parent if parent is not None else mlflow.active_run()
    if parent is None:
        raise RuntimeError("start_child_run needs an active stage run (stage_run)")
    all_tags = dict(tags or {})
    for key in ("stage", "params_hash", "git_commit", "mlflow.source.git.commit"):
        if key in parent.data.tags:
            all_tags.setdefault(key, parent.data.tags[key])
    all_tags["mlflow.parentRunId"] = parent.info.run_id
    run = mlflow.MlflowClient().create_run(
        parent.info.experiment_id, run_name=run_name, tags=registry.resolve_tags(all_tags)
    )
    return run.info.run_id


def log_params(params: Mapping[str, Any], run_id: str) -> None:
    """Log `params` (flattened, as strings) to the run `run_id`."""
    from mlflow import MlflowClient
    from mlflow.entities import Param

    flat = [Param(key, str(value)) for key, value in flatten(params).items()]
    if flat:
        MlflowClient().log_batch(run_id, params=flat)


def log_metrics(
    metrics: Mapping[str, Any], step: int | None = None, run_id: str | None = None
) -> None:
    """Log the numeric entries of `metrics` (None and non-numbers are skipped) to the active
    run, or to `run_id`."""
    import mlflow

    numeric = {
        k: float(v)
        for k, v in flatten(metrics).items()
        if isinstance(v, int | float) and not isinstance(v, bool) and v == v
    }
    if numeric:
        mlflow.log_metrics(numeric, step=step, run_id=run_id)
