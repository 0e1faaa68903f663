"""Model artifacts: a directory with a model.json manifest, one loader for every kind."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.io import atomic_dir, read_json, to_jsonable

logger = logging.getLogger(__name__)

MANIFEST = "model.json"
SKOPS_FILE = "pipeline.skops"
Kind = Literal["sklearn", "transformers", "placeholder"]


class ArtifactError(PipelineError):
    """A model directory is missing, corrupt, untrusted or of the wrong kind."""


class ModelManifest(BaseModel):
    """The model.json at the root of every model directory."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    format_version: int = 1
    name: str = Field(description="Model name, e.g. baseline, lightgbm, distilbert.")
    kind: Kind
    labels: list[str] = Field(description="Class names in label-id order.")
    status: Literal["ready", "skipped"] = "ready"
    reason: str | None = Field(None, description="Why a placeholder was written.")
    metrics: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    mlflow_run_id: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    files: dict[str, str] = Field(default_factory=dict, description="Role -> relative file name.")
    trusted_types: list[str] = Field(
        default_factory=list, description="skops types the loader may instantiate."
    )

    @model_validator(mode="after")
    def _placeholder_consistency(self) -> ModelManifest:
        if (self.kind == "placeholder") != (self.status == "skipped"):
            raise ValueError("kind 'placeholder' goes with status 'skipped', and only with it")
        if self.kind == "placeholder" and not self.reason:
            raise ValueError("a placeholder needs a reason")
        return self


@runtime_checkable
class SentimentModel(Protocol):
    """What evaluation, registration and serving need from any model."""

    manifest: ModelManifest

    @property
    def labels(self) -> list[str]: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def predict(self, texts: Sequence[str]) -> list[str]: ...


class _BaseModel:
    """Shared `labels` and `predict` on top of a subclass's `predict_proba`."""

    manifest: ModelManifest

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.labels)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, texts: Sequence[str]) -> list[str]:
        proba = self.predict_proba(texts)
        return [self.manifest.labels[i] for i in np.argmax(proba, axis=1)]


class SklearnModel(_BaseModel):
    """A scikit-learn pipeline (TF-IDF + classifier) stored with skops."""

    def __init__(self, manifest: ModelManifest, estimator: Any) -> None:
        self.manifest = manifest
        self.estimator = estimator

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        proba = self.estimator.predict_proba(list(texts))
        # Columns in label-id order even when a class was missing from training.
        classes = list(self.estimator.classes_)
        out = np.zeros((len(texts), len(self.manifest.labels)), dtype=np.float64)
        out[:, classes] = proba
        return out


class PlaceholderModel(_BaseModel):
    """A stage that was skipped; it cannot predict."""

    def __init__(self, manifest: ModelManifest) -> None:
        self.manifest = manifest

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        raise ArtifactError(
            f"model {self.manifest.name!r} is a placeholder (skipped: {self.manifest.reason}); "
            "it cannot predict"
        )


def write_manifest(directory: Path, manifest: ModelManifest) -> None:
    payload = to_jsonable(manifest.model_dump(mode="json"))
    (directory / MANIFEST).write_text(json.dumps(payload, indent=2) + "\n")


def save_placeholder(
    target: Path, name: str, labels: list[str], reason: str, params: dict | None = None
) -> ModelManifest:
    """Atomically write a placeholder model directory."""
    manifest = ModelManifest(
        name=name,
        kind="placeholder",
        status="skipped",
        reason=reason,
        labels=labels,
        params=params or {},
    )
    with atomic_dir(target) as tmp:
        write_manifest(tmp, manifest)
    return manifest


def sklearn_trusted_types(estimator: Any) -> list[str]:
    """The non-default types skops reports as untrusted in this estimator."""
    import skops.io as sio

    return sorted(sio.get_untrusted_types(data=sio.dumps(estimator)))


def save_sklearn(target: Path, estimator: Any, manifest: ModelManifest) -> ModelManifest:
    """Atomically write a scikit-learn estimator (skops) and its manifest."""
    import skops.io as sio

    manifest = manifest.model_copy(
        update={
            "kind": "sklearn",
            "files": {"estimator": SKOPS_FILE},
            "trusted_types": sklearn_trusted_types(estimator),
        }
    )
    with atomic_dir(target) as tmp:
        sio.dump(estimator, tmp / SKOPS_FILE)
        write_manifest(tmp, manifest)
    return manifest


