"""An MLflow experiment per stage and the tagged parent run of each stage execution."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from sentiment_pipeline.config.loading import params_hash
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.processes import alive
from sentiment_pipeline.settings import Settings
from sentiment_pipeline.tracking.guard import STAGE_SCOPE, LoggingGuard
from sentiment_pipeline.tracking.runs import flatten
from sentiment_pipeline.tracking.store import (
    HTTP_BOUNDS,
    TrackingUnavailable,
    cause,
    check_uri,
    http_bounds,
    probe,
    tracking_uri,
    unreachable,
)
from sentiment_pipeline.urls import redact

if TYPE_CHECKING:
    import mlflow

logger = logging.getLogger(__name__)

EXPERIMENT_PREFIX = "sentiment-pipeline"
# MLflow's REST client during a stage: a refused connection fails in seconds and a server that
# does not answer in about a minute, instead of 7 retries with backoff (about 4 minutes per
# call). Settings the user made in the environment are kept.
STAGE_RETRIES, STAGE_TIMEOUT_S = 2, 20.0
HOST_TAG, PID_TAG = "sentiment_pipeline.host", "sentiment_pipeline.pid"


def configure(paths: ProjectPaths, settings: Settings | None = None) -> str:
    """Point MLflow at the configured store, once it is known to answer; return its URI.

    An unknown scheme is a ConfigError; a server that does not answer within PROBE_TIMEOUT_S
    is TrackingUnavailable.
    """
    import mlflow

    uri = tracking_uri(paths, settings)
    check_uri(uri)
    probe(uri)
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
        try:
            experiment_id = mlflow.create_experiment(name, artifact_location=location)
        except mlflow.exceptions.MlflowException as exc:
            # Another worker of a shared study created it first.
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment_id = mlflow.get_experiment_by_name(name).experiment_id
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


def run_tags(stage: str, config: BaseModel, paths: ProjectPaths) -> dict[str, str]:
    tags = {"stage": stage, "params_hash": params_hash(config),
            HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    commit = git_commit(paths.root)
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["git_commit"] = commit
    return tags


def close_dead_runs(experiment_id: str) -> int:
    """Mark KILLED the runs of this experiment still RUNNING whose process, on this machine,
    is gone (a stage killed with -9, a machine that lost power), with their RUNNING children.

    Only runs started here are looked at (host tag): other machines' workers of a shared study
    are left alone, and so is a run whose process id is alive again (it may be reused; left
    RUNNING is the safe side). Returns how many runs were closed.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    host = socket.gethostname().replace("'", "")
    running = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
    )
    closed = 0
    for run in running:
        pid = run.data.tags.get(PID_TAG, "")
        if not pid.isdigit() or alive(int(pid)):
            continue
        children = client.search_runs(
            [experiment_id],
            filter_string=f"attributes.status = 'RUNNING' and "
            f"tags.`mlflow.parentRunId` = '{run.info.run_id}'",
        )
        for orphan in [*children, run]:
            client.set_terminated(orphan.info.run_id, status="KILLED")
            closed += 1
    if closed:
        logger.warning(
            "marked %d MLflow run(s) KILLED: they were left RUNNING by a process of this machine "
            "that is gone (killed or crashed)", closed,
        )
    return closed


@contextlib.contextmanager
def stage_run(
    stage: str,
    config: BaseModel,
    paths: ProjectPaths,
    run_name: str | None = None,
    settings: Settings | None = None,
    guard: LoggingGuard | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """The parent run of one stage execution, tagged and with the stage config as params.

    The store is checked and probed first (a ConfigError or TrackingUnavailable within
    PROBE_TIMEOUT_S), and MLflow's retries are bounded for the whole stage. A store that stops
    answering later ends the stage with TrackingUnavailable, unless the stage passes a `guard`
    that records what was not logged and goes on (see LoggingGuard).
    """
    import mlflow

    uri = tracking_uri(paths, settings)
    own = guard is None
    guard = guard or LoggingGuard(uri)
    with HTTP_BOUNDS.applied(http_bounds(STAGE_RETRIES, STAGE_TIMEOUT_S), override=False):
        try:
            close_dead_runs(use_experiment(stage, paths, settings))
            run = mlflow.start_run(run_name=run_name or stage, tags=run_tags(stage, config, paths))
        except Exception as exc:
            if isinstance(exc, PipelineError) or not unreachable(exc):
                raise
            raise TrackingUnavailable(
                f"MLflow at {redact(uri)} failed at the start of the {stage} stage "
                f"({cause(exc)}); check that the server is up, or unset MLFLOW_TRACKING_URI"
            ) from exc
        status = "FAILED"
        try:
            mlflow.log_params(flatten(config.model_dump(mode="json")))
            yield run
            status = "FINISHED"
        except Exception as exc:
            if isinstance(exc, PipelineError) or not unreachable(exc):
                raise
            guard.went_down(exc)
            raise TrackingUnavailable(
                f"MLflow at {redact(uri)} stopped answering during the {stage} stage "
                f"({guard.cause}); its run {run.info.run_id} is incomplete; rerun the stage "
                "once the server answers"
            ) from exc
        finally:
            guard.end_active_run(STAGE_SCOPE, status)
        if own:  # the stage went through; only ending its run failed
            guard.check(f"the {stage} stage finished")

