"""The endpoints: /predict (TEI), /invocations (MLflow), /health, /info, /metrics."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from sentiment_pipeline.models.artifacts.manifest import softmax
from sentiment_pipeline.serving.batcher import Scored
from sentiment_pipeline.serving.errors import ServingError
from sentiment_pipeline.serving.guard import START
from sentiment_pipeline.serving.info import InfoResponse, loaded_info
from sentiment_pipeline.serving.inputs import (
    invocation_texts,
    predict_input,
)
from sentiment_pipeline.serving.openapi import error_responses
from sentiment_pipeline.serving.pool import ParsePool
from sentiment_pipeline.serving.schemas import (
    Batching,
    HealthResponse,
    InvocationsResponse,
    Limits,
    PredictResponse,
)
from sentiment_pipeline.serving.service import Service, get_service

router = APIRouter()
FLOAT_MAX = float(np.finfo(np.float32).max)
TIMING = {
    "x-queue-time": "Time the texts waited for a model call (ms).",
    "x-inference-time": "Time from the request's first model call to its last one's end (ms).",
    "x-total-time": "Time from arrival to the response (ms).",
}
TIMING_HEADERS = {name: {"description": text, "schema": {"type": "string"}}
                  for name, text in TIMING.items()}
UNHEALTHY = (503, "unhealthy", "The model is not loaded yet.")
TIMEOUT = (408, "timeout", "The body did not arrive within serve.body_timeout_s.")
TEI_ERRORS = error_responses([
    (400, "empty", "An empty batch."),
    (413, "validation", "Beyond a limit: texts, characters or bytes."),
    (422, "validation", "Malformed: not JSON, wrong types, or inputs of the wrong kind (a "
     "text pair for a model of single texts, a text alone for a pair model)."),
    TIMEOUT,
    (424, "backend", "The model call failed."),
    (429, "overloaded", "Too many requests in flight, or the parse workers' queue is full."),
    UNHEALTHY,
])
MLFLOW_ERRORS = error_responses([
    (400, "validation", "Malformed input (BAD_REQUEST)."),
    (413, "validation", "Beyond a limit: rows, characters or bytes."),
    (415, "validation", "A content type other than JSON or CSV, or a charset other than UTF-8."),
    TIMEOUT,
    (424, "backend", "The model call failed."),
    (429, "overloaded", "Too many requests in flight, or the parse workers' queue is full."),
    UNHEALTHY,
], body="mlflow")
PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
        },
    }
}
INVOCATIONS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/InvocationsRequest"}},
            "text/csv": {
                "schema": {"type": "string"},
                "example": "text\nLost my bag\nGreat crew\n",
            },
        },
    }
}


def finite(scores: np.ndarray) -> np.ndarray:
    """Scores JSON can carry: NaN is a model failure (424); infinities become float32's limits."""
    bad = np.isnan(scores).any(axis=1)
    if bad.any():
        raise ServingError(
            424, "backend", f"the model returned NaN scores for text {int(np.argmax(bad))}"
        )
    return np.nan_to_num(scores, posinf=FLOAT_MAX, neginf=-FLOAT_MAX)


