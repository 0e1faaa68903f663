"""Opening a model for predict, serve and analyze: resolve the spec, pick the runtime, load it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sentiment_pipeline.models.artifacts.loader import TorchMissing, load_folder
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    ModelManifest,
    SentimentModel,
)
from sentiment_pipeline.models.artifacts.placeholder import refuse_placeholder
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry import resolve
from sentiment_pipeline.registry.cache import VARIANTS
from sentiment_pipeline.registry.lookup import NotRegistered, RegistryUnavailable
from sentiment_pipeline.registry.resolve import Folder, ResolvedModel
from sentiment_pipeline.registry.specs import CHAMPION, RegistrySpec

logger = logging.getLogger(__name__)

# serve.aspect_model (and --aspect-model): load no aspect model.
NO_ASPECT_MODEL = "none"
# serve.backend: auto tries these in order.
AUTO_ORDER = ("onnx-int8", "onnx", "torch")
BACKENDS = ("auto", *reversed(AUTO_ORDER))


@dataclass(frozen=True)
class LoadedModel:
    """An opened model: the SentimentModel, what was resolved, and the runtime and folder used."""

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


def runtime(manifest: ModelManifest) -> str:
    """The runtime a model folder runs on, by its kind: sklearn, torch, onnx or onnx-int8."""
    if manifest.kind == "onnx":
        return "onnx-int8" if manifest.precision == "int8" else "onnx"
    return "torch" if manifest.kind == "transformers" else manifest.kind


def backend_folders(resolved: ResolvedModel) -> dict[str, Folder]:
    """The folder each runtime would load: the primary folder by its kind, plus the variants."""
    refuse_placeholder(resolved.source, resolved.manifest)
    primary = runtime(resolved.manifest)
    folders = {primary: Folder(path=resolved.path, manifest=resolved.manifest)}
    if primary == "sklearn":
        return folders
    for name in VARIANTS:
        if name in resolved.variants:
            folders.setdefault(name, resolved.variants[name])
    return folders


def backend_choices(resolved: ResolvedModel, requested: str | None) -> list[tuple[str, Folder]]:
    """The (runtime, folder) pairs to try, best first.

    requested None: the resolved folder on its own runtime (what predict and analyze run).
    A serve.backend name: a scikit-learn model ignores it; auto: int8 ONNX, then fp32 ONNX,
    then torch, whichever exist. A named backend the model lacks is an ArtifactError saying
    what it has.
    """
    if requested is not None and requested not in BACKENDS:
        raise ArtifactError(f"serve.backend is {requested!r}; expected one of {list(BACKENDS)}")
    folders = backend_folders(resolved)
    primary = runtime(resolved.manifest)
    if requested is None or primary == "sklearn":
        return [(primary, folders[primary])]
    if requested == "auto":
        return [(name, folders[name]) for name in AUTO_ORDER if name in folders]
    if requested not in folders:
        raise ArtifactError(
            f"serve.backend is {requested!r}, but {resolved.source} has no {requested} model "
            f"(it has {sorted(folders)}); export one with `sentiment-pipeline export onnx"
            f"{' --quantize int8' if requested == 'onnx-int8' else ''}` or set serve.backend: auto"
        )
    return [(requested, folders[requested])]


def load(
    resolved: ResolvedModel,
    backend: str | None = None,
    *,
    threads: int | None = None,
    project: ProjectPaths | None = None,
) -> LoadedModel:
    """Load `resolved` on the runtime `backend` asks for (backend_choices), as it is trusted.

    With auto and several runtimes, one that fails to load (e.g. onnxruntime not installed) is
    skipped with a warning for the next one; a single runtime that fails (a named backend, a
    scikit-learn model) is the error. threads: intra-op threads (None: the library's default).
    """
    choices = backend_choices(resolved, backend)
    failures = []
    for name, folder in choices:
        try:
            if folder.manifest.labels != resolved.manifest.labels:
                raise ArtifactError(
                    f"the {name} model {folder.path} has labels {folder.manifest.labels}, but "
                    f"its source model has {resolved.manifest.labels}; export it again"
                )
            model = load_folder(
                folder.path,
                folder.manifest,
                trusted=resolved.trusted,
                project=project,
                threads=threads,
            )
        except ArtifactError as exc:
            if len(choices) == 1:
                raise with_exports(exc, resolved) from exc.__cause__
            logger.warning("cannot serve %s on %s (%s); trying the next backend", folder.path,
                           name, exc)
            failures.append(f"{name} ({exc})")
            continue
        return LoadedModel(model=model, resolved=resolved, backend=name, path=folder.path)
    raise ArtifactError(f"no backend of {resolved.source} could be loaded: {'; '.join(failures)}")


def with_exports(exc: ArtifactError, resolved: ResolvedModel) -> ArtifactError:
    """`exc`, or where torch is missing, the same error naming the ONNX exports the model came
    with (best_model.json's or the registry's; predict and analyze load the folder itself)."""
    exports = [resolved.variants[key].path for key in AUTO_ORDER if key in resolved.variants]
    if isinstance(exc, TorchMissing) and exports:
        return TorchMissing(exc.directory, exc.reason, exports)
    return exc


def open_model(
    spec: str | None,
    *,
    model_name: str,
    paths: ProjectPaths,
    trust: bool | None = None,
    backend: str | None = None,
    threads: int | None = None,
    timeout_s: float = 10.0,
) -> LoadedModel:
    """The one way predict, serve and analyze open `--model`: resolve it, decide its trust, load it.

    spec: a model directory, a models:/ URI, or None: the champion (resolve.resolve_model).
    trust: --trust (True), --no-trust (False) or neither (None: a verified registry download
    is trusted, else SENTIMENT_PIPELINE_TRUST_ARTIFACTS decides); the project's models/ is
    always trusted. backend: None loads the resolved folder itself; a serve.backend name picks
    the runtime among its ONNX variants. timeout_s bounds the wait for the registry.
    """
    resolved = resolve.resolve_model(
        spec, model_name=model_name, paths=paths, trust=trust, timeout_s=timeout_s
    )
    opened = load(resolved, backend, threads=threads, project=paths)
    logger.info("using %s (%s) on %s", resolved.source, opened.path, opened.backend)
    return opened


def open_aspect_model(
    spec: str | None,
    *,
    model_name: str,
    paths: ProjectPaths,
    trust: bool | None = None,
    backend: str | None = None,
    threads: int | None = None,
    timeout_s: float = 10.0,
) -> LoadedModel | None:
    """The aspect (pair) model `spec` names, opened as open_model opens `--model`.

    spec: a model spec; None: `models:/<model_name>@champion`, or no aspect model (None) when
    none is registered or the registry cannot be asked; NO_ASPECT_MODEL: none. A model that
    takes single texts is an ArtifactError.
    """
    if spec == NO_ASPECT_MODEL:
        return None
    if spec is None:
        champion = str(RegistrySpec(model_name, alias=CHAMPION))
        try:
            opened = open_model(champion, model_name=model_name, paths=paths, trust=trust,
                                backend=backend, threads=threads, timeout_s=timeout_s)
        except (NotRegistered, RegistryUnavailable) as exc:
            logger.info("no aspect model: %s", exc)
            return None
    else:
        opened = open_model(spec, model_name=model_name, paths=paths, trust=trust,
                            backend=backend, threads=threads, timeout_s=timeout_s)
    if opened.model.manifest.input != "pair":
        raise ArtifactError(
            f"the aspect model {opened.resolved.source} ({opened.resolved.name}) takes single "
            f"texts (its manifest's input is {opened.model.manifest.input!r}); an aspect model "
            "takes (text, aspect) pairs (input 'pair'): name one with serve.aspect_model, or "
            f"set it to {NO_ASPECT_MODEL!r}"
        )
    return opened
