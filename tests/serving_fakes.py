"""The one set of serving fakes: a model that can be held, fail or answer NaN; providers; a
parse pool that holds its jobs; an app served in-process."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.models.artifacts.manifest import ModelManifest, read_manifest, softmax
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry.opening import LoadedModel
from sentiment_pipeline.registry.resolve import Folder, ResolvedModel
from sentiment_pipeline.serving.app import create_app
from sentiment_pipeline.serving.pool import ParsePool
from sentiment_pipeline.serving.provider import RegistryProvider

LABELS = ["negative", "neutral", "positive"]
GATE_TIMEOUT_S = 10


class FakeModel:
    """Scores each text by its length; records its calls and the threads they ran on; can be
    held at a gate, fail on one text, or answer NaN.

    The gate is a barrier, not a delay: a call that finds it closed for GATE_TIMEOUT_S fails
    (its requests get the AssertionError), so a test that never opens it fails instead of
    passing late. `wait_called(n)` blocks until n calls have started.
    """

    def __init__(self, *, labels: list[str] | None = None, nan: bool = False,
                 fail_on: str | None = None, name: str = "fake") -> None:
        self.manifest = ModelManifest(name=name, kind="sklearn", labels=labels or LABELS,
                                      metrics={"test_macro_f1": 0.7, "odd": float("nan")})
        self.nan = nan
        self.fail_on = fail_on
        self.calls: list[list[str]] = []
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self._started = 0
        self._called = threading.Condition()

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.labels)

    def raw_scores(self, texts: list[str]) -> np.ndarray:
        with self._called:
            self._started += 1
            self._called.notify_all()
        if not self.gate.wait(GATE_TIMEOUT_S):
            raise AssertionError(f"the model's gate stayed closed for {GATE_TIMEOUT_S} s")
        self.calls.append(list(texts))
        self.threads.add(threading.current_thread().name)
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError(f"cannot score {self.fail_on!r}")
        scores = np.array([[len(t), 0.0, -len(t)][: len(self.labels)] for t in texts])
        return scores * np.nan if self.nan else scores

    def wait_called(self, count: int = 1) -> None:
        """Block until `count` model calls have started (fail after GATE_TIMEOUT_S)."""
        with self._called:
            if not self._called.wait_for(lambda: self._started >= count, GATE_TIMEOUT_S):
                raise AssertionError(f"{self._started} model calls started, expected {count}")

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


class HeldExecutor(ThreadPoolExecutor):
    """The parse pool's jobs on threads, each held at `gate` (a barrier: closed for
    GATE_TIMEOUT_S, the job fails); `submitted` counts them, `threads` names where they ran."""

    def __init__(self, workers: int = 2) -> None:
        super().__init__(workers)
        self.gate = threading.Event()
        self.submitted = 0
        self.threads: list[threading.Thread] = []

    def submit(self, fn, /, *args, **kwargs) -> Future:
        def held():
            self.threads.append(threading.current_thread())
            if not self.gate.wait(GATE_TIMEOUT_S):
                raise AssertionError(f"the parse gate stayed closed for {GATE_TIMEOUT_S} s")
            return fn(*args, **kwargs)

        self.submitted += 1
        return super().submit(held)


def held_pool(config: ServeConfig) -> tuple[ParsePool, HeldExecutor]:
    """A parse pool of `config`'s size whose jobs wait for the executor's gate."""
    executor = HeldExecutor(config.max_parse_workers)
    return ParsePool.of(config, executor=lambda workers: executor), executor


def serve_async(app, scenario):
    """`await scenario(client)` with an httpx client of the started app; at most 30 s."""
    async def main():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await scenario(client)

    return asyncio.run(asyncio.wait_for(main(), 30))


async def until(condition, timeout_s: float = 10.0) -> None:
    """Let the event loop run until `condition()` holds; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.001)
