"""run_server: open the model once, then uvicorn with N workers, each building the app."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, ValidationError

from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.config.pipeline import PipelineConfig
from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.logs import configure_logging
from sentiment_pipeline.machine import usable_cores
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry.opening import LoadedModel, open_aspect_model, open_model
from sentiment_pipeline.registry.resolve import ResolvedModel
from sentiment_pipeline.service_settings import get_service_settings
from sentiment_pipeline.serving.app import create_app
from sentiment_pipeline.serving.deadlines import DeadlineProtocol
from sentiment_pipeline.serving.metrics import MULTIPROC_ENV
from sentiment_pipeline.serving.provider import RegistryProvider

logger = logging.getLogger(__name__)

# What the workers need (JSON of Launch): uvicorn starts them as fresh processes.
LAUNCH_ENV = "SENTIMENT_PIPELINE_SERVE_LAUNCH"
FACTORY = "sentiment_pipeline.serving.server:app_from_environment"
# How long requests in flight may take to finish after SIGTERM/SIGINT.
GRACEFUL_SHUTDOWN_S = 30
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Launch(BaseModel):
    """The resolved models (the primary and the aspect model, if any) and the serve and insights
    configs, from run_server to every worker."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    serve: ServeConfig
    insights: InsightsConfig = InsightsConfig()
    model_name: str
    project_root: str
    threads: int | None
    trust: bool | None = None  # serve --trust, for the versions a registry alias moves to
    resolved: ResolvedModel
    aspect_model_name: str = "aspect-classifier"
    aspect: ResolvedModel | None = None  # the aspect (pair) model served beside it, if any

    @classmethod
    def of(
        cls, resolved: ResolvedModel, serve: ServeConfig, *, model_name: str,
        paths: ProjectPaths, threads: int | None, insights: InsightsConfig | None = None,
        trust: bool | None = None, aspect: ResolvedModel | None = None,
        aspect_model_name: str = "aspect-classifier",
    ) -> Launch:
        return cls(
            serve=serve, insights=insights or InsightsConfig(), model_name=model_name,
            project_root=str(paths.root), threads=threads, trust=trust, resolved=resolved,
            aspect=aspect, aspect_model_name=aspect_model_name,
        )

    def provider(self, opened: LoadedModel | None = None) -> RegistryProvider:
        """The worker's provider; `opened`: the model this process opened already."""
        return self.provider_of(self.resolved, self.model_name, opened)

    def aspect_provider(self, opened: LoadedModel | None = None) -> RegistryProvider | None:
        """The worker's provider of the aspect model (None without one); `opened` as above."""
        if self.aspect is None:
            return None
        return self.provider_of(self.aspect, self.aspect_model_name, opened)

    def provider_of(
        self, resolved: ResolvedModel, model_name: str, opened: LoadedModel | None
    ) -> RegistryProvider:
        return RegistryProvider(
            resolved=resolved, backend=self.serve.backend, model_name=model_name,
            paths=ProjectPaths.at(self.project_root), threads=self.threads, trust=self.trust,
            opened=opened,
        )


