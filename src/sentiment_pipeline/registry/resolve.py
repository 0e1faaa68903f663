"""Model resolution: what `--model` (serve, predict, analyze) names, as folders load_model opens.

A spec is a model directory, `models:/<name>@<alias>`, `models:/<name>/<version>`, or None:
then `models:/<register.model_name>@champion` from the configured registry and, when the
registry cannot be reached, the evaluation's champion (models/evaluation/best_model.json).

A registered model is never loaded through MLflow (`mlflow.pyfunc.load_model` runs the
registered code): only its model folders are downloaded, checked against the content hashes
recorded at registration, and cached under `<project>/.cache/registry/<name>/<version>/`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TypeVar

from pydantic import ValidationError

from sentiment_pipeline import tracking
from sentiment_pipeline.evaluation.best_model import BestModel
from sentiment_pipeline.io import honour_umask, read_json, write_json
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    ModelManifest,
    content_hash,
    read_manifest,
)
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.processes import TimedOut, call_within

logger = logging.getLogger(__name__)

# The ONNX variants a transformer may carry, by serve.backend name.
VARIANTS = ("onnx", "onnx-int8")
# The pyfunc artifact that holds the model folder itself; the variants are logged beside it.
MODEL_DIR = "model_dir"
CHAMPION = "champion"
SPEC_FORMS = "a model directory, models:/<name>@<alias> or models:/<name>/<version>"
MODELS_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))")
URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")
STAMP = "resolved.json"  # what a cache entry was downloaded from, and its folders' hashes
T = TypeVar("T")


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready for load_model: its folder, its ONNX variants, and where it came from."""

    path: Path  # the primary model folder (sklearn, transformers, onnx or placeholder)
    name: str  # registered model name, or the manifest's name for a folder
    source: str  # what was resolved, e.g. "models:/sentiment-classifier@champion" or a path
    version: str | None = None  # registry version, None for a folder
    variants: dict[str, Path] = field(default_factory=dict)  # "onnx" / "onnx-int8" -> folder
    # Downloaded from the configured registry and matching the hashes recorded at registration:
    # load it as trusted (load_model(trust=True)) although it lies outside the project's models/.
    trusted: bool = False


class RegistryUnavailable(ArtifactError):
    """The MLflow registry could not be asked: no store, an unknown scheme, no answer in time."""


class NotRegistered(ArtifactError):
    """The registry answered, without the model, version or alias asked for."""


@dataclass(frozen=True)
class RegisteredVersion:
    """What the registry says about one model version."""

    name: str
    version: str
    download_uri: str
    tags: dict[str, str]


def hash_tag(key: str) -> str:
    """The model-version tag holding the content_hash of the artifact folder `key`."""
    return "content_hash" if key == MODEL_DIR else f"content_hash.{key}"


# --- folders and best_model.json -------------------------------------------------------------


def read_best_model(paths: ProjectPaths) -> BestModel:
    """The evaluation's champion record; a missing or damaged one is an ArtifactError."""
    if not paths.best_model.is_file():
        raise ArtifactError(f"no {paths.best_model}; run the model_evaluation stage first")
    try:
        return BestModel.model_validate(read_json(paths.best_model))
    except (ValueError, ValidationError) as exc:
        raise ArtifactError(
            f"{paths.best_model} is not a champion record written by model_evaluation ({exc}); "
            "rerun the model_evaluation stage"
        ) from exc


def real_manifest(folder: Path, paths: ProjectPaths) -> ModelManifest:
    """The manifest of a model folder that holds a trained model (a placeholder is an error)."""
    manifest = read_manifest(folder, symlink_root=paths.dvc_cache)
    if manifest.kind == "placeholder":
        raise ArtifactError(
            f"{folder} is a placeholder for model {manifest.name!r} (skipped: "
            f"{manifest.reason}), not a trained model; train it or name another model"
        )
    return manifest


