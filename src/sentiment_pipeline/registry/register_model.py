"""Register the evaluation's champion in the MLflow Model Registry and move its aliases."""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from sentiment_pipeline import runner
from sentiment_pipeline.config.entities import PipelineConfig, RegisterConfig
from sentiment_pipeline.evaluation.best_model import BestModel
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
from sentiment_pipeline.registry.resolve import (
    CHAMPION,
    MODEL_DIR,
    existing_variants,
    hash_tag,
    read_best_model,
)

logger = logging.getLogger(__name__)

STAGE = "register_model"
PREVIOUS = "previous"  # the alias the former champion moves to


class RegistrationResult(BaseModel):
    """reports/registration.json."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    registered: bool
    model_name: str
    champion: str
    score: float | None
    min_score: float
    reason: str | None = None
    version: str | None = None
    alias: str | None = None
    previous_version: str | None = None
    model_uri: str | None = None
    run_id: str | None = None
    # content_hash of the registered champion folder (also the model version's tag)
    content_hash: str | None = None
    # the ONNX exports registered with it, by serve.backend name -> project-relative folder
    variants: dict[str, str] = {}


def refusal_reason(best: BestModel, config: RegisterConfig) -> str | None:
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


def signature(labels: list[str]) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    outputs = [ColSpec("string", "label")] + [ColSpec("double", f"p_{x}") for x in labels]
    return ModelSignature(inputs=Schema([ColSpec("string", "text")]), outputs=Schema(outputs))


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


def run(config: RegisterConfig, paths: ProjectPaths) -> RegistrationResult:
    best = read_best_model(paths)
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
        write_json(paths.registration, result.model_dump(mode="json"))
        return result

    model_dir: Path = paths.resolve(best.path)
    model = load_model(model_dir, require_real=True, project=paths)
    staging = Path(tempfile.mkdtemp(prefix=".register-", dir=paths.root))
    try:
        champion = with_test_metrics(model_dir, best, staging / model_dir.name)
        folders = {MODEL_DIR: champion, **existing_variants(best.variants, paths)}
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
    config: RegisterConfig,
    paths: ProjectPaths,
    best: BestModel,
    base: dict[str, Any],
    model: SentimentModel,
    folders: dict[str, Path],
) -> RegistrationResult:
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from sentiment_pipeline import tracking

    hashes = {key: content_hash(folder) for key, folder in folders.items()}
    with tracking.stage_run(STAGE, config, paths) as active:
        mlflow.set_tags({"champion": best.name, "evaluation_run_id": best.evaluation_run_id or ""})
        tracking.log_metrics({f"champion.{best.primary_metric}": best.score})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=pyfunc_code.__file__,  # models-from-code: no python_model.pkl
            artifacts={key: str(folder) for key, folder in folders.items()},
            signature=signature(model.labels),
            input_example=pd.DataFrame({"text": ["the crew was great"]}),
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
        client = MlflowClient()
        try:
            previous = client.get_model_version_by_alias(config.model_name, CHAMPION).version
        except MlflowException:
            previous = None
        if previous is not None and str(previous) != str(version.version):
            client.set_registered_model_alias(config.model_name, PREVIOUS, previous)
        client.set_registered_model_alias(config.model_name, CHAMPION, version.version)
        run_id = active.info.run_id
    result = RegistrationResult(
        registered=True,
        version=str(version.version),
        alias=CHAMPION,
        previous_version=str(previous) if previous is not None else None,
        model_uri=f"models:/{config.model_name}@{CHAMPION}",
        run_id=run_id,
        content_hash=hashes[MODEL_DIR],
        variants={key: best.variants[key] for key in folders if key != MODEL_DIR},
        **base,
    )
    write_json(paths.registration, result.model_dump(mode="json"))
    logger.info("registered %s version %s as %r", config.model_name, version.version, CHAMPION)
    return result


def section(config: PipelineConfig) -> RegisterConfig:
    return config.register_


def main() -> None:
    runner.main(STAGE, run, section)


if __name__ == "__main__":
    main()