def worker_threads(serve: ServeConfig, workers: int, cores: int | None = None) -> int:
    """Inference threads per worker: serve.threads, else the usable cores (affinity and cgroup
    quota, not the host's count) shared among the workers."""
    cores = usable_cores() if cores is None else cores
    return serve.threads or max(1, cores // workers)


@contextlib.contextmanager
def launch_environment(launch: Launch, workers: int) -> Iterator[None]:
    """LAUNCH_ENV for the workers and, with several, a fresh multiprocess metrics folder."""
    saved = {key: os.environ.get(key) for key in (LAUNCH_ENV, MULTIPROC_ENV)}
    metrics_dir = tempfile.mkdtemp(prefix="sentiment-serve-metrics-") if workers > 1 else None
    os.environ[LAUNCH_ENV] = launch.model_dump_json()
    if metrics_dir is not None:
        os.environ[MULTIPROC_ENV] = metrics_dir
    else:
        os.environ.pop(MULTIPROC_ENV, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


@contextlib.contextmanager
def sigterm_exits_cleanly() -> Iterator[None]:
    """Make SIGTERM a normal stop (exit 0) for the single-process server.

    uvicorn shuts down gracefully on SIGTERM and then raises the signal again for the handler
    that was there before it; with the default handler that kills the process (exit -15).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: logger.info("stopped by SIGTERM"))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_server(
    config: PipelineConfig,
    paths: ProjectPaths,
    *,
    model: str | None,
    host: str | None,
    port: int | None,
    workers: int,
    trust: bool | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; requests in flight then finish (up to GRACEFUL_SHUTDOWN_S).

    The model is opened here, once (open_model, with `trust` as predict takes it), so a bad
    --model, an untrusted folder or a serve.backend it lacks fails before any worker starts;
    so is the aspect model of serve.aspect_model (open_aspect_model: a model of single texts
    there fails too). One worker serves them; several each load them again (one copy per
    process) with their share of the cores as inference threads.
    """
    import uvicorn

    serve = config.serve
    names = config.register_
    threads = worker_threads(serve, workers)
    opened = open_model(
        model or serve.model, model_name=names.model_name, paths=paths,
        trust=trust, backend=serve.backend, threads=threads,
    )
    aspect = open_aspect_model(
        serve.aspect_model, model_name=names.aspect_model_name, paths=paths, trust=trust,
        backend=serve.backend, threads=threads,
    )
    launch = Launch.of(
        opened.resolved, serve, model_name=names.model_name, paths=paths,
        threads=threads, insights=config.insights, trust=trust,
        aspect=aspect.resolved if aspect is not None else None,
        aspect_model_name=names.aspect_model_name,
    )
    settings = get_service_settings()
    host = host or settings.host
    port = port if port is not None else settings.port
    logger.info("serving %s%s on http://%s:%d with %d worker(s), %d inference thread(s) each",
                opened.resolved.source,
                f" and the aspect model {aspect.resolved.source}" if aspect is not None else "",
                host, port, workers, launch.threads)
    if settings.api_token is None and host not in LOOPBACK:
        logger.warning("no SENTIMENT_PIPELINE_API_TOKEN: anyone who reaches %s:%d may use the "
                       "model and this server's YouTube quota", host, port)
    with launch_environment(launch, workers), sigterm_exits_cleanly():
        # Several workers are fresh processes: each builds the app from LAUNCH_ENV (FACTORY).
        app = FACTORY if workers > 1 else create_app(
            serve, launch.provider(opened), aspect_provider=launch.aspect_provider(aspect),
            insights=config.insights,
        )
        gc.freeze()  # see app_from_environment
        # uvicorn's own h11 protocol with the header and body deadlines it lacks.
        uvicorn.run(
            app, factory=workers > 1, host=host, port=port, workers=workers,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, http=DeadlineProtocol,
        )


def app_from_environment() -> FastAPI:
    """uvicorn's factory, in each worker: the app for the Launch run_server put in LAUNCH_ENV."""
    configure_logging(get_service_settings().verbose)
    try:
        launch = Launch.model_validate_json(os.environ[LAUNCH_ENV])
    except (KeyError, ValidationError) as exc:
        raise PipelineError(
            f"{LAUNCH_ENV} is missing or invalid ({exc}); start the server with "
            "`sentiment-pipeline serve`, which sets it"
        ) from exc
    app = create_app(launch.serve, launch.provider(), aspect_provider=launch.aspect_provider(),
                     insights=launch.insights)
    # What start-up made (the libraries, the model) lives as long as the process: out of the
    # cyclic collector's rounds, a full collection while a request runs does not walk it (one
    # over 440,000 objects held the event loop for 0.7 s on a busy 2-core machine).
    gc.freeze()
    return app
