"""create_app: the FastAPI service around one model provider, its errors and its OpenAPI docs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.insights.comments import InsightsError
from sentiment_pipeline.service_settings import ServiceSettings, get_service_settings
from sentiment_pipeline.serving.auth import TokenAuth
from sentiment_pipeline.serving.batcher import InFlight
from sentiment_pipeline.serving.dashboard import dashboard_router
from sentiment_pipeline.serving.deadlines import DEADLINES, Deadlines
from sentiment_pipeline.serving.errors import (
    ServingError,
    error_response,
    insights_error_response,
)
from sentiment_pipeline.serving.guard import REFUSAL, Guard
from sentiment_pipeline.serving.head import HeadAsGet
from sentiment_pipeline.serving.insights_routes import router as insights_router
from sentiment_pipeline.serving.metrics import ServingMetrics
from sentiment_pipeline.serving.openapi import openapi_schema
from sentiment_pipeline.serving.pool import ParsePool
from sentiment_pipeline.serving.provider import ModelProvider
from sentiment_pipeline.serving.ratelimit import RateLimiter
from sentiment_pipeline.serving.routes import router
from sentiment_pipeline.serving.service import ServedModel, Service

TITLE = "sentiment-pipeline"
DESCRIPTION = (
    "Sentiment classification over HTTP. `POST /predict` speaks Hugging Face "
    "text-embeddings-inference's protocol, `POST /invocations` MLflow's scoring protocol; a "
    "pair model takes (text, aspect) pairs on both (`GET /info` lists the models loaded). "
    "TEI's aliases `POST /` and `POST /invocations` for /predict are not honoured. Limits per "
    "request: {max_texts_per_request} texts (serve.max_texts_per_request), "
    "{max_text_chars} characters per text (serve.max_text_chars; longer: cut with truncate, "
    "else 413), {max_body_bytes} bytes of body (serve.max_body_bytes; 413). At most "
    "{max_concurrent_requests} requests in flight per worker process "
    "(serve.max_concurrent_requests, counted once a body is in; beyond it: 429 at once). "
    "Headers must arrive within {header_timeout_s} s and a body within {body_timeout_s} s "
    "after them (serve.header_timeout_s, serve.body_timeout_s; 408). "
    "Audience insights: `POST /v1/analyze` (comments as JSON, or a file upload of at most "
    "{max_upload_bytes} bytes, insights.max_upload_bytes) and `POST /v1/youtube/analyze` "
    "(rate-limited per client address and server process: 429 with Retry-After); the dashboard "
    "is at `/`. When SENTIMENT_PIPELINE_API_TOKEN is set, every route but /health and the "
    "dashboard's files needs `Authorization: Bearer <token>` (401 otherwise, for every "
    "method and path alike). HEAD is answered wherever GET is."
)
# CORS for the origins in SENTIMENT_PIPELINE_CORS_ORIGINS: what a page there may send and read.
CORS_METHODS = ["GET", "POST", "OPTIONS"]
CORS_HEADERS = ["Authorization", "Content-Type"]
CORS_EXPOSED = ["Retry-After", "x-queue-time", "x-inference-time", "x-total-time"]


def package_version() -> str:
    try:
        return version("sentiment-pipeline")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def create_app(
    config: ServeConfig,
    provider: ModelProvider,
    *,
    aspect_provider: ModelProvider | None = None,
    insights: InsightsConfig | None = None,
    settings: ServiceSettings | None = None,
    pool: ParsePool | None = None,
) -> FastAPI:
    """The service: the provider's model is loaded, warmed up and batched in the lifespan, and
    beside it the aspect (pair) model of `aspect_provider`, if any, the same way.

    Start-up raises what loading or the warm-up raised, so a server that cannot serve never
    starts. `provider` is the seam for tests (a model directory, a fake, a reloading one).
    The aspect model is app.state.aspect_model (a ServedModel, None without one), its
    Service app.state.aspect_service.
    `insights` (params.yaml insights:) sets the /v1 routes' limits; `settings` (default
    get_service_settings()) the API token, the CORS origins, the YouTube key and the rate limit;
    `pool` (default: serve.max_parse_workers processes) parses, reads uploads and analyses.
    The lifespan hands serve.header_timeout_s and body_timeout_s to the server's protocol
    (serving/deadlines.py) in its state.
    """
    insights = insights or InsightsConfig()
    settings = settings or get_service_settings()
    metrics = ServingMetrics()
    in_flight = InFlight()  # counted by the guard, read by the batcher
    pool = pool or ParsePool.of(config)
    deadlines = Deadlines(
        header_s=config.header_timeout_s, body_s=config.body_timeout_s,
        on_header_timeout=lambda: metrics.observe_refused(408, "header_timeout"),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        services = [Service(config, provider, metrics, in_flight)]
        if aspect_provider is not None:
            services.append(Service(config, aspect_provider, metrics, in_flight, role="aspect"))
        try:
            for service in services:
                await service.start()
            app.state.service = services[0]
            if aspect_provider is not None:
                app.state.aspect_service = services[1]
                app.state.aspect_model = ServedModel(services[1], asyncio.get_running_loop())
            yield {DEADLINES: deadlines}
        finally:
            for service in reversed(services):
                await service.stop()
            await asyncio.to_thread(pool.close)

    app = FastAPI(
        title=TITLE,
        version=package_version(),
        description=DESCRIPTION.format(**config.model_dump(),
                                       max_upload_bytes=insights.max_upload_bytes),
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.insights = insights
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.service = None
    app.state.aspect_service = None
    app.state.aspect_model = None
    app.state.pool = pool
    # Per process: each worker (and each replica) keeps its own buckets.
    app.state.youtube_limiter = RateLimiter(
        rate_per_minute=settings.youtube_rate_per_minute, burst=settings.youtube_burst
    )
    app.include_router(router)
    app.include_router(insights_router)
    app.include_router(dashboard_router())
    add_error_handlers(app)
    add_middleware(app, config, insights, settings, metrics, in_flight)
    app.openapi = lambda: openapi_schema(  # type: ignore[method-assign]
        app, config, insights, token=bool(api_token(settings)))
    return app


def api_token(settings: ServiceSettings) -> str:
    """The token every request but the open ones must carry ('' when none is set)."""
    return settings.api_token.get_secret_value() if settings.api_token else ""


def add_middleware(
    app: FastAPI, config: ServeConfig, insights: InsightsConfig, settings: ServiceSettings,
    metrics: ServingMetrics, in_flight: InFlight,
) -> None:
    """From the outside in: HEAD as GET, CORS (so preflights and 401s carry its headers), the
    token (so no unauthenticated request holds a slot or sends a body), the guard's limits."""
    app.add_middleware(Guard, config=config, metrics=metrics, in_flight=in_flight,
                       insights=insights)
    token = api_token(settings)
    if token:
        app.add_middleware(TokenAuth, token=token)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS, expose_headers=CORS_EXPOSED, allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(HeadAsGet)


def add_error_handlers(app: FastAPI) -> None:
    """Every error in TEI's shape ({"error", "error_type"}), MLflow's on /invocations."""

    async def serving_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServingError)
        request.scope[REFUSAL] = exc.reason
        return error_response(request.url.path, exc)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
            for error in exc.errors()[:6]
        )
        message = f"invalid request ({problems})"
        return error_response(request.url.path, ServingError(422, "validation", message))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = "validation" if exc.status_code < 500 else "backend"
        response = error_response(request.url.path, ServingError(exc.status_code, kind,
                                                                 str(exc.detail)))
        response.headers.update(exc.headers or {})
        return response

    async def insights_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InsightsError)
        request.scope[REFUSAL] = exc.kind
        return insights_error_response(exc)

    async def unexpected(request: Request, exc: Exception) -> Response:
        return error_response(
            request.url.path,
            ServingError(500, "backend", f"internal error ({type(exc).__name__}); see the log"),
        )

    app.add_exception_handler(ServingError, serving_error)
    app.add_exception_handler(InsightsError, insights_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
