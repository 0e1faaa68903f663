"""One loader for every model kind: load_model(path) -> SentimentModel, dispatching on `kind`."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sentiment_pipeline.models.artifacts import placeholder, sklearn_model
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    ModelManifest,
    SentimentModel,
    content_hash,
    model_folder,
    read_manifest,
)
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.settings import get_settings

KindLoader = Callable[..., SentimentModel]


# A kind's libraries are imported only when it is loaded: torch and transformers are an extra,
# and onnxruntime takes a second to import.
def _load_transformers(directory: Path, manifest: ModelManifest, **options: Any) -> SentimentModel:
    try:
        from sentiment_pipeline.models.artifacts import transformers_model
    except ImportError as exc:
        raise TorchMissing(directory, str(exc), exports_beside(directory)) from exc
    return transformers_model.load(directory, manifest, **options)


def export_dirs(source: Path) -> dict[str, Path]:
    """Where `sentiment-pipeline export onnx` writes the exports of `source` by default (int8
    first): <model>_onnx_int8 and <model>_onnx beside it."""
    return {"onnx-int8": source.with_name(f"{source.name}_onnx_int8"),
            "onnx": source.with_name(f"{source.name}_onnx")}


def exports_beside(source: Path) -> list[Path]:
    """The ONNX exports of `source` beside it (int8 first): the export command's folders, and
    the export_onnx stage's (<name>_onnx_int8 and <name>_onnx for <name>_model).

    A folder counts when its manifest says it was exported from `source` as it is now.
    """
    candidates = list(export_dirs(source).values())
    if source.name.endswith("_model"):
        stem = source.name.removesuffix("_model")
        candidates += [source.with_name(f"{stem}_onnx_int8"), source.with_name(f"{stem}_onnx")]
    found = []
    for folder in candidates:
        try:
            manifest = read_manifest(folder)
        except ArtifactError:
            continue
        if manifest.kind == "onnx" and manifest.source_hash is not None:
            found.append((folder, manifest.source_hash))
    here = content_hash(source) if found else None
    return [folder for folder, hash_ in found if hash_ == here]


class TorchMissing(ArtifactError):
    """A transformers folder where torch or transformers cannot be imported: the error says
    which ONNX export (`exports`, best first) to use instead, or how to make one."""

    def __init__(self, directory: Path, reason: str, exports: Sequence[Path]) -> None:
        self.directory, self.reason, self.exports = directory, reason, list(exports)
        if self.exports:
            instead = (f"its ONNX export {self.exports[0]} runs without them: pass --model "
                       f"{self.exports[0]}")
        else:
            command = shlex.join(["sentiment-pipeline", "export", "onnx", "--model",
                                  str(directory), "--quantize", "int8"])
            instead = (
                f"to run it without them, export it to ONNX where they are installed "
                f"({command}) and pass --model {export_dirs(directory)['onnx-int8']}"
            )
        super().__init__(
            f"{directory} is a transformers model, which needs torch and transformers "
            f"({reason}); {instead}; or pip install 'sentiment-pipeline[transformers]'"
        )


def _load_onnx(directory: Path, manifest: ModelManifest, **options: Any) -> SentimentModel:
    try:
        from sentiment_pipeline.models.artifacts import onnx_model
    except ImportError as exc:
        raise ArtifactError(
            f"{directory} holds an ONNX model but onnxruntime or tokenizers is not installed "
            f"({exc}); pip install sentiment-pipeline, whose dependencies they are"
        ) from exc
    return onnx_model.load(directory, manifest, **options)


LOADERS: dict[str, KindLoader] = {
    "sklearn": sklearn_model.load,
    "transformers": _load_transformers,
    "onnx": _load_onnx,
    "placeholder": placeholder.load,
}


def trusted_folder(
    directory: Path, *, project: ProjectPaths | None, trust: bool | None, verified: bool = False
) -> bool:
    """The one trust rule: may the scikit-learn artifact in `directory` be loaded?

    A folder under the project's models/ is trusted. Elsewhere `trust` decides; None: a
    registry download whose content hashes matched its registration (`verified`) is trusted,
    else SENTIMENT_PIPELINE_TRUST_ARTIFACTS decides. `directory`: as model_folder returns it.
    """
    if trust is None:
        trust = verified or get_settings().trust_artifacts
    in_project = project is not None and directory.is_relative_to(project.models_dir.resolve())
    return trust or in_project


def load_folder(
    path: str | Path,
    manifest: ModelManifest,
    *,
    trusted: bool,
    project: ProjectPaths | None = None,
    threads: int | None = None,
) -> SentimentModel:
    """Load a model folder whose manifest was read already, trusted as `trusted_folder` decided."""
    symlink_root = project.dvc_cache if project is not None else None
    return LOADERS[manifest.kind](
        model_folder(path, symlink_root),
        manifest,
        trusted=trusted,
        symlink_root=symlink_root,
        threads=threads,
    )


def load_model(
    path: str | Path,
    *,
    expected_labels: Sequence[str] | None = None,
    require_real: bool = False,
    project: ProjectPaths | None = None,
    trust: bool | None = None,
    threads: int | None = None,
) -> SentimentModel:
    """Load any model folder written by this pipeline; every problem is one ArtifactError.

    expected_labels: the class names of labels.json; a different label set is an error.
    require_real: a placeholder is an error instead of a PlaceholderModel.
    project: its models/ folder holds trusted scikit-learn artifacts, and the files of a model
    folder may be symbolic links into its DVC cache (nowhere else).
    trust: load a scikit-learn artifact from outside the project's models/ (it is still checked
    against the allow-list); None reads SENTIMENT_PIPELINE_TRUST_ARTIFACTS (trusted_folder).
    threads: intra-op threads of the kinds that run a thread pool (transformers, onnx); None
    leaves the library's default (all cores). A serving worker passes its share of the cores.
    """
    symlink_root = project.dvc_cache if project is not None else None
    directory = model_folder(path, symlink_root)
    manifest = read_manifest(directory, symlink_root=symlink_root)
    if expected_labels is not None and list(expected_labels) != manifest.labels:
        raise ArtifactError(
            f"{path} was trained for labels {manifest.labels}, but the data has "
            f"{list(expected_labels)} (labels.json); retrain it on the current data"
        )
    if require_real:
        placeholder.refuse_placeholder(path, manifest)
    trusted = trusted_folder(directory, project=project, trust=trust)
    return load_folder(directory, manifest, trusted=trusted, project=project, threads=threads)
