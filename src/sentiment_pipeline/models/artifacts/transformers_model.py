"""The `transformers` kind: save_pretrained (safetensors) + tokenizer + model.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError

from sentiment_pipeline.io import atomic_dir
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    ModelManifest,
    TokenizedModel,
    max_length_param,
    resolve_file,
    write_manifest,
)

WEIGHTS_FILE = "model.safetensors"
DEFAULT_MAX_LENGTH = 128
DEFAULT_BATCH_SIZE = 64


class TransformersModel(TokenizedModel):
    """A fine-tuned sequence classifier and its tokenizer, ready for inference."""

    def __init__(
        self,
        manifest: ModelManifest,
        model: Any,
        tokenizer: Any,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: str | None = None,
    ) -> None:
        super().__init__(manifest, tokenizer, max_length=max_length, batch_size=batch_size)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()

    tensor_type = "pt"

    def logits(self, batch: Any) -> np.ndarray:
        with torch.inference_mode():
            inputs = {k: v.to(self.device) for k, v in batch.items()}
            return self.model(**inputs).logits.double().cpu().numpy()


def transformers_manifest(manifest: ModelManifest) -> ModelManifest:
    """`manifest` as the manifest of a ready transformers folder (kind, status, files)."""
    return manifest.model_copy(
        update={"kind": "transformers", "status": "ready", "files": {"weights": WEIGHTS_FILE}}
    )


def save_transformers(
    target: Path, model: Any, tokenizer: Any, manifest: ModelManifest
) -> ModelManifest:
    """Atomically write weights (safetensors), tokenizer and manifest into `target`."""
    manifest = transformers_manifest(manifest)
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if not (tmp / WEIGHTS_FILE).is_file():
            raise ArtifactError(f"save_pretrained wrote no {WEIGHTS_FILE} for {manifest.name!r}")
        write_manifest(tmp, manifest)
    return manifest


def load(
    directory: Path,
    manifest: ModelManifest,
    *,
    trusted: bool,
    symlink_root: Path | None,
    threads: int | None = None,
) -> TransformersModel:
    """The TransformersModel of a `transformers` model folder.

    Only safetensors weights and no remote code are loaded, so `trusted` changes nothing; every
    file of the folder (the library reads more than the manifest names) must stay inside it.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    for item in sorted(directory.iterdir()):
        resolve_file(directory, item.name, symlink_root)
    name = manifest.files.get("weights", WEIGHTS_FILE)
    if not resolve_file(directory, name, symlink_root).is_file():
        raise ArtifactError(
            f"{directory} lists {name} in its manifest but the file is missing; retrain the "
            "model or restore the folder (dvc checkout)"
        )
    max_length = max_length_param(manifest, directory, DEFAULT_MAX_LENGTH)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(
            directory, local_files_only=True, use_safetensors=True
        )
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        raise ArtifactError(
            f"cannot load the transformers model in {directory} ({type(exc).__name__}: {exc}); "
            f"its config.json, tokenizer files or {WEIGHTS_FILE} are damaged: retrain the model "
            "or restore the folder (dvc checkout)"
        ) from exc
    if model.config.num_labels != len(manifest.labels):
        raise ArtifactError(
            f"{directory}: the model has {model.config.num_labels} output classes but its "
            f"manifest lists {len(manifest.labels)} labels {manifest.labels}; retrain it"
        )
    if threads is not None:  # a serving worker shares the cores with its siblings
        torch.set_num_threads(threads)
    return TransformersModel(manifest, model, tokenizer, max_length=max_length)