def existing_variants(recorded: Mapping[str, str], paths: ProjectPaths) -> dict[str, Path]:
    """The recorded ONNX variants whose folders hold a real model; the others are skipped."""
    variants = {}
    for key in VARIANTS:
        if key not in recorded:
            continue
        folder = paths.resolve(recorded[key])
        try:
            real_manifest(folder, paths)
        except ArtifactError as exc:
            logger.warning("ignoring the %s variant: %s", key, exc)
            continue
        variants[key] = folder
    return variants


def from_folder(spec: str, paths: ProjectPaths) -> ResolvedModel:
    """A model directory; the champion's folder carries its variants from best_model.json."""
    folder = paths.resolve(spec)
    manifest = real_manifest(folder, paths)
    variants: dict[str, Path] = {}
    with contextlib.suppress(ArtifactError):
        best = read_best_model(paths)
        if paths.resolve(best.path).resolve() == folder.resolve():
            variants = existing_variants(best.variants, paths)
    return ResolvedModel(path=folder, name=manifest.name, source=spec, variants=variants)


def from_best_model(paths: ProjectPaths) -> ResolvedModel:
    """The evaluation's champion (best_model.json) with its ONNX variants."""
    best = read_best_model(paths)
    folder = paths.resolve(best.path)
    manifest = real_manifest(folder, paths)
    return ResolvedModel(
        path=folder,
        name=manifest.name,
        source=str(paths.best_model),
        variants=existing_variants(best.variants, paths),
    )


# --- asking the registry, within a time limit ------------------------------------------------


def check_store(store: str, timeout_s: float) -> None:
    """Refuse at once a store that cannot answer: a missing local store, a closed port, a
    server that says nothing (tracking.probe).

    Asking MLflow would create a missing SQLite or file store, and its REST client retries a
    refused connection for minutes.
    """
    try:
        tracking.probe(store, timeout_s, existing=True)
    except tracking.TrackingUnavailable as exc:
        raise RegistryUnavailable(str(exc)) from exc


def within(call: Callable[[], T], store: str, timeout_s: float, limit_s: float) -> T:
    """call() in a daemon thread, given up after `timeout_s` as RegistryUnavailable.

    limit_s: the caller's whole time limit, which the message names.
    """
    with tracking.HTTP_BOUNDS.applied(tracking.http_bounds(0, timeout_s)):
        try:
            return call_within(call, timeout_s, "registry-lookup")
        except TimedOut:
            raise RegistryUnavailable(
                f"the MLflow registry {tracking.redact(store)} did not answer within {limit_s:g} s"
            ) from None


def registry_error(exc: Exception, what: str, store: str) -> ArtifactError:
    """An MLflow failure as NotRegistered (the registry answered 'no') or RegistryUnavailable."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking.registry import UnsupportedModelRegistryStoreURIException

    code = getattr(exc, "error_code", None)
    where = tracking.redact(store)
    if isinstance(exc, UnsupportedModelRegistryStoreURIException):
        return RegistryUnavailable(f"{where} is not an MLflow registry URI ({exc})")
    if isinstance(exc, MlflowException) and code in (
        "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"
    ):
        return NotRegistered(f"{what} is not in the MLflow registry {where}: {exc.message}")
    return RegistryUnavailable(f"the MLflow registry {where} failed ({type(exc).__name__}: {exc})")


def lookup(
    store: str, name: str, *, alias: str | None, version: str | None, timeout_s: float
) -> RegisteredVersion:
    """The version that `alias` (or `version`) of the registered model `name` names."""
    deadline = time.monotonic() + timeout_s
    check_store(store, timeout_s)
    from mlflow.tracking import MlflowClient

    what = f"models:/{name}@{alias}" if alias is not None else f"models:/{name}/{version}"

    def ask() -> RegisteredVersion:
        try:
            client = MlflowClient(tracking_uri=store, registry_uri=store)
            if alias is not None:
                found = client.get_model_version_by_alias(name, alias)
            else:
                found = client.get_model_version(name, str(version))
            uri = client.get_model_version_download_uri(name, found.version)
        except Exception as exc:
            raise registry_error(exc, what, store) from exc
        return RegisteredVersion(name, str(found.version), uri, dict(found.tags or {}))

    # MLflow's import may have eaten into the budget; leave the lookup a second at least.
    return within(ask, store, max(deadline - time.monotonic(), 1.0), timeout_s)


# --- the download cache ----------------------------------------------------------------------


def cache_entry(paths: ProjectPaths, name: str, version: str) -> Path:
    """Where the folders of a registered version are kept: <project>/.cache/registry/..."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return paths.root / ".cache" / "registry" / safe / version


