"""create_app: the FastAPI service around one model provider, its errors and its OpenAPI docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException
from starlette.responses import Response

from sentiment_pipeline.config.entities import ServeConfig
from sentiment_pipeline.serving.backends import ModelProvider
from sentiment_pipeline.serving.batcher import InFlight
from sentiment_pipeline.serving.errors import ServingError, error_response
from sentiment_pipeline.serving.guard import Guard
from sentiment_pipeline.serving.metrics import ServingMetrics
from sentiment_pipeline.serving.routes import router
from sentiment_pipeline.serving.schemas import InvocationsRequest, PredictRequest
from sentiment_pipeline.serving.service import Service

TITLE = "sentiment-pipeline"
DESCRIPTION = (
    "Sentiment classification over HTTP. `POST /predict` speaks Hugging Face "
    "text-embeddings-inference's protocol, `POST /invocations` MLflow's scoring protocol. "
    "TEI's aliases `POST /` and `POST /invocations` for /predict are not honoured. Limits per "
    "request: {max_texts_per_request} texts (serve.max_texts_per_request), "
    "{max_text_chars} characters per text (serve.max_text_chars; longer: cut with truncate, "
    "else 413), {max_body_bytes} bytes of body (serve.max_body_bytes; 413). At most "
    "{max_concurrent_requests} requests in flight per worker process "
    "(serve.max_concurrent_requests; beyond it: 429 at once)."
)


def package_version() -> str:
    try:
        return version("sentiment-pipeline")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def create_app(config: ServeConfig, provider: ModelProvider) -> FastAPI:
    """The service: the provider's model is loaded, warmed up and batched in the lifespan.

    Start-up raises what loading or the warm-up raised, so a server that cannot serve never
    starts. `provider` is the seam for tests (a model directory, a fake, a reloading one).
    """
    metrics = ServingMetrics()
    in_flight = InFlight()  # counted by the guard, read by the batcher

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(config, provider, metrics, in_flight)
        await service.start()
        app.state.service = service
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title=TITLE,
        version=package_version(),
        description=DESCRIPTION.format(**config.model_dump()),
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.metrics = metrics
    app.state.service = None
    app.include_router(router)
    add_error_handlers(app)
    app.add_middleware(Guard, config=config, metrics=metrics, in_flight=in_flight)
    app.openapi = lambda: openapi_schema(app, config)  # type: ignore[method-assign]
    return app


def add_error_handlers(app: FastAPI) -> None:
    """Every error in TEI's shape ({"error", "error_type"}), MLflow's on /invocations."""

    async def serving_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServingError)
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

    async def unexpected(request: Request, exc: Exception) -> Response:
        return error_response(
            request.url.path,
            ServingError(500, "backend", f"internal error ({type(exc).__name__}); see the log"),
        )

    app.add_exception_handler(ServingError, serving_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def openapi_schema(app: FastAPI, config: ServeConfig) -> dict[str, Any]:
    """FastAPI's schema plus the /invocations body models and this server's limits."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (PredictRequest, InvocationsRequest):
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components[model.__name__] = body
    document_limits(components, config)
    app.openapi_schema = schema
    return schema


def document_limits(components: dict[str, Any], config: ServeConfig) -> None:
    """Write the configured limits into the request schemas (maxItems and descriptions)."""
    texts, chars = config.max_texts_per_request, config.max_text_chars
    note = (f" At most {texts} texts per request (serve.max_texts_per_request; more: 413) and "
            f"{chars} characters per text (serve.max_text_chars).")
    inputs = components["PredictRequest"]["properties"]["inputs"]
    inputs["description"] += note
    for variant in inputs.get("anyOf", []):
        if variant.get("type") == "array" and variant.get("items", {}).get("type") == "array":
            variant["maxItems"] = texts
            variant["items"]["minItems"] = 1
    for name in ("dataframe_split", "dataframe_records", "instances", "inputs"):
        prop = components["InvocationsRequest"]["properties"][name]
        prop["description"] = prop.get("description", "") + note
