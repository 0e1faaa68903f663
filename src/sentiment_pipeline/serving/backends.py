"""Which folder and runtime serve a resolved model, and the provider that loads and reloads it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    SentimentModel,
    read_manifest,
)
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry.resolve import (
    MODELS_URI,
    VARIANTS,
    ResolvedModel,
    alias_version,
    resolve_model,
)

logger = logging.getLogger(__name__)

# serve.backend: auto tries these in order.
AUTO_ORDER = ("onnx-int8", "onnx", "torch")
BACKENDS = ("auto", *reversed(AUTO_ORDER))


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to serve, the folder and runtime it runs on, and where it came from."""

    model: SentimentModel
    resolved: ResolvedModel
    backend: str  # sklearn, torch, onnx or onnx-int8
    path: Path
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def info_labels(self) -> dict[str, str]:
        """The labels of the te_model_info gauge."""
        return {
            "name": self.resolved.name,
            "version": self.resolved.version or "",
            "backend": self.backend,
            "kind": self.model.manifest.kind,
        }


class ModelProvider(Protocol):
    """Where the service gets its model: loaded at start-up, polled for a new one."""

    threads: int | None  # inference threads of this worker (None: the library's default)

    def load(self) -> LoadedModel:
        """The model to serve now (blocking: called off the event loop)."""
        ...

    def reloadable(self) -> bool:
        """Whether `poll` can ever find a new model (a registry alias)."""
        ...

    def poll(self, current: LoadedModel) -> LoadedModel | None:
        """A new model when the alias moved since `current` was loaded, else None (blocking)."""
        ...


def backend_folders(
    resolved: ResolvedModel, symlink_root: Path | None = None
) -> dict[str, Path]:
    """The folder each runtime would load: the primary folder by its kind, plus the variants."""
    manifest = read_manifest(resolved.path, symlink_root=symlink_root)
    if manifest.kind == "sklearn":
        return {"sklearn": resolved.path}
    if manifest.kind == "placeholder":
        raise ArtifactError(
            f"{resolved.source} is a placeholder ({manifest.reason}), not a trained model"
        )
    if manifest.kind == "onnx":
        primary = "onnx-int8" if manifest.precision == "int8" else "onnx"
    else:
        primary = "torch"
    folders = {primary: resolved.path}
    for name in VARIANTS:
        if name in resolved.variants:
            folders.setdefault(name, resolved.variants[name])
    return folders


def backend_choices(
    resolved: ResolvedModel, requested: str, symlink_root: Path | None = None
) -> list[tuple[str, Path]]:
    """The (runtime, folder) pairs to try for serve.backend `requested`, best first.

    A scikit-learn model ignores the backend. auto: int8 ONNX, then fp32 ONNX, then torch,
    whichever exist. A named backend the model lacks is an ArtifactError saying what it has.
    """
    if requested not in BACKENDS:
        raise ArtifactError(f"serve.backend is {requested!r}; expected one of {list(BACKENDS)}")
    folders = backend_folders(resolved, symlink_root)
    if "sklearn" in folders:
        return [("sklearn", folders["sklearn"])]
    if requested == "auto":
        return [(name, folders[name]) for name in AUTO_ORDER if name in folders]
    if requested not in folders:
        raise ArtifactError(
            f"serve.backend is {requested!r}, but {resolved.source} has no {requested} model "
            f"(it has {sorted(folders)}); export one with `sentiment-pipeline export onnx"
            f"{' --quantize int8' if requested == 'onnx-int8' else ''}` or set serve.backend: auto"
        )
    return [(requested, folders[requested])]


def load_backend(
    resolved: ResolvedModel,
    requested: str,
    *,
    threads: int | None,
    project: ProjectPaths | None,
) -> LoadedModel:
    """Load `resolved` on the runtime serve.backend asks for.

    With auto, a runtime that fails to load (e.g. onnxruntime not installed) is skipped with a
    warning for the next one; a named backend that fails is the error.
    """
    failures = []
    symlink_root = project.dvc_cache if project is not None else None
    labels = read_manifest(resolved.path, symlink_root=symlink_root).labels
    for backend, folder in backend_choices(resolved, requested, symlink_root):
        try:
            model = load_model(
                folder,
                require_real=True,
                project=project,
                trust=True if resolved.trusted else None,
                threads=threads,
            )
            if model.labels != labels:
                raise ArtifactError(
                    f"the {backend} model {folder} has labels {model.labels}, but its source "
                    f"model has {labels}; export it again"
                )
        except ArtifactError as exc:
            if requested != "auto":
                raise
            logger.warning("cannot serve %s on %s (%s); trying the next backend", folder,
                           backend, exc)
            failures.append(f"{backend} ({exc})")
            continue
        return LoadedModel(model=model, resolved=resolved, backend=backend, path=folder)
    raise ArtifactError(f"no backend of {resolved.source} could be loaded: {'; '.join(failures)}")


def registry_alias(resolved: ResolvedModel) -> tuple[str, str] | None:
    """(name, alias) when `resolved` came from a registry alias, else None."""
    match = MODELS_URI.fullmatch(resolved.source)
    if match is None or match["alias"] is None or resolved.version is None:
        return None
    return match["name"], match["alias"]


@dataclass
class RegistryProvider:
    """Loads the model resolved at start-up; polls its alias (if any) for a new version."""

    resolved: ResolvedModel
    backend: str
    model_name: str
    paths: ProjectPaths
    threads: int | None = None
    timeout_s: float = 10.0

    def load(self) -> LoadedModel:
        return load_backend(self.resolved, self.backend, threads=self.threads, project=self.paths)

    def reloadable(self) -> bool:
        return registry_alias(self.resolved) is not None

    def poll(self, current: LoadedModel) -> LoadedModel | None:
        alias = registry_alias(current.resolved)
        if alias is None:
            return None
        name, label = alias
        version = alias_version(name, label, timeout_s=self.timeout_s, paths=self.paths)
        if version is None or version == current.resolved.version:
            return None
        logger.info("models:/%s@%s moved from version %s to %s; loading it", name, label,
                    current.resolved.version, version)
        resolved = resolve_model(
            current.resolved.source,
            model_name=self.model_name,
            paths=self.paths,
            timeout_s=self.timeout_s,
        )
        return load_backend(resolved, self.backend, threads=self.threads, project=self.paths)