def artifact_folders(mlmodel: Path, where: str) -> dict[str, str]:
    """Artifact key -> folder inside the logged model, read from its MLmodel file (YAML)."""
    import yaml

    try:
        flavor = yaml.safe_load(mlmodel.read_text())["flavors"]["python_function"]
        artifacts = {key: str(value["path"]) for key, value in flavor["artifacts"].items()}
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise ArtifactError(
            f"the MLmodel of {where} lists no pyfunc artifacts ({type(exc).__name__}: {exc}); "
            "it was not registered by this pipeline's register_model stage"
        ) from exc
    if MODEL_DIR not in artifacts:
        raise ArtifactError(
            f"{where} has no {MODEL_DIR!r} artifact (it has {sorted(artifacts)}); it was not "
            "registered by this pipeline's register_model stage"
        )
    for key, relative in artifacts.items():
        parts = PurePosixPath(relative).parts
        if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
            raise ArtifactError(f"the MLmodel of {where} puts {key!r} at {relative!r}, outside it")
    return {key: artifacts[key] for key in (MODEL_DIR, *VARIANTS) if key in artifacts}


def verify(folder: Path, key: str, registered: RegisteredVersion, where: str) -> str:
    """The content hash of a downloaded folder, checked against its registration tag."""
    found = content_hash(folder)
    expected = registered.tags.get(hash_tag(key))
    if expected is not None and found != expected:
        raise ArtifactError(
            f"the {key} folder of {where} has content hash {found}, but registration recorded "
            f"{expected} (tag {hash_tag(key)!r}); its artifacts changed after registration: "
            "register the model again"
        )
    return found