def ranked(row: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    return [{"label": labels[i], "score": float(row[i])} for i in np.argsort(-row, kind="stable")]


def timing(request: Request, scored: Scored) -> dict[str, str]:
    total = time.perf_counter() - request.scope.get(START, time.perf_counter())
    service: Service = request.app.state.service
    service.metrics.queue_duration.observe(scored.queue_s)
    service.metrics.inference_duration.observe(scored.inference_s)
    return {
        "x-queue-time": f"{scored.queue_s * 1000:.3f}",
        "x-inference-time": f"{scored.inference_s * 1000:.3f}",
        "x-total-time": f"{total * 1000:.3f}",
    }


def json_response(payload: Any, headers: dict[str, str]) -> Response:
    return Response(
        json.dumps(payload, allow_nan=False), media_type="application/json", headers=headers
    )


@router.post(
    "/predict",
    response_model=None,
    summary="Classify texts (Hugging Face text-embeddings-inference's /predict)",
    openapi_extra=PREDICT_BODY,
    responses={
        200: {"model": PredictResponse, "description": "Every class, highest score first.",
              "headers": TIMING_HEADERS},
        **TEI_ERRORS,
    },
)
async def predict(request: Request, service: Service = Depends(get_service)) -> Response:
    """TEI's request and response: one text gives a list of {label, score}; a batch
    [["t1"], ["t2"]] a list of such lists. A pair model takes (text, aspect) pairs instead, as
    TEI's pair classifiers do: one pair ["text", "aspect"], or a batch [["t1", "a1"], ...].
    Softmax probabilities unless raw_scores."""
    pool: ParsePool = request.app.state.pool
    body = await request.body()
    texts, single, raw_scores = await pool.parse(len(body), predict_input, body, service.config,
                                                 service.takes_pairs)
    scored = await service.score(texts)
    scores = finite(scored.scores if raw_scores else softmax(scored.scores))
    rows = [ranked(row, scored.labels) for row in scores]
    return json_response(rows[0] if single else rows, timing(request, scored))


@router.post(
    "/invocations",
    response_model=None,
    summary="Classify rows (MLflow's scoring protocol)",
    openapi_extra=INVOCATIONS_BODY,
    responses={
        200: {"model": InvocationsResponse, "description": "One prediction per row.",
              "headers": TIMING_HEADERS},
        **MLFLOW_ERRORS,
    },
)
async def invocations(request: Request, service: Service = Depends(get_service)) -> Response:
    """MLflow's `mlflow models serve` protocol: a JSON body with exactly one of
    dataframe_split, dataframe_records, instances or inputs (a `text` column, or the only
    column), or a text/csv body with a header row; a pair model takes the columns `text` and
    `aspect` (or, in instances / inputs, [text, aspect] pairs). Parquet bodies are not taken."""
    pool: ParsePool = request.app.state.pool
    body = await request.body()
    texts = await pool.parse(len(body), invocation_texts, body,
                             request.headers.get("content-type"), service.config,
                             service.takes_pairs)
    scored = await service.score(texts)
    proba = finite(softmax(scored.scores))
    labels = scored.labels
    predictions = []
    for row in proba:
        best = int(np.argmax(row))
        predictions.append({
            "label": labels[best],
            "score": float(row[best]),
            **{f"p_{label}": float(p) for label, p in zip(labels, row, strict=True)},
        })
    return json_response({"predictions": predictions}, timing(request, scored))


@router.get(
    "/health",
    summary="Ready: the model is loaded and has answered a warm-up batch (HEAD too)",
    response_model=HealthResponse,
    responses={200: {"description": "Ready."}, **error_responses([UNHEALTHY])},
)
async def health(request: Request) -> HealthResponse:
    get_service(request)
    return HealthResponse(status="ok")


@router.get("/info", summary="The models served, their runtime, limits and test metrics",
            responses=error_responses([UNHEALTHY]))
async def info(request: Request, service: Service = Depends(get_service)) -> InfoResponse:
    """The primary model's name, runtime, limits, batching and test metrics; `models` lists
    every model loaded (the primary, and the aspect model when serve.aspect_model loads one)."""
    loaded = service.current
    assert loaded is not None  # get_service checked that the service is ready
    config = service.config
    manifest = loaded.model.manifest
    served = [service, getattr(request.app.state, "aspect_service", None)]
    return InfoResponse(
        model_name=loaded.resolved.name,
        model_version=loaded.resolved.version,
        model_source=loaded.resolved.source,
        model_path=str(loaded.path),
        kind=manifest.kind,
        backend=loaded.backend,
        labels=loaded.model.labels,
        limits=Limits(**config.model_dump(include=set(Limits.model_fields))),
        batching=Batching(
            **config.model_dump(include={"max_batch_tokens", "max_batch_requests",
                                         "max_wait_ms"}),
            threads=service.provider.threads,
        ),
        metrics=json_safe(manifest.metrics),
        loaded_at=loaded.loaded_at.isoformat(),
        models=[loaded_info(s.role, s.current) for s in served
                if s is not None and s.current is not None],
    )


def json_safe(value: Any) -> Any:
    """`value` with non-finite floats as null (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


@router.get(
    "/metrics",
    summary="Prometheus metrics (te_* like TEI's)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Exposition format."}},
)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics
    return Response(registry.render(), media_type=registry.content_type)
