"""The `placeholder` kind: a skipped stage's model folder, a manifest that cannot predict."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sentiment_pipeline.io import atomic_dir
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    LabelledModel,
    ModelManifest,
    write_manifest,
)


class PlaceholderModel(LabelledModel):
    """A stage that was skipped; it cannot predict."""

    def __init__(self, manifest: ModelManifest) -> None:
        self.manifest = manifest

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        raise ArtifactError(
            f"model {self.manifest.name!r} is a placeholder (skipped: {self.manifest.reason}); "
            "it cannot predict"
        )


def refuse_placeholder(where: str | Path, manifest: ModelManifest) -> None:
    """The one refusal of a placeholder where a trained model is needed (`where`: its name)."""
    if manifest.kind == "placeholder":
        raise ArtifactError(
            f"{where} is a placeholder for model {manifest.name!r} (skipped: {manifest.reason}), "
            "not a trained model; train it or name another model"
        )


def save_placeholder(
    target: Path, name: str, labels: list[str], reason: str, params: dict | None = None
) -> ModelManifest:
    """Atomically write a placeholder model folder."""
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


def load(
    directory: Path,
    manifest: ModelManifest,
    *,
    trusted: bool,
    symlink_root: Path | None,
    threads: int | None = None,
) -> PlaceholderModel:
    """The PlaceholderModel of a placeholder folder (nothing but its manifest is read)."""
    return PlaceholderModel(manifest)
