"""The best model of a study: kept in a local folder by the worker that trained it, logged with
its content hash to the trial's MLflow run, and fetched from there by any other worker or stage.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.io import atomic_dir, read_json, restore_aside, write_json
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.tuning import workers
from sentiment_pipeline.urls import redact

logger = logging.getLogger(__name__)

BEST_MODEL, BEST_RECORD = "model", "trial.json"
# The trial's MLflow artifact folder holding its model, and the trial attribute (and MLflow tag)
# holding the model's content hash.
MODEL_ARTIFACT, HASH_ATTR = "model", "model_content_hash"

Hasher = Callable[[Path], str]


def best_dir(paths: ProjectPaths, prefix: str, study_name: str) -> Path:
    """Best-so-far model of a study; outside the DVC outs, which DVC deletes before a rerun."""
    return paths.root / ".optuna" / prefix / study_name / "best"


def best_lock(path: Path) -> Path:
    """The lock that workers of one project folder hold to change the best-so-far folder."""
    return path.with_name(f".{path.name}.lock")


def best_record(path: Path) -> dict[str, Any] | None:
    """{"number", "value"[, "content_hash"]} of the trial whose model is in `path`, or None."""
    try:
        record = read_json(path / BEST_RECORD)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not (path / BEST_MODEL).is_dir():
        return None
    return record


def reconcile_best(study: optuna.Study, path: Path) -> None:
    """Drop a best-so-far folder that no complete trial of the study accounts for.

    A run killed while swapping in a better trial's model left the previous one aside: it is
    put back first (the better trial, killed before it completed, does not count).
    """
    with workers.file_lock(best_lock(path)):
        if restore_aside(path):
            logger.warning("%s: put back the best model a killed run had moved aside", path)
        record = best_record(path)
        complete = {
            t.number: t.value
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        }
        if record is not None and complete.get(record.get("number")) == record.get("value"):
            return
        if path.exists():
            logger.warning("discarding %s: it belongs to no complete trial of %s", path,
                           study.study_name)
        shutil.rmtree(path, ignore_errors=True)


def pick_best(study: optuna.Study, local: dict[str, Any] | None) -> FrozenTrial:
    """The best complete trial whose model can be had: Optuna's best trial, else (equal scores
    are common on small data) the first equal one logged to MLflow, else the one kept locally.
    The same choice on every machine, wherever the model was trained."""
    best = study.best_trial
    equal = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value == best.value
    ]
    number = None if local is None else local.get("number")
    for trial in (best, *equal):
        if HASH_ATTR in trial.user_attrs:
            return trial
    return next((t for t in equal if t.number == number), best)


def log_model(run_id: str, folder: Path, digest: str | None) -> None:
    """Log the model folder as the MODEL_ARTIFACT of the trial's run, tagged with its hash."""
    from mlflow import MlflowClient

    client = MlflowClient()
    client.log_artifacts(run_id, str(folder), artifact_path=MODEL_ARTIFACT)
    if digest is not None:
        client.set_tag(run_id, HASH_ATTR, digest)


def local_model_matches(path: Path, trial: FrozenTrial, hasher: Hasher | None) -> bool:
    """Whether `path` holds the model of `trial`, hash checked when both sides have one."""
    record = best_record(path)
    if record is None or record.get("number") != trial.number:
        return False
    expected = trial.user_attrs.get(HASH_ATTR)
    if hasher is None or expected is None:
        return True
    found = hasher(path / BEST_MODEL)
    if found != expected:
        logger.warning(
            "%s holds trial %d's model with content hash %s, but the study recorded %s; "
            "fetching it from MLflow instead", path, trial.number, found, expected,
        )
        return False
    return True


def fetch_model(
    study_name: str, trial: FrozenTrial, path: Path, hasher: Hasher | None, uri: str
) -> None:
    """Materialise `trial`'s model from its MLflow run into the best-so-far folder `path`,
    checking its content hash; a PipelineError says what is missing and where it was looked for.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    run_id = trial.user_attrs.get("mlflow_run_id")
    expected = trial.user_attrs.get(HASH_ATTR)
    where = f"trial {trial.number} of study {study_name} (worker {trial.user_attrs.get('worker')})"
    if run_id is None or expected is None:
        raise PipelineError(
            f"the best model, of {where}, is neither in {path} nor logged to MLflow (its worker "
            "could not log it); rerun that worker's stage where its project folder is, or "
            f"delete the study (optuna delete-study --study-name {study_name}) and tune again"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=path.parent) as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=MODEL_ARTIFACT, dst_path=tmp, tracking_uri=uri
            )
        except (MlflowException, OSError) as exc:
            raise PipelineError(
                f"cannot fetch the best model, of {where}, from MLflow run {run_id} at "
                f"{redact(uri)} ({' '.join(str(exc).split())[:300]}); point "
                "MLFLOW_TRACKING_URI at the tracking server the workers share"
            ) from exc
        found = hasher(Path(local)) if hasher is not None else expected
        if found != expected:
            raise PipelineError(
                f"the model of {where} in MLflow run {run_id} has content hash {found}, but "
                f"the study recorded {expected}: the artifact was changed; delete the study "
                "and tune again"
            )
        with workers.file_lock(best_lock(path)), atomic_dir(path) as target:
            shutil.copytree(local, target / BEST_MODEL)
            write_json(target / BEST_RECORD, {
                "number": trial.number, "value": trial.value, "content_hash": expected,
                "from_mlflow_run": run_id,
            })
    logger.info("fetched the best model, of %s, from MLflow run %s (content hash %s)",
                where, run_id, expected)