def read_manifest(path: str | Path) -> ModelManifest:
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"no model directory at {path}; train the model or fix the path")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(
            f"{path} has no {MANIFEST} manifest; it is not a model directory written by "
            "this pipeline (expected kind sklearn, transformers or placeholder)"
        )
    try:
        return ModelManifest.model_validate(read_json(manifest_path))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(
            f"{manifest_path} is not valid JSON ({exc}); retrain the model"
        ) from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise ArtifactError(f"{manifest_path} is corrupt: {problems}") from None


def _is_within(path: Path, roots: Sequence[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(root.resolve()) for root in roots)


def _load_sklearn(path: Path, manifest: ModelManifest, trusted: bool) -> SklearnModel:
    import skops.io as sio

    if not trusted:
        raise ArtifactError(
            f"refusing to load the scikit-learn artifact at {path}: it is outside this project's "
            "model folders. Pass trust=True (CLI: --trust) or set "
            "SENTIMENT_PIPELINE_TRUST_ARTIFACTS=true if you trust where it came from"
        )
    file = path / manifest.files.get("estimator", SKOPS_FILE)
    if not file.is_file():
        raise ArtifactError(f"{path} lists {file.name} in its manifest but the file is missing")
    untrusted = set(sio.get_untrusted_types(file=file))
    unexpected = untrusted - set(manifest.trusted_types)
    if unexpected:
        raise ArtifactError(
            f"{file} contains types its manifest does not list as trusted: {sorted(unexpected)}"
        )
    try:
        estimator = sio.load(file, trusted=sorted(untrusted))
    except Exception as exc:  # skops raises many kinds on a damaged file
        raise ArtifactError(f"cannot load {file}: {exc}") from None
    return SklearnModel(manifest, estimator)


def _load_transformers(path: Path, manifest: ModelManifest, trusted: bool) -> SentimentModel:
    try:
        from sentiment_pipeline.models.transformers_model import load_transformers_model
    except ImportError as exc:
        raise ArtifactError(
            f"{path} holds a transformers model but torch/transformers are not installed "
            f"({exc}); pip install 'sentiment-pipeline[transformers]'"
        ) from None
    return load_transformers_model(path, manifest)


def _load_placeholder(path: Path, manifest: ModelManifest, trusted: bool) -> PlaceholderModel:
    return PlaceholderModel(manifest)


_LOADERS: dict[str, Callable[[Path, ModelManifest, bool], SentimentModel]] = {
    "sklearn": _load_sklearn,
    "transformers": _load_transformers,
    "placeholder": _load_placeholder,
}


def load_model(
    path: str | Path,
    *,
    expected_labels: Sequence[str] | None = None,
    require_real: bool = False,
    trusted_roots: Sequence[Path] = (),
    trust: bool | None = None,
) -> SentimentModel:
    """Load any model directory written by this pipeline.

    expected_labels: the class names of labels.json; a different label set is an error.
    require_real: a placeholder is an error instead of a PlaceholderModel.
    trusted_roots: folders whose scikit-learn artifacts load without `trust`
    (the project's models/ folder); `trust=True` allows any path.
    """
    path = Path(path)
    manifest = read_manifest(path)
    if expected_labels is not None and list(expected_labels) != manifest.labels:
        raise ArtifactError(
            f"{path} was trained for labels {manifest.labels}, but the data has "
            f"{list(expected_labels)} (labels.json); retrain it on the current data"
        )
    if require_real and manifest.kind == "placeholder":
        raise ArtifactError(
            f"{path} is a placeholder for model {manifest.name!r} (skipped: {manifest.reason}), "
            "not a trained model"
        )
    if trust is None:
        from sentiment_pipeline.settings import get_settings

        trust = get_settings().trust_artifacts
    trusted = bool(trust) or _is_within(path, trusted_roots)
    return _LOADERS[manifest.kind](path, manifest, trusted)
