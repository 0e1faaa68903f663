"""Registering an evaluation's champion in the MLflow Model Registry and moving its aliases."""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from sentiment_pipeline.evaluation.best_model import BestModel, NoChampion
from sentiment_pipeline.io import write_json
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import (
    SentimentModel,
    content_hash,
    copy_model,
    read_manifest,
)
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry import pyfunc_code
from sentiment_pipeline.registry.cache import MODEL_DIR, hash_tag
from sentiment_pipeline.registry.resolve import existing_variants, read_champion
from sentiment_pipeline.registry.specs import CHAMPION

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

PREVIOUS = "previous"  # the alias the former champion moves to


@dataclass(frozen=True)
class Registration:
    """What one registration stage registers: whose champion, under which name, where it reports."""

    stage: str  # the stage (and its MLflow run) name
    model_name: str  # the registered model
    min_score: float
    best_model: Path  # the evaluation's champion record
    evaluation_stage: str  # the stage that writes it
    report: Path  # the registration report written
    params: BaseModel  # the stage's configuration section, logged as its run's params


class RegistrationResult(BaseModel):
    """reports/registration.json."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    registered: bool
    # the champion was in the registry already (same content hashes): no new version was made
    already_registered: bool = False
    model_name: str
    champion: str | None  # None: the evaluation had no champion (see reason)
    score: float | None
    min_score: float
    reason: str | None = None
    version: str | None = None
    alias: str | None = None
    # the version the `previous` alias names after this run (the former champion, if it moved)
    previous_version: str | None = None
    model_uri: str | None = None
    run_id: str | None = None
    # content_hash of the registered champion folder (also the model version's tag)
    content_hash: str | None = None
    # the ONNX exports registered with it, by serve.backend name -> project-relative folder
    variants: dict[str, str] = {}


def refusal_reason(best: BestModel, config: Registration) -> str | None:
    """Why the champion must not be registered, or None when it may."""
    if best.score is None:
        return (
            f"champion {best.name!r} has no {best.primary_metric} score; "
            f"register.min_score {config.min_score} cannot be checked"
        )
    if best.score < config.min_score:
        return (
            f"champion {best.name!r} {best.primary_metric} score {best.score:.4f} below "
            f"register.min_score {config.min_score}"
        )
    return None


def signature(model: SentimentModel) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = [ColSpec("string", column) for column in pyfunc_code.input_columns(model.manifest)]
    outputs = [ColSpec("string", "label")] + [ColSpec("double", f"p_{x}") for x in model.labels]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def input_example(model: SentimentModel) -> pd.DataFrame:
    example = {"text": ["the crew was great"], "aspect": ["crew"]}
    return pd.DataFrame({c: example[c] for c in pyfunc_code.input_columns(model.manifest)})


def pip_requirements(kind: str) -> list[str]:
    """Pinned requirements of the pyfunc; listed so MLflow does not infer them by loading it."""
    names = ["mlflow", "pandas", "numpy", "pydantic", "pydantic-settings", "scikit-learn", "skops"]
    if kind == "transformers":
        names += ["torch", "transformers", "safetensors"]
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def register(config: Registration, paths: ProjectPaths) -> RegistrationResult:
    """Register the champion of `config.best_model` as `config.model_name`@champion.

    Refused (min_score, no score, no champion): nothing registered, the report says why.
    """
    best = read_champion(config.best_model, config.evaluation_stage)
    if isinstance(best, NoChampion):
        reason = f"no champion: {best.reason}"
        logger.warning("not registering %s: %s", config.model_name, reason)
        result = RegistrationResult(registered=False, reason=reason, model_name=config.model_name,
                                    champion=None, score=None, min_score=config.min_score)
        write_json(config.report, result.model_dump(mode="json"))
        return result
    base = {
        "model_name": config.model_name,
        "champion": best.name,
        "score": best.score,
        "min_score": config.min_score,
    }
    reason = refusal_reason(best, config)
    if reason is not None:
        logger.warning("not registering: %s", reason)
        result = RegistrationResult(registered=False, reason=reason, **base)
        write_json(config.report, result.model_dump(mode="json"))
        return result

    model_dir: Path = paths.resolve(best.path)
    model = load_model(model_dir, require_real=True, project=paths)
    staging = Path(tempfile.mkdtemp(prefix=".register-", dir=paths.root))
    try:
        champion = with_test_metrics(model_dir, best, staging / model_dir.name)
        variants = existing_variants(best.variants, paths)
        folders = {MODEL_DIR: champion, **{key: v.path for key, v in variants.items()}}
        return _register(config, paths, best, base, model, folders)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def with_test_metrics(model_dir: Path, best: BestModel, target: Path) -> Path:
    """A copy of the champion whose manifest also holds its test metrics (`test_<name>`).

    That copy is what the registry keeps, so a served model can tell how it scored (GET /info).
    Metrics are left out of content_hash: the copy hashes as the trained folder does.
    """
    manifest = read_manifest(model_dir)
    scores = {
        f"test_{name}": value
        for name, value in best.metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    copy_model(model_dir, target, manifest.model_copy(update={"metrics": {**manifest.metrics,
                                                                          **scores}}))
    return target


def _register(
    config: Registration,
    paths: ProjectPaths,
    best: BestModel,
    base: dict[str, Any],
    model: SentimentModel,
    folders: dict[str, Path],
) -> RegistrationResult:
    import mlflow
    from mlflow.tracking import MlflowClient

    from sentiment_pipeline import tracking

    hashes = {key: content_hash(folder) for key, folder in folders.items()}
    tracking.configure(paths)
    client = MlflowClient()
    stage_bounds = tracking.http_bounds(tracking.STAGE_RETRIES, tracking.STAGE_TIMEOUT_S)
    with tracking.HTTP_BOUNDS.applied(stage_bounds, override=False):  # as inside stage_run
        existing = registered_version(client, config.model_name, hashes)
        if existing is not None:
            return _reuse(config, paths, best, base, client, existing, hashes)
    with tracking.stage_run(config.stage, config.params, paths) as active:
        mlflow.set_tags({"champion": best.name, "evaluation_run_id": best.evaluation_run_id or ""})
        tracking.log_metrics({f"champion.{best.primary_metric}": best.score})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=pyfunc_code.__file__,  # models-from-code: no python_model.pkl
            artifacts={key: str(folder) for key, folder in folders.items()},
            signature=signature(model),
            input_example=input_example(model),
            pip_requirements=pip_requirements(best.kind),
        )
        version = mlflow.register_model(
            info.model_uri,
            config.model_name,
            tags={
                "champion": best.name,
                best.primary_metric: str(best.score),
                **{hash_tag(key): value for key, value in hashes.items()},
            },
        )
        _, previous = make_champion(client, config.model_name, str(version.version))
        run_id = active.info.run_id
    result = RegistrationResult(
        registered=True,
        version=str(version.version),
        alias=CHAMPION,
        previous_version=previous,
        model_uri=f"models:/{config.model_name}@{CHAMPION}",
        run_id=run_id,
        content_hash=hashes[MODEL_DIR],
        variants={key: best.variants[key] for key in hashes if key != MODEL_DIR},
        **base,
    )
    write_json(config.report, result.model_dump(mode="json"))
    logger.info("registered %s version %s as %r", config.model_name, version.version, CHAMPION)
    return result


def _reuse(
    config: Registration,
    paths: ProjectPaths,
    best: BestModel,
    base: dict[str, Any],
    client: MlflowClient,
    existing: ModelVersion,
    hashes: dict[str, str],
) -> RegistrationResult:
    """The champion is registered already (as `existing`): point the alias at it, log nothing."""
    version = str(existing.version)
    before, previous = make_champion(client, config.model_name, version)
    if before == version:
        logger.info(
            "%s version %s already holds this champion (content hash %s) and is %r; "
            "nothing new was registered",
            config.model_name, version, hashes[MODEL_DIR], CHAMPION,
        )
    else:
        logger.info(
            "%s version %s already holds this champion (content hash %s); nothing new was "
            "registered, %r moved to it from version %s",
            config.model_name, version, hashes[MODEL_DIR], CHAMPION, before,
        )
    recorded = (existing.tags or {}).get(best.primary_metric)
    if recorded is not None and recorded != str(best.score):
        logger.warning(
            "%s version %s was registered with %s %s, this evaluation scores it %s; the "
            "registry's copy keeps the test metrics of its registration",
            config.model_name, version, best.primary_metric, recorded, best.score,
        )
    result = RegistrationResult(
        registered=True,
        already_registered=True,
        version=version,
        alias=CHAMPION,
        previous_version=previous,
        model_uri=f"models:/{config.model_name}@{CHAMPION}",
        run_id=existing.run_id,
        content_hash=hashes[MODEL_DIR],
        variants={key: best.variants[key] for key in hashes if key != MODEL_DIR},
        **base,
    )
    write_json(config.report, result.model_dump(mode="json"))
    return result


def registered_version(
    client: MlflowClient, model_name: str, hashes: dict[str, str]
) -> ModelVersion | None:
    """The newest ready version of `model_name` holding exactly these folders, or None.

    Versions are matched on their content-hash tags (hash_tag(key) -> content_hash), all of
    them: a version registered with an ONNX variant is not one without it. The store is asked
    for the model folder's hash only (no quoting of the model name needed); name and the
    other tags are compared here.
    """
    wanted = {hash_tag(key): value for key, value in hashes.items()}
    query = f"tags.{hash_tag(MODEL_DIR)} = '{hashes[MODEL_DIR]}'"
    matches = []
    token = None
    while True:
        page = client.search_model_versions(query, page_token=token)
        matches += [
            found
            for found in page
            if found.name == model_name
            and str(found.status) == "READY"
            and hash_tags(found.tags or {}) == wanted
        ]
        token = page.token
        if not token:
            break
    return max(matches, key=lambda found: int(found.version), default=None)


def hash_tags(tags: dict[str, str]) -> dict[str, str]:
    """The content-hash tags among a model version's tags (content_hash, content_hash.<key>)."""
    base = hash_tag(MODEL_DIR)
    return {
        key: value for key, value in tags.items() if key == base or key.startswith(f"{base}.")
    }


def alias_target(client: MlflowClient, model_name: str, alias: str) -> str | None:
    """The version `alias` names, or None (no such alias or model)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


def make_champion(
    client: MlflowClient, model_name: str, version: str
) -> tuple[str | None, str | None]:
    """Point `champion` at `version`; a former champion other than it moves to `previous`.

    Returns the versions `champion` named before and `previous` names after (None: none).
    """
    former = alias_target(client, model_name, CHAMPION)
    if former == version:
        return former, alias_target(client, model_name, PREVIOUS)
    if former is not None:
        client.set_registered_model_alias(model_name, PREVIOUS, former)
    client.set_registered_model_alias(model_name, CHAMPION, version)
    if former is not None:
        return former, former
    return former, alias_target(client, model_name, PREVIOUS)