def download(registered: RegisteredVersion, store: str, staging: Path, where: str) -> None:
    """Download only the model's own folders (no code, no pickle) into `staging/<key>`."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(registered.download_uri, tracking_uri=store, registry_uri=store)
    meta = staging / ".mlmodel"
    meta.mkdir()
    folders = artifact_folders(Path(repo.download_artifacts("MLmodel", str(meta))), where)
    hashes = {}
    for key, relative in folders.items():
        (staging / ".download" / key).mkdir(parents=True)
        fetched = Path(repo.download_artifacts(relative, str(staging / ".download" / key)))
        os.replace(fetched, staging / key)
        hashes[key] = verify(staging / key, key, registered, where)
    shutil.rmtree(meta)
    shutil.rmtree(staging / ".download")
    stamp = {"source": where, "download_uri": registered.download_uri, "hashes": hashes}
    write_json(staging / STAMP, stamp)


def cached(entry: Path, registered: RegisteredVersion) -> dict[str, Path] | None:
    """The folders of a complete cache entry that still matches its registration, else None."""
    try:
        stamp = read_json(entry / STAMP)
        hashes: dict[str, str] = stamp["hashes"]
        if stamp["download_uri"] != registered.download_uri or MODEL_DIR not in hashes:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for key, recorded in hashes.items():
        expected = registered.tags.get(hash_tag(key), recorded)
        if recorded != expected or not (entry / key).is_dir():
            return None
        if content_hash(entry / key) != expected:  # damaged since it was downloaded
            return None
    return {key: entry / key for key in hashes}


def discard(folder: Path) -> None:
    """Move a folder out of the way, then delete it (a reader of the old one keeps its files)."""
    if folder.exists():
        aside = folder.with_name(f".{folder.name}.stale-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(folder, aside)
        shutil.rmtree(aside, ignore_errors=True)


def fetch(registered: RegisteredVersion, store: str, paths: ProjectPaths) -> dict[str, Path]:
    """The version's folders from the cache, downloading them (atomically) when needed."""
    where = f"models:/{registered.name}/{registered.version}"
    entry = cache_entry(paths, registered.name, registered.version)
    found = cached(entry, registered)
    if found is not None:
        logger.debug("using the cached %s at %s", where, entry)
        return found
    logger.info("downloading %s from %s into %s", where, tracking.redact(store), entry)
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".tmp", dir=entry.parent))
    honour_umask(staging)  # a shared project's users reuse each other's downloads
    try:
        download(registered, store, staging, where)
        try:
            os.rename(staging, entry)  # fails while a (stale or fresh) entry is in the way
        except OSError:
            found = cached(entry, registered)  # another process (a serving worker) was quicker
            if found is not None:
                return found
            discard(entry)
            os.rename(staging, entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {key: entry / key for key in read_json(entry / STAMP)["hashes"]}


def from_registry(spec: str, paths: ProjectPaths, timeout_s: float) -> ResolvedModel:
    """A `models:/` URI: its version's folders, downloaded once into the project's cache."""
    match = MODELS_URI.fullmatch(spec)
    if match is None:
        raise ArtifactError(f"cannot resolve the model {spec!r}; expected {SPEC_FORMS}")
    store = tracking.tracking_uri(paths)
    registered = lookup(
        store, match["name"], alias=match["alias"], version=match["version"], timeout_s=timeout_s
    )
    folders = fetch(registered, store, paths)
    real_manifest(folders[MODEL_DIR], paths)
    return ResolvedModel(
        path=folders[MODEL_DIR],
        name=registered.name,
        source=spec,
        version=registered.version,
        variants={key: folders[key] for key in VARIANTS if key in folders},
        trusted=True,
    )


# --- the entry points ------------------------------------------------------------------------


def resolve_model(
    spec: str | None, *, model_name: str, paths: ProjectPaths, timeout_s: float = 10.0
) -> ResolvedModel:
    """The model `spec` names, ready for load_model; every failure is one ArtifactError.

    spec: a model directory, `models:/<name>@<alias>`, `models:/<name>/<version>`, or None:
    `models:/<model_name>@champion`, else (registry unreachable or no champion there)
    best_model.json with a warning. timeout_s bounds the wait for the registry.
    """
    if spec is None:
        return default_model(model_name, paths, timeout_s)
    if spec.startswith("models:/"):
        return from_registry(spec, paths, timeout_s)
    if URI_SCHEME.match(spec):
        raise ArtifactError(f"cannot resolve the model {spec!r}; expected {SPEC_FORMS}")
    return from_folder(spec, paths)


def default_model(model_name: str, paths: ProjectPaths, timeout_s: float) -> ResolvedModel:
    """The registry's champion, else the evaluation's (best_model.json), with a warning."""
    spec = f"models:/{model_name}@{CHAMPION}"
    try:
        return from_registry(spec, paths, timeout_s)
    except (RegistryUnavailable, NotRegistered) as exc:
        failure = exc
    try:
        resolved = from_best_model(paths)
    except ArtifactError as exc:
        raise ArtifactError(
            f"no model to use: tried {spec} ({failure}) and {paths.best_model} ({exc}); "
            "run the pipeline (dvc repro), start the registry, or name a model with --model"
        ) from exc
    logger.warning("using the evaluation's champion %s (%s): %s", resolved.path,
                   paths.best_model, failure)
    return resolved


def alias_version(
    model_name: str,
    alias: str = CHAMPION,
    *,
    timeout_s: float = 10.0,
    paths: ProjectPaths | None = None,
) -> str | None:
    """The version the alias names now, or None when the registry or the alias is not there.

    paths: the project whose default store (mlruns.db) to ask; default: the working directory.
    """
    store = tracking.tracking_uri(paths or ProjectPaths.at("."))
    try:
        return lookup(store, model_name, alias=alias, version=None, timeout_s=timeout_s).version
    except (RegistryUnavailable, NotRegistered) as exc:
        logger.debug("no version for models:/%s@%s: %s", model_name, alias, exc)
        return None

