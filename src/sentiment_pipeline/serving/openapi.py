"""The OpenAPI document: each route's errors, the request shapes and limits served, the token."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.insights.comments import ErrorKind
from sentiment_pipeline.serving.auth import is_open
from sentiment_pipeline.serving.errors import (
    INSIGHTS_STATUS,
    MLFLOW_ROUTES,
    ErrorType,
    mlflow_code,
)
from sentiment_pipeline.serving.schemas import (
    TEXTS_PER_INPUT,
    AnalyzeRequest,
    ErrorResponse,
    MlflowError,
    YouTubeAnalyzeRequest,
    invocations_request_model,
    predict_request_model,
)

ErrorBody = Literal["tei", "mlflow"]
SCHEMAS = "#/components/schemas/"
# The error types whose answers may carry Retry-After (the rate limit, a full parse queue,
# YouTube's quota and its 5xx answers when YouTube sent one).
RETRY_AFTER_TYPES = frozenset({"rate_limited", "overloaded", "youtube_quota",
                               "youtube_unavailable"})
RETRY_AFTER = {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}
BEARER = "bearer"
UNAUTHORIZED = "The token is set on the server and the request lacks it or has another one."


def error_responses(
    errors: Sequence[tuple[int, ErrorType, str]] = (),
    kinds: Mapping[ErrorKind, str] | None = None,
    *,
    body: ErrorBody = "tei",
) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route's errors: per status, what each error type sent with it
    means and the error body narrowed to exactly those types (or MLflow's code).

    errors: (status, the service's error type, when); kinds: an analysis's error kinds and
    when, each with its status from serving.errors.INSIGHTS_STATUS.
    """
    by_status: dict[int, dict[str, str]] = defaultdict(dict)
    for status, error_type, when in errors:
        if error_type not in get_args(ErrorType):
            raise ValueError(f"{error_type!r} is not one of the service's error types")
        by_status[status][error_type] = when
    for kind, when in (kinds or {}).items():
        by_status[INSIGHTS_STATUS[kind]][kind] = when
    return {status: error_answer(status, types, body) for status, types in sorted(
        by_status.items())}


def error_answer(status: int, types: Mapping[str, str], body: ErrorBody) -> dict[str, Any]:
    """One status's answer: the description, the narrowed error body, Retry-After if sent."""
    if body == "mlflow":
        description = " ".join(types.values())
        schema = {"allOf": [{"$ref": f"{SCHEMAS}MlflowError"},
                            {"properties": {"error_code": {"const": mlflow_code(status)}}}]}
    else:
        description = " ".join(f"{when} ({name})" for name, when in types.items())
        schema = {"allOf": [{"$ref": f"{SCHEMAS}ErrorResponse"},
                            {"properties": {"error_type": {"enum": sorted(types)}}}]}
    answer: dict[str, Any] = {"description": description,
                              "content": {"application/json": {"schema": schema}}}
    if RETRY_AFTER_TYPES & set(types):
        answer["headers"] = {"Retry-After": RETRY_AFTER}
    return answer


def openapi_schema(
    app: FastAPI, config: ServeConfig, insights: InsightsConfig, *, token: bool
) -> dict[str, Any]:
    """FastAPI's document plus the request bodies the routes read themselves (in the shapes
    and limits this server takes: a pair model's /predict takes pairs), the error bodies, and
    the token when one is set."""
    if app.openapi_schema:
        return app.openapi_schema
    service = getattr(app.state, "service", None)
    per_input = 2 if service is not None and service.takes_pairs else TEXTS_PER_INPUT
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    models: tuple[type[BaseModel], ...] = (
        predict_request_model(per_input, config.max_texts_per_request),
        invocations_request_model(config.max_texts_per_request),
        AnalyzeRequest, YouTubeAnalyzeRequest, ErrorResponse, MlflowError,
    )
    for model in models:
        body = model.model_json_schema(ref_template=SCHEMAS + "{model}")
        components.update(body.pop("$defs", {}))
        components[model.__name__] = body
    document_limits(components, config, insights)
    if token:
        document_token(schema)
    app.openapi_schema = schema
    return schema


def document_limits(
    components: dict[str, Any], config: ServeConfig, insights: InsightsConfig
) -> None:
    """The configured limits in the request schemas: the descriptions of the inference bodies,
    the comments of an analysis (maxItems) and the comments asked of YouTube (maximum)."""
    texts, chars = config.max_texts_per_request, config.max_text_chars
    note = (f" At most {texts} texts per request (serve.max_texts_per_request; more: 413) and "
            f"{chars} characters per text (serve.max_text_chars).")
    components["PredictRequest"]["properties"]["inputs"]["description"] += note
    for name in ("dataframe_split", "dataframe_records", "instances", "inputs"):
        prop = components["InvocationsRequest"]["properties"][name]
        prop["description"] = prop.get("description", "") + note
    limit = insights.max_comments_limit
    comments = components["AnalyzeRequest"]["properties"]["comments"]
    comments["maxItems"] = limit
    comments["description"] += f" At most {limit} (insights.max_comments_limit; more: 413)."
    max_comments = components["YouTubeAnalyzeRequest"]["properties"]["max_comments"]
    for variant in max_comments["anyOf"]:
        if variant.get("type") == "integer":
            variant["maximum"] = limit


def document_token(schema: dict[str, Any]) -> None:
    """The bearer token on every operation the token guards, with its 401 answer."""
    schema["components"]["securitySchemes"] = {BEARER: {
        "type": "http", "scheme": "bearer",
        "description": "The token in SENTIMENT_PIPELINE_API_TOKEN on the server."}}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if is_open(method.upper(), path):
                continue
            operation["security"] = [{BEARER: []}]
            body: ErrorBody = "mlflow" if path in MLFLOW_ROUTES else "tei"
            answer = error_answer(401, {"unauthorized": UNAUTHORIZED}, body)
            answer["headers"] = {"WWW-Authenticate": {
                "description": 'Bearer, or Bearer error="invalid_token" for a wrong token.',
                "schema": {"type": "string"}}}
            operation["responses"]["401"] = answer
