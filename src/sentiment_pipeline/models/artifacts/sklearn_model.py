"""The `sklearn` kind: TF-IDF + classifier saved with skops, loaded from a fixed allow-list."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from sentiment_pipeline.io import atomic_dir
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    LabelledModel,
    ModelManifest,
    resolve_file,
    write_manifest,
)
from sentiment_pipeline.models.artifacts.pairs import pair_documents

SKOPS_FILE = "pipeline.skops"
# Every type beyond skops' defaults that our own training stages write (TF-IDF +
# LogisticRegression in models/train_baseline.py, TF-IDF + LGBMClassifier in
# models/train_lightgbm.py),
# found with skops.io.get_untrusted_types on fitted pipelines; tests/test_artifacts.py checks that
# the real pipelines need nothing else. Fixed here, never read from an artifact: a model folder is
# untrusted input. Add a type only after checking that building it cannot run code.
ALLOWED_TYPES: tuple[str, ...] = (
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
)
LGBM_CLASSIFIER = "lightgbm.sklearn.LGBMClassifier"
EXPECTED_SHAPE = "a Pipeline of a TfidfVectorizer and a LogisticRegression or LGBMClassifier"


class SklearnModel(LabelledModel):
    """A scikit-learn pipeline (TF-IDF + classifier) stored with skops."""

    def __init__(self, manifest: ModelManifest, estimator: Any) -> None:
        self.manifest = manifest
        self.estimator = estimator

    def predict_proba(self, texts: Sequence[Any]) -> np.ndarray:
        # A pair model's pipeline was trained on pair_document strings of its (text, aspect) pairs.
        inputs = pair_documents(texts) if self.manifest.input == "pair" else list(texts)
        proba = self.estimator.predict_proba(inputs)
        # Columns in label-id order even when a class was missing from training.
        classes = list(self.estimator.classes_)
        out = np.zeros((len(texts), len(self.manifest.labels)), dtype=np.float64)
        out[:, classes] = proba
        return out


def _type_name(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _describe(estimator: Any) -> str:
    if isinstance(estimator, Pipeline):
        return f"a Pipeline of {[type(step).__name__ for _, step in estimator.steps]}"
    return f"a {type(estimator).__name__}"


def check_estimator(estimator: Any, labels: Sequence[str], source: Path) -> None:
    """Refuse anything but the shape our stages write, or class ids outside 0..len(labels)-1."""
    steps = [step for _, step in estimator.steps] if type(estimator) is Pipeline else []
    shape_ok = (
        len(steps) == 2
        and type(steps[0]) is TfidfVectorizer
        and isinstance(steps[0].analyzer, str)
        and steps[0].tokenizer is None
        and steps[0].preprocessor is None
        and (type(steps[1]) is LogisticRegression or _type_name(steps[1]) == LGBM_CLASSIFIER)
    )
    if not shape_ok:
        raise ArtifactError(
            f"{source} holds {_describe(estimator)}, not what this pipeline's training stages "
            f"write ({EXPECTED_SHAPE}, default tokenizer); retrain the model"
        )
    classes = np.asarray(getattr(steps[1], "classes_", []))
    valid = set(range(len(labels)))
    if (
        classes.ndim != 1
        or not np.issubdtype(classes.dtype, np.integer)
        or not set(classes.tolist()) <= valid
    ):
        raise ArtifactError(
            f"{source} predicts classes {classes.tolist()}, but its manifest lists "
            f"{len(labels)} labels {list(labels)} (class ids 0..{len(labels) - 1}); the "
            "manifest and the estimator do not belong together: retrain the model"
        )


def untrusted_types(file: Path) -> list[str]:
    """The types beyond skops' defaults that `file` would build; damage is an ArtifactError."""
    import skops.io as sio

    try:
        return sorted(sio.get_untrusted_types(file=file))
    except Exception as exc:  # zipfile, json and skops errors: every damaged file is one error
        raise ArtifactError(
            f"{file} is not a readable skops file ({type(exc).__name__}: {exc}); it is damaged "
            "or was not written by this pipeline: retrain the model or restore the file "
            "(dvc checkout)"
        ) from exc


def check_types(file: Path) -> None:
    """Refuse a skops file that holds any type outside ALLOWED_TYPES, naming those types."""
    outside = [name for name in untrusted_types(file) if name not in ALLOWED_TYPES]
    if outside:
        raise ArtifactError(
            f"refusing to load {file}: it holds types outside this pipeline's allow-list "
            f"{outside}. Only the types our own training stages write may be loaded "
            "(models.artifacts.sklearn_model.ALLOWED_TYPES), whatever its manifest or --trust "
            "say; this file was not written by this pipeline: do not use it"
        )


def save_sklearn(target: Path, estimator: Any, manifest: ModelManifest) -> ModelManifest:
    """Atomically write a scikit-learn pipeline (skops) and its manifest.

    What could not be loaded back (another shape, a type outside ALLOWED_TYPES) is refused here.
    """
    import skops.io as sio

    manifest = manifest.model_copy(
        update={"kind": "sklearn", "status": "ready", "files": {"estimator": SKOPS_FILE}}
    )
    check_estimator(estimator, manifest.labels, target / SKOPS_FILE)
    with atomic_dir(target) as tmp:
        sio.dump(estimator, tmp / SKOPS_FILE)
        check_types(tmp / SKOPS_FILE)
        write_manifest(tmp, manifest)
    return manifest


def load(
    directory: Path,
    manifest: ModelManifest,
    *,
    trusted: bool,
    symlink_root: Path | None,
    threads: int | None = None,
) -> SklearnModel:
    """The SklearnModel of an `sklearn` model folder.

    trusted: the folder's location is trusted (the project's models/, or the user said so);
    the allow-list and the structure checks apply either way.
    """
    import skops.io as sio

    if not trusted:
        raise ArtifactError(
            f"refusing to load the scikit-learn artifact at {directory}: it is outside this "
            "project's models/ folder. Pass --trust (trust=True) or set "
            "SENTIMENT_PIPELINE_TRUST_ARTIFACTS=true if you trust where it came from"
        )
    name = manifest.files.get("estimator", SKOPS_FILE)
    file = resolve_file(directory, name, symlink_root)
    if not file.is_file():
        raise ArtifactError(
            f"{directory} lists {name} in its manifest but the file is missing; retrain the "
            "model or restore the file (dvc checkout)"
        )
    check_types(file)
    try:
        estimator = sio.load(file, trusted=list(ALLOWED_TYPES))
    except Exception as exc:  # skops raises many kinds on a damaged file
        raise ArtifactError(
            f"cannot load {file} ({type(exc).__name__}: {exc}); it is damaged: retrain the model "
            "or restore the file (dvc checkout)"
        ) from exc
    check_estimator(estimator, manifest.labels, file)
    return SklearnModel(manifest, estimator)
