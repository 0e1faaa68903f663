"""The registry download cache: a version's model folders, checked against recorded hashes."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path, PurePosixPath

from sentiment_pipeline.io import honour_umask, read_json, write_json
from sentiment_pipeline.models.artifacts.manifest import ArtifactError, content_hash
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry.lookup import RegisteredVersion
from sentiment_pipeline.urls import redact

logger = logging.getLogger(__name__)

# The ONNX variants a transformer may carry, by serve.backend name.
VARIANTS = ("onnx", "onnx-int8")
# The pyfunc artifact that holds the model folder itself; the variants are logged beside it.
MODEL_DIR = "model_dir"
STAMP = "resolved.json"  # what a cache entry was downloaded from, and its folders' hashes


def hash_tag(key: str) -> str:
    """The model-version tag holding the content_hash of the artifact folder `key`."""
    return "content_hash" if key == MODEL_DIR else f"content_hash.{key}"


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
    """The version's folders from the cache, downloading them (atomically) when needed.

    A registered model is never loaded through MLflow (`mlflow.pyfunc.load_model` runs the
    registered code): only its model folders are downloaded, checked against the content
    hashes recorded at registration, and cached under `<project>/.cache/registry/<name>/
    <version>/`.
    """
    where = f"models:/{registered.name}/{registered.version}"
    entry = cache_entry(paths, registered.name, registered.version)
    found = cached(entry, registered)
    if found is not None:
        logger.debug("using the cached %s at %s", where, entry)
        return found
    logger.info("downloading %s from %s into %s", where, redact(store), entry)
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
