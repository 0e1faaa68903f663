"""Fakes for the serving tests: a model that can block, fail or answer NaN, and providers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.models.artifacts.manifest import ModelManifest, read_manifest, softmax
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry.opening import LoadedModel
from sentiment_pipeline.registry.resolve import Folder, ResolvedModel
from sentiment_pipeline.serving.app import create_app
from sentiment_pipeline.serving.provider import RegistryProvider

LABELS = ["negative", "neutral", "positive"]


class FakeModel:
    """Scores each text by its length; counts its calls; can block on a gate, fail or give NaN."""

    def __init__(self, *, labels: list[str] | None = None, delay_s: float = 0.0,
                 nan: bool = False, name: str = "fake") -> None:
        self.manifest = ModelManifest(name=name, kind="sklearn", labels=labels or LABELS,
                                      metrics={"test_macro_f1": 0.7, "odd": float("nan")})
        self.delay_s = delay_s
        self.nan = nan
        self.calls: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.labels)

    def raw_scores(self, texts: list[str]) -> np.ndarray:
        self.gate.wait(10)
        self.calls.append(list(texts))
        time.sleep(self.delay_s)
        scores = np.array([[len(t) % 7, 1.0, 2.0][: len(self.labels)] for t in texts])
        return scores * np.nan if self.nan else scores

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return softmax(self.raw_scores(texts))

    def token_lengths(self, texts: list[str]) -> list[int]:
        return [len(t.split()) + 2 for t in texts]

    def predict(self, texts: list[str]) -> list[str]:
        return [self.labels[i] for i in np.argmax(self.raw_scores(texts), axis=1)]


def resolved_folder(path: Path, *, variants: dict[str, Path] | None = None,
                    **fields) -> ResolvedModel:
    """A ResolvedModel of the folder `path` (name "sentiment" unless given), its manifests read."""
    fields = {"name": "sentiment", "source": str(path), **fields}
    return ResolvedModel(
        path=path, manifest=read_manifest(path), **fields,
        variants={key: Folder(path=folder, manifest=read_manifest(folder))
                  for key, folder in (variants or {}).items()},
    )


def loaded(model: FakeModel, version: str | None = None, backend: str = "sklearn") -> LoadedModel:
    source = "models:/sentiment@champion" if version else "/models/fake"
    resolved = ResolvedModel(path=Path("/models/fake"), manifest=model.manifest, name="sentiment",
                             source=source, version=version, alias="champion" if version else None)
    return LoadedModel(model=model, resolved=resolved, backend=backend, path=resolved.path)


@dataclass
class FakeProvider:
    """Serves `model`; `poll` hands out `next` (or raises `poll_error`) when set."""

    model: FakeModel
    version: str | None = None
    next: LoadedModel | None = None
    poll_error: Exception | None = None
    load_error: Exception | None = None
    threads: int | None = 1
    polls: list[str] = field(default_factory=list)

    def load(self) -> LoadedModel:
        if self.load_error is not None:
            raise self.load_error
        return loaded(self.model, self.version)

    def reloadable(self) -> bool:
        return self.version is not None

    def poll(self, current: LoadedModel) -> LoadedModel | None:
        self.polls.append(current.resolved.version or "")
        if self.poll_error is not None:
            raise self.poll_error
        found, self.next = self.next, None
        return found


def folder_provider(folder: Path, backend: str = "auto") -> RegistryProvider:
    """The real provider for a model directory outside any project (trusted, as a test's)."""
    resolved = resolved_folder(folder, trusted=True)
    return RegistryProvider(resolved=resolved, backend=backend, model_name="sentiment",
                            paths=ProjectPaths.at(folder.parent), threads=1)


def app_for(provider, **settings):
    return create_app(ServeConfig(**settings), provider)
