"""Model resolution: the folder, manifest, variants and trust of what `--model` names."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from sentiment_pipeline import tracking
from sentiment_pipeline.evaluation.best_model import BestModel, NoChampion
from sentiment_pipeline.io import read_json
from sentiment_pipeline.models.artifacts.loader import trusted_folder
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    ModelManifest,
    model_folder,
    read_manifest,
)
from sentiment_pipeline.models.artifacts.placeholder import refuse_placeholder
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry.cache import MODEL_DIR, VARIANTS, fetch
from sentiment_pipeline.registry.lookup import NotRegistered, RegistryUnavailable, lookup
from sentiment_pipeline.registry.specs import CHAMPION, RegistrySpec, parse_spec

logger = logging.getLogger(__name__)


class Folder(BaseModel):
    """A model folder and its manifest, read once."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    path: Path
    manifest: ModelManifest


class ResolvedModel(BaseModel):
    """A model ready to load: its folder and manifest, its ONNX variants, where it came from and
    whether it is trusted (one decision, `trusted_folder`'s)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    path: Path  # the primary model folder (sklearn, transformers or onnx)
    manifest: ModelManifest  # its model.json
    name: str  # registered model name, or the manifest's name for a folder
    source: str  # what was resolved, e.g. "models:/sentiment-classifier@champion" or a path
    version: str | None = None  # registry version, None for a folder
    alias: str | None = None  # the registry alias it was resolved through (serve polls it)
    variants: dict[str, Folder] = {}  # "onnx" / "onnx-int8" -> folder
    # Under the project's models/, a registry download matching the hashes recorded at
    # registration, or trusted by --trust / SENTIMENT_PIPELINE_TRUST_ARTIFACTS.
    trusted: bool = False


# --- folders and best_model.json -------------------------------------------------------------


def read_champion(path: Path, stage: str) -> BestModel | NoChampion:
    """The champion record `stage` wrote at `path` (or why it has none); a missing or damaged
    one is an ArtifactError."""
    if not path.is_file():
        raise ArtifactError(f"no {path}; run the {stage} stage first")
    try:
        found = read_json(path)
        if isinstance(found, dict) and found.get("status") == "skipped":
            return NoChampion.model_validate(found)
        return BestModel.model_validate(found)
    except (ValueError, ValidationError) as exc:
        raise ArtifactError(
            f"{path} is not a champion record written by {stage} ({exc}); rerun the {stage} stage"
        ) from exc


def read_best_model(paths: ProjectPaths) -> BestModel:
    """The evaluation's champion record; a missing or damaged one is an ArtifactError."""
    best = read_champion(paths.best_model, "model_evaluation")
    if isinstance(best, NoChampion):
        raise ArtifactError(f"{paths.best_model} names no champion: {best.reason}")
    return best


def real_folder(folder: Path, paths: ProjectPaths) -> Folder:
    """A model folder that holds a trained model, with its manifest (a placeholder is an error)."""
    manifest = read_manifest(folder, symlink_root=paths.dvc_cache)
    refuse_placeholder(folder, manifest)
    return Folder(path=folder, manifest=manifest)


def existing_variants(recorded: Mapping[str, str | Path], paths: ProjectPaths) -> dict[str, Folder]:
    """The recorded ONNX variants whose folders hold a real model; the others are skipped."""
    variants = {}
    for key in VARIANTS:
        if key not in recorded:
            continue
        try:
            variants[key] = real_folder(paths.resolve(recorded[key]), paths)
        except ArtifactError as exc:
            logger.warning("ignoring the %s variant: %s", key, exc)
    return variants


def is_trusted(
    folder: Path, paths: ProjectPaths, trust: bool | None, *, verified: bool = False
) -> bool:
    """trusted_folder's decision for a resolved folder (verified: a checked registry download)."""
    location = model_folder(folder, paths.dvc_cache)
    return trusted_folder(location, project=paths, trust=trust, verified=verified)


def from_folder(spec: str, paths: ProjectPaths, trust: bool | None) -> ResolvedModel:
    """A model directory; the champion's folder carries its variants from best_model.json."""
    primary = real_folder(paths.resolve(spec), paths)
    variants: dict[str, Folder] = {}
    with contextlib.suppress(ArtifactError):
        best = read_best_model(paths)
        if paths.resolve(best.path).resolve() == primary.path.resolve():
            variants = existing_variants(best.variants, paths)
    return ResolvedModel(
        path=primary.path,
        manifest=primary.manifest,
        name=primary.manifest.name,
        source=spec,
        variants=variants,
        trusted=is_trusted(primary.path, paths, trust),
    )


def from_best_model(paths: ProjectPaths, trust: bool | None) -> ResolvedModel:
    """The evaluation's champion (best_model.json) with its ONNX variants."""
    best = read_best_model(paths)
    primary = real_folder(paths.resolve(best.path), paths)
    return ResolvedModel(
        path=primary.path,
        manifest=primary.manifest,
        name=primary.manifest.name,
        source=str(paths.best_model),
        variants=existing_variants(best.variants, paths),
        trusted=is_trusted(primary.path, paths, trust),
    )


def from_registry(
    spec: RegistrySpec, paths: ProjectPaths, trust: bool | None, timeout_s: float
) -> ResolvedModel:
    """A registered version: its folders, downloaded once into the project's cache."""
    store = tracking.tracking_uri(paths)
    registered = lookup(store, spec, timeout_s=timeout_s)
    folders = fetch(registered, store, paths)
    primary = real_folder(folders[MODEL_DIR], paths)
    return ResolvedModel(
        path=primary.path,
        manifest=primary.manifest,
        name=registered.name,
        source=str(spec),
        version=registered.version,
        alias=spec.alias,
        variants=existing_variants({k: v for k, v in folders.items() if k != MODEL_DIR}, paths),
        trusted=is_trusted(primary.path, paths, trust, verified=True),
    )


# --- the entry points ------------------------------------------------------------------------


def resolve_model(
    spec: str | None,
    *,
    model_name: str,
    paths: ProjectPaths,
    trust: bool | None = None,
    timeout_s: float = 10.0,
) -> ResolvedModel:
    """The model `spec` names, its manifests read and its trust decided; every failure is one
    ArtifactError.

    spec: a model directory, `models:/<name>@<alias>`, `models:/<name>/<version>`, or None:
    `models:/<model_name>@champion`, else (registry unreachable or no champion there)
    best_model.json with a warning. trust: --trust (True), --no-trust (False) or neither
    (None), as trusted_folder takes it. timeout_s bounds the wait for the registry.
    """
    if spec is None:
        return default_model(model_name, paths, trust, timeout_s)
    registered = parse_spec(spec)
    if registered is not None:
        return from_registry(registered, paths, trust, timeout_s)
    return from_folder(spec, paths, trust)


def default_model(
    model_name: str, paths: ProjectPaths, trust: bool | None, timeout_s: float
) -> ResolvedModel:
    """The registry's champion, else the evaluation's (best_model.json), with a warning."""
    champion = RegistrySpec(model_name, alias=CHAMPION)
    try:
        return from_registry(champion, paths, trust, timeout_s)
    except (RegistryUnavailable, NotRegistered) as exc:
        failure = exc
    try:
        resolved = from_best_model(paths, trust)
    except ArtifactError as exc:
        raise ArtifactError(
            f"no model to use: tried {champion} ({failure}) and {paths.best_model} ({exc}); "
            "run the pipeline (dvc repro), start the registry, or name a model with --model"
        ) from exc
    logger.warning("using the evaluation's champion %s (%s): %s", resolved.path,
                   paths.best_model, failure)
    return resolved
