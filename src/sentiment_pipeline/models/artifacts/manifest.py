"""The bottom of the artifact layer: model.json, the SentimentModel interface, safe file access."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sentiment_pipeline.errors import PipelineError, shortened
from sentiment_pipeline.io import atomic_dir, read_json, to_jsonable
from sentiment_pipeline.models.artifacts.pairs import PairStyle, check_pairs, pair_segments

logger = logging.getLogger(__name__)

MANIFEST = "model.json"
Kind = Literal["sklearn", "transformers", "onnx", "placeholder"]
Precision = Literal["fp32", "int8"]
# Manifests written before the skops allow-list moved into our code carry this key.
LEGACY_KEYS = ("trusted_types",)


class ArtifactError(PipelineError):
    """A model folder is missing, damaged, untrusted or of the wrong kind."""


class ModelManifest(BaseModel):
    """The model.json at the root of every model folder."""

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
    precision: Precision | None = Field(
        None, description="Numeric precision of an exported (onnx) model: fp32 or int8."
    )
    source_hash: str | None = Field(
        None, description="content_hash of the model folder this one was exported from."
    )
    input: Literal["text", "pair"] = Field(
        "text",
        description="What one example is: a text, or a (text, aspect) pair (an aspect model).",
    )
    pair_style: PairStyle | None = Field(
        None, description="A pair model's first segment: the text as is, or its aspect marked."
    )
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    files: dict[str, str] = Field(
        default_factory=dict, description="Role -> file name, relative to the model folder."
    )

    @model_validator(mode="after")
    def _placeholder_consistency(self) -> ModelManifest:
        if (self.kind == "placeholder") != (self.status == "skipped"):
            raise ValueError("kind 'placeholder' goes with status 'skipped', and only with it")
        if self.kind == "placeholder" and not self.reason:
            raise ValueError("a placeholder needs a reason")
        if self.pair_style is not None and self.input != "pair":
            raise ValueError("pair_style is for pair models (input 'pair') only")
        return self


@runtime_checkable
class SentimentModel(Protocol):
    """What evaluation, registration and serving need from any model."""

    manifest: ModelManifest

    @property
    def labels(self) -> list[str]: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def raw_scores(self, texts: Sequence[str]) -> np.ndarray: ...

    def token_lengths(self, texts: Sequence[str]) -> list[int]: ...

    def predict(self, texts: Sequence[str]) -> list[str]: ...


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of raw scores (logits), computed stably in float64."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class LabelledModel:
    """Base class of the model kinds: `labels` and `predict` on top of `predict_proba`.

    A kind with logits (transformers, onnx) implements `raw_scores` and inherits
    `predict_proba` = softmax(raw_scores); a kind with probabilities (sklearn) implements
    `predict_proba` and inherits `raw_scores` = log-probabilities. `token_lengths` is what a
    serving batcher budgets with: the tokenizer's count where there is one, else words + 2.
    """

    manifest: ModelManifest

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.labels)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if type(self).raw_scores is LabelledModel.raw_scores:  # pragma: no cover - abstract
            raise NotImplementedError(f"{type(self).__name__} implements no scores")
        return softmax(self.raw_scores(texts))

    def raw_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Unnormalised class scores: logits, or log-probabilities for a probabilistic model."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(texts))

    def token_lengths(self, texts: Sequence[Any]) -> list[int]:
        if self.manifest.input == "pair":
            pairs = check_pairs(texts)
            return [len(text.split()) + len(aspect.split()) + 3 for text, aspect in pairs]
        return [len(str(text).split()) + 2 for text in texts]

    def predict(self, texts: Sequence[str]) -> list[str]:
        proba = self.predict_proba(texts)
        return [self.manifest.labels[i] for i in np.argmax(proba, axis=1)]


def _within(path: Path, root: Path | None) -> bool:
    return root is not None and path.is_relative_to(root.resolve())


def _link_refusal(link: Path, target: Path, symlink_root: Path | None) -> ArtifactError:
    where = (
        f"the project's DVC cache {symlink_root}"
        if symlink_root is not None
        else "a project's DVC cache (no project was given, so no link is followed)"
    )
    return ArtifactError(
        f"{link} is a symbolic link to {target}; a model folder and its files may link only "
        f"into {where}. Copy the real files into the model folder or retrain the model"
    )


def model_folder(path: str | Path, symlink_root: Path | None = None) -> Path:
    """The location of a model folder (its parents resolved), checked to be a directory.

    The folder itself may be a symbolic link only into `symlink_root` (the DVC cache).
    """
    location = Path(os.path.abspath(Path(path).expanduser()))
    location = location.parent.resolve() / location.name
    if location.is_symlink() and not _within(location.resolve(), symlink_root):
        raise _link_refusal(location, location.resolve(), symlink_root)
    if not location.is_dir():
        raise ArtifactError(f"no model directory at {path}; train the model or fix the path")
    return location


def resolve_file(directory: Path, name: str, symlink_root: Path | None) -> Path:
    """The real path of the file `name` of a model folder, refused if it could lead outside.

    `name` must be relative and free of '..'. A symbolic link on the way is followed only
    when its target lies in `symlink_root` (DVC's `cache.type: symlink`).
    """
    relative = PurePosixPath(name)
    if not relative.parts or relative.is_absolute() or ".." in relative.parts:
        raise ArtifactError(
            f"{directory / MANIFEST} names the file {name!r}; a manifest may name only files "
            "inside its model folder (a relative path without '..'). This folder was not "
            "written by this pipeline or was edited: retrain the model"
        )
    folder = directory.resolve()
    candidate = folder.joinpath(*relative.parts)
    resolved = candidate.resolve()
    steps = [folder.joinpath(*relative.parts[: i + 1]) for i in range(len(relative.parts))]
    if any(step.is_symlink() for step in steps):
        if not _within(resolved, symlink_root):
            raise _link_refusal(candidate, resolved, symlink_root)
    elif not resolved.is_relative_to(folder):  # pragma: no cover - only links leave a folder
        raise ArtifactError(f"{candidate} resolves to {resolved}, outside {folder}")
    return resolved


# The longest params.max_length a tokenising kind's manifest may set (training allows 4,096): a
# model folder is untrusted input, and the tokenizer and the graph allocate by it.
MAX_TOKENS = 65_536


def max_length_param(manifest: ModelManifest, directory: Path, default: int) -> int:
    """params.max_length of a transformers or onnx manifest (`default` when absent), checked."""
    value = manifest.params.get("max_length", default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOKENS:
        raise ArtifactError(
            f"{directory / MANIFEST} sets params.max_length to {shortened(repr(value))}; "
            f"expected a whole number of tokens from 1 to {MAX_TOKENS:,}: train or export the "
            "model again"
        )
    return value


class TokenizedModel(LabelledModel):
    """Base of the kinds that tokenise (transformers, onnx): `logits` of one padded batch.

    Texts are tokenised once, sorted by length and run in batches of `batch_size` texts of
    similar length, so padding stays short; scores come back in input order.
    """

    tensor_type = "np"  # what tokenizer.pad hands to `logits`: "np" or "pt"

    def __init__(
        self, manifest: ModelManifest, tokenizer: Any, *, max_length: int, batch_size: int
    ) -> None:
        self.manifest = manifest
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size

    def tokenize(self, items: Sequence[Any]) -> Any:
        """The tokenizer's encodings of texts, or of (text, aspect) pairs for a pair model."""
        if self.manifest.input == "pair":
            firsts, seconds = pair_segments(items, self.manifest.pair_style)
            return self.tokenizer(firsts, seconds, truncation=True, max_length=self.max_length)
        return self.tokenizer([str(t) for t in items], truncation=True, max_length=self.max_length)

    def encode(self, texts: Sequence[Any]) -> list[list[int]]:
        return self.tokenize(texts)["input_ids"]

    def padded(self, encoded: Any, index: Sequence[int]) -> Any:
        """One batch of rows `index` of `encoded`, padded; a pair model's segment ids go along."""
        names = ["input_ids"]
        if self.manifest.input == "pair" and "token_type_ids" in encoded:
            names.append("token_type_ids")
        return self.tokenizer.pad(
            {name: [encoded[name][i] for i in index] for name in names},
            return_tensors=self.tensor_type,
        )

    def logits(self, batch: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def raw_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Logits (float64) in input order."""
        out = np.zeros((len(texts), len(self.manifest.labels)), dtype=np.float64)
        if not len(texts):
            return out
        encoded = self.tokenize(texts)
        order = np.argsort([len(ids) for ids in encoded["input_ids"]], kind="stable")
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            out[index] = self.logits(self.padded(encoded, index))
        return out

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.encode(texts)]


# Records about a model rather than the model: left out of its content hash, so the same weights
# trained again, or the registry's copy annotated with its test metrics, hash the same.
VOLATILE_KEYS = ("created_at", "mlflow_run_id", "metrics")


def content_hash(directory: Path) -> str:
    """The project's one content hash of a model folder: sha256 over its files' names and bytes.

    Every regular file below `directory` counts (sorted by relative path), model.json without
    VOLATILE_KEYS. Returns "sha256:<hex>".
    """
    digest = hashlib.sha256()
    root = Path(directory)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative == MANIFEST:
            payload = read_json(path)
            if isinstance(payload, dict):
                for key in VOLATILE_KEYS:
                    payload.pop(key, None)
            data = json.dumps(payload, sort_keys=True).encode()
        else:
            data = path.read_bytes()
        digest.update(relative.encode() + b"\0" + str(len(data)).encode() + b"\0")
        digest.update(data)
    return f"sha256:{digest.hexdigest()}"


def write_manifest(directory: Path, manifest: ModelManifest) -> None:
    payload = to_jsonable(manifest.model_dump(mode="json"))
    (directory / MANIFEST).write_text(json.dumps(payload, indent=2) + "\n")


def read_manifest(path: str | Path, *, symlink_root: Path | None = None) -> ModelManifest:
    """The manifest of a model folder; every problem is one ArtifactError.

    A manifest from before the skops allow-list may still list `trusted_types`: the key is
    ignored (with a warning), because what a loader may build is fixed in our code.
    """
    folder = model_folder(path, symlink_root)
    manifest_path = resolve_file(folder, MANIFEST, symlink_root)
    if not manifest_path.is_file():
        raise ArtifactError(
            f"{path} has no {MANIFEST} manifest; it is not a model directory written by "
            "this pipeline (expected kind sklearn, transformers, onnx or placeholder)"
        )
    try:
        payload = read_json(manifest_path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(
            f"{folder / MANIFEST} is not valid JSON ({exc}); retrain the model"
        ) from exc
    if isinstance(payload, dict):
        for key in LEGACY_KEYS:
            if key in payload:
                del payload[key]
                logger.warning(
                    "%s lists %r, which is ignored: the types a model may hold are fixed "
                    "in this pipeline's code; retrain the model to drop the key",
                    folder / MANIFEST,
                    key,
                )
    try:
        return ModelManifest.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise ArtifactError(f"{folder / MANIFEST} is corrupt: {problems}") from exc


def copy_model(source_dir: Path, target_dir: Path, manifest: ModelManifest) -> ModelManifest:
    """Atomically copy every regular file of `source_dir` but model.json, with a new manifest.

    Every file the new manifest names must be among the copied ones.
    """
    with atomic_dir(target_dir) as tmp:
        for item in sorted(source_dir.iterdir()):
            if item.name != MANIFEST and item.is_file():
                shutil.copy2(item, tmp / item.name)
        for role, name in manifest.files.items():
            if not resolve_file(tmp, name, None).is_file():
                raise ArtifactError(
                    f"the manifest of {manifest.name!r} names {name!r} as its {role}, but "
                    f"{source_dir} has no such file"
                )
        write_manifest(tmp, manifest)
    return manifest
