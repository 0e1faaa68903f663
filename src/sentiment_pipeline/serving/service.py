"""The models served: loaded and warmed up at start-up, batched, swapped when their alias moves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from starlette.requests import Request

from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    ModelManifest,
    SentimentModel,
    softmax,
)
from sentiment_pipeline.registry.opening import LoadedModel
from sentiment_pipeline.serving.batcher import Batcher, InFlight, Scored
from sentiment_pipeline.serving.errors import ServingError
from sentiment_pipeline.serving.metrics import ServingMetrics
from sentiment_pipeline.serving.provider import ModelProvider

logger = logging.getLogger(__name__)

WARM_UP_TEXTS = [
    "warm-up",
    "A longer warm-up text, so that the first real request finds the model ready to answer.",
]
WARM_UP_PAIRS = [
    ("warm-up", "warm-up"),
    ("A longer warm-up text, so that the first real request finds the model ready to answer.",
     "model"),
]


def takes_pairs(model: SentimentModel) -> bool:
    """Whether one input of `model` is a (text, aspect) pair (its manifest's input)."""
    return model.manifest.input == "pair"


def warm_up_items(model: SentimentModel) -> list[Any]:
    """What the warm-up batch sends `model`: texts, or (text, aspect) pairs for a pair model."""
    return list(WARM_UP_PAIRS) if takes_pairs(model) else list(WARM_UP_TEXTS)


def check_warm_up(model: SentimentModel, scores: np.ndarray) -> None:
    """The warm-up answer must be finite scores, one row per input, one column per label."""
    scores = np.asarray(scores)
    expected = (len(warm_up_items(model)), len(model.labels))
    if scores.shape != expected or not np.isfinite(scores).all():
        raise ArtifactError(
            f"the {model.manifest.kind} model {model.manifest.name!r} answered the warm-up batch "
            f"with scores of shape {scores.shape} (expected {expected}, all finite): "
            f"{np.array2string(scores, precision=3)[:200]}"
        )


def describe(loaded: LoadedModel) -> str:
    version = f" version {loaded.resolved.version}" if loaded.resolved.version else ""
    return (f"{loaded.resolved.name}{version} ({loaded.model.manifest.kind}) from {loaded.path} "
            f"on {loaded.backend}")


class Service:
    """One worker's model, its batcher and its reload loop; `role` names it in the log, the
    metrics and /info ("primary": the one /predict serves, "aspect": the one beside it)."""

    def __init__(
        self,
        config: ServeConfig,
        provider: ModelProvider,
        metrics: ServingMetrics,
        in_flight: InFlight | None = None,
        *,
        role: str = "primary",
    ) -> None:
        self.config = config
        self.role = role
        self.in_flight = in_flight
        self.provider = provider
        self.metrics = metrics
        self.current: LoadedModel | None = None
        self.batcher: Batcher | None = None
        self.ready = False
        self._reloader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load the model, answer a warm-up batch, then serve; any failure is raised."""
        loaded = await asyncio.to_thread(self.provider.load)
        self.batcher = Batcher(
            loaded.model,
            max_batch_tokens=self.config.max_batch_tokens,
            max_batch_requests=self.config.max_batch_requests,
            max_wait_ms=self.config.max_wait_ms,
            observer=self.metrics,
            on_queue_size=lambda size: self.metrics.report_queue(self.role, size),
            in_flight=self.in_flight,
        )
        self.batcher.start()
        try:
            check_warm_up(loaded.model,
                          await self.batcher.run(loaded.model, warm_up_items(loaded.model)))
        except BaseException:
            await self.batcher.stop()
            raise
        self.current = loaded
        self.metrics.serving(loaded.info_labels)
        self.ready = True
        logger.info("serving the %s model %s", self.role, describe(loaded))
        if self.config.reload_interval_s > 0 and self.provider.reloadable():
            self._reloader = asyncio.get_running_loop().create_task(
                self._watch(), name=f"reload {self.role}")

    @property
    def takes_pairs(self) -> bool:
        """Whether the model served takes (text, aspect) pairs (a reload cannot change it)."""
        return self.current is not None and takes_pairs(self.current.model)

    async def stop(self) -> None:
        """Finish what is queued, then stop (uvicorn has let the requests in flight finish)."""
        self.ready = False
        if self._reloader is not None:
            self._reloader.cancel()
            await asyncio.gather(self._reloader, return_exceptions=True)
        if self.batcher is not None:
            await self.batcher.stop()
        self.metrics.process_exited()

    async def score(self, texts: Sequence[Any]) -> Scored:
        """Raw scores of `texts` (pairs for a pair model) from the current model; a failed
        model call is a 424."""
        if not self.ready or self.batcher is None:
            raise ServingError(503, "unhealthy", "the model is not loaded (yet); retry shortly")
        try:
            return await self.batcher.scores(list(texts))
        except Exception as exc:  # noqa: BLE001 - the batcher logged it; the client gets a 424
            raise ServingError(
                424, "backend", f"inference failed ({type(exc).__name__}: {exc})"
            ) from exc

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.config.reload_interval_s)
            await self.reload()

    async def reload(self) -> bool:
        """Swap in a new model if the provider has one; the old one serves until then.

        A failed reload (the registry, the download, loading, a new label set or input kind,
        or the warm-up) is logged and keeps the current model.
        """
        current = self.current
        if current is None or self.batcher is None:
            return False
        try:
            loaded = await asyncio.to_thread(self.provider.poll, current)
            if loaded is None:
                return False
            if loaded.model.labels != current.model.labels:
                raise ArtifactError(
                    f"the new model has labels {loaded.model.labels}, the served one "
                    f"{current.model.labels}; restart the server to change the label set"
                )
            if takes_pairs(loaded.model) != takes_pairs(current.model):
                raise ArtifactError(
                    f"the new model takes input {loaded.model.manifest.input!r}, the served one "
                    f"{current.model.manifest.input!r}; restart the server to change it"
                )
            scores = await asyncio.to_thread(loaded.model.raw_scores, warm_up_items(loaded.model))
            check_warm_up(loaded.model, scores)
        except Exception:  # noqa: BLE001 - a failed reload must not stop the service
            logger.exception("reloading the %s model failed; still serving %s", self.role,
                             describe(current))
            self.metrics.reloads.labels(result="failure").inc()
            return False
        self.batcher.model = loaded.model
        self.current = loaded
        self.metrics.serving(loaded.info_labels, current.info_labels)
        self.metrics.reloads.labels(result="success").inc()
        logger.info("now serving the %s model %s (was %s)", self.role, describe(loaded),
                    describe(current))
        return True


class ServedModel:
    """A service's model as a SentimentModel (what the insights analysis takes): the one the
    service serves now, so it follows its alias, its calls batched with the service's others
    under the same token budget.

    Its model calls block until answered: make them from another thread (asyncio.to_thread),
    never on the event loop (that is a RuntimeError, not a deadlock). ServingError as
    Service.score raises it (503 before the model serves, 424 when a model call fails).
    """

    def __init__(self, service: Service, loop: asyncio.AbstractEventLoop) -> None:
        self.service = service
        self.loop = loop

    @property
    def loaded(self) -> LoadedModel:
        """The model served now (its name, version and runtime)."""
        if self.service.current is None:
            raise ServingError(503, "unhealthy",
                               f"the {self.service.role} model is not loaded (yet)")
        return self.service.current

    @property
    def manifest(self) -> ModelManifest:
        return self.loaded.model.manifest

    @property
    def labels(self) -> list[str]:
        return self.loaded.model.labels

    def raw_scores(self, items: Sequence[Any]) -> np.ndarray:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            raise RuntimeError(
                f"the served {self.service.role} model's calls block until answered; call "
                "them from another thread (asyncio.to_thread), not on the event loop"
            )
        future = asyncio.run_coroutine_threadsafe(self.service.score(items), self.loop)
        return future.result().scores

    def predict_proba(self, items: Sequence[Any]) -> np.ndarray:
        return softmax(self.raw_scores(items))

    def predict(self, items: Sequence[Any]) -> list[str]:
        labels = self.labels
        return [labels[i] for i in np.argmax(self.raw_scores(items), axis=1)]

    def token_lengths(self, items: Sequence[Any]) -> list[int]:
        return self.loaded.model.token_lengths(items)


def get_service(request: Request) -> Service:
    """The app's service, once its model answers (503 before); tests may override it."""
    service = request.app.state.service
    if service is None or not service.ready:
        raise ServingError(503, "unhealthy", "the model is not loaded (yet); retry shortly")
    return service
