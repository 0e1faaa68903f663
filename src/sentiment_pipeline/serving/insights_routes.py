"""The audience-insights endpoints: POST /v1/analyze (JSON or a file) and /v1/youtube/analyze."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response

from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.insights.comments import CommentBatch, InsightsError
from sentiment_pipeline.insights.files import comments_from_frame, read_comments
from sentiment_pipeline.insights.pipeline import finish, model_info
from sentiment_pipeline.insights.result import AnalysisResult, ModelInfo
from sentiment_pipeline.insights.youtube import YouTubeClient, client_from_settings
from sentiment_pipeline.insights.youtube_answers import KEY_HINT
from sentiment_pipeline.insights.youtube_links import parse_video_id
from sentiment_pipeline.models.artifacts.manifest import softmax
from sentiment_pipeline.serving.errors import ServingError
from sentiment_pipeline.serving.guard import START
from sentiment_pipeline.serving.inputs import decode_json, validation_summary
from sentiment_pipeline.serving.pool import ParsePool
from sentiment_pipeline.serving.ratelimit import RateLimiter
from sentiment_pipeline.serving.schemas import (
    AnalysisErrorResponse,
    AnalyzeRequest,
    CommentIn,
    YouTubeAnalyzeRequest,
)
from sentiment_pipeline.serving.service import Service, get_service

router = APIRouter(prefix="/v1", tags=["audience insights"])

FORM_FIELDS = ("text_column", "time_column", "time_format", "likes_column", "author_column",
               "format", "encoding", "charts")
MULTIPART = "multipart/form-data"
JSON_EXAMPLE = '{"comments": ["text", ...] | [{"text", "published_at", "likes", ...}]}'


def failure(description: str) -> dict[str, Any]:
    """An error answer of the analysis routes, for the OpenAPI document."""
    return {"model": AnalysisErrorResponse, "description": description}


ANALYSIS_ERRORS: dict[int | str, dict[str, Any]] = {
    401: failure("A token is set and the request lacks it."),
    413: failure("Too many comments or too large (too_large)."),
    422: failure("Malformed, a bad file or column (bad_file)."),
    424: failure("The model call failed (backend)."),
    429: failure("Too many analyses in flight (overloaded)."),
    503: failure("The model is not loaded yet (unhealthy)."),
}
YOUTUBE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ANALYSIS_ERRORS,
    404: failure("No such video (video_not_found)."),
    422: failure("Not a video link or id (bad_video), comments disabled (comments_disabled), or "
                 "a malformed request."),
    429: failure("This client's YouTube analyses are over the rate limit (rate_limited, with "
                 "Retry-After), or too many in flight (overloaded)."),
    502: failure("The server's YouTube key is refused (youtube_key), YouTube is unreachable "
                 "(youtube_unreachable) or refuses the request otherwise (youtube_error)."),
    503: failure("The server's YouTube quota is spent (youtube_quota, with Retry-After), YouTube "
                 "fails (youtube_unavailable), no key is configured (youtube_not_configured), or "
                 "the model is not loaded (unhealthy)."),
}
ANALYZE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/AnalyzeRequest"}},
            MULTIPART: {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": "CSV, TSV, JSON Lines or Parquet."},
                        "text_column": {"type": "string", "default": "text"},
                        "time_column": {"type": "string"},
                        "time_format": {"type": "string",
                                        "description": "strftime, e.g. %d-%m-%Y %H.%M"},
                        "likes_column": {"type": "string"},
                        "author_column": {"type": "string"},
                        "format": {"type": "string", "enum": ["csv", "tsv", "jsonl", "parquet"],
                                   "description": "Default: from the file name's extension."},
                        "charts": {"type": "boolean", "default": False},
                    },
                }
            },
        },
    }
}
YOUTUBE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/YouTubeAnalyzeRequest"}
            },
        },
    }
}


def get_youtube(request: Request) -> YouTubeClient:
    """A YouTube client with the server's key and base URL; tests may override it."""
    return client_from_settings(request.app.state.settings)


def current_model(service: Service) -> ModelInfo:
    loaded = service.current
    assert loaded is not None  # get_service checked that the service is ready
    return model_info(loaded)


def truthy(value: str | None, field: str) -> bool:
    if value is None or value.strip().lower() in ("", "false", "0", "no", "off"):
        return False
    if value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    raise ServingError(422, "validation", f"form field {field} is {value!r}; send true or false")


def parse_body(model: Any, body: bytes, expected: str) -> Any:
    try:
        return model.model_validate(decode_json(body, 422))
    except ValidationError as exc:
        raise ServingError(
            422, "validation", f"invalid request ({validation_summary(exc)}); expected {expected}"
        ) from exc


def analysis_json(batch: CommentBatch, proba: np.ndarray, labels: list[str], info: ModelInfo,
                  config: InsightsConfig, charts: bool, started: float) -> bytes:
    """The analysis as the answer's JSON (in a parse process: `started` is perf_counter's,
    a clock the processes of one machine share)."""
    result = finish(batch, proba, labels, info, config, charts=charts, started=started)
    return result.as_json().encode()


async def analysed(
    request: Request, service: Service, batch: CommentBatch, charts: bool
) -> Response:
    """The batch's predictions (the service's batched model calls), then the analysis in the
    parse pool, so the event loop keeps serving meanwhile."""
    config: InsightsConfig = request.app.state.insights
    pool: ParsePool = request.app.state.pool
    info = current_model(service)
    scored = await service.score([comment.text for comment in batch.comments])
    proba = softmax(scored.scores)
    if np.isnan(proba).any():
        raise ServingError(424, "backend", "the model returned NaN scores")
    started = request.scope.get(START, time.perf_counter())
    answer = await pool.run(analysis_json, batch, proba, scored.labels, info, config, charts,
                            started)
    return Response(answer, media_type="application/json")


@router.post(
    "/analyze",
    response_model=AnalysisResult,
    summary="Analyse comments sent as JSON or as a file (multipart/form-data, field `file`)",
    openapi_extra=ANALYZE_BODY,
    responses={200: {"description": "The analysis: breakdown, trend, top and uncertain "
                                    "comments, distinctive terms, every comment's prediction."},
               **ANALYSIS_ERRORS},
)
async def analyze(request: Request, service: Service = Depends(get_service)) -> Response:
    """Comments as JSON (`{"comments": [...]}`) or a CSV / TSV / JSON Lines / Parquet file,
    up to insights.max_upload_bytes and insights.max_comments_limit comments."""
    config: InsightsConfig = request.app.state.insights
    pool: ParsePool = request.app.state.pool
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() == MULTIPART:
        batch, charts = await uploaded_batch(request, config)
    else:
        body = await request.body()
        batch, charts = await pool.parse(len(body), json_comments, body, config)
    return await analysed(request, service, batch, charts)


async def uploaded_batch(request: Request, config: InsightsConfig) -> tuple[CommentBatch, bool]:
    """The comments of the multipart upload's `file`, read by the file readers."""
    form = await request.form(max_files=1, max_fields=len(FORM_FIELDS),
                              max_part_size=64 * 1024)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ServingError(422, "validation", "the multipart upload has no file in the field "
                               "`file`; send the comments file as `file`")
        unknown = sorted(set(form) - {"file", *FORM_FIELDS})
        if unknown:
            raise ServingError(422, "validation", f"unknown form fields {unknown}; the fields "
                               f"are file, {', '.join(FORM_FIELDS)}")
        fields = {name: str(form[name]).strip() for name in FORM_FIELDS if name in form}
        fields = {name: value for name, value in fields.items() if value}
        data = await upload.read()
    finally:
        await form.close()
    charts = truthy(fields.pop("charts", None), "charts")
    fields.setdefault("text_column", "text")
    pool: ParsePool = request.app.state.pool
    batch = await pool.run(
        partial(read_comments, data, filename=upload.filename or "upload",
                limit=config.max_comments_limit, **fields)
    )
    return batch, charts


def json_comments(body: bytes, config: InsightsConfig) -> tuple[CommentBatch, bool]:
    """The comments of a JSON /v1/analyze body, and whether it asks for charts."""
    request = parse_body(AnalyzeRequest, body, JSON_EXAMPLE)
    return json_batch(request, config), request.charts


def json_batch(body: AnalyzeRequest, config: InsightsConfig) -> CommentBatch:
    """The comments of a JSON request, through the file readers' checks and time parsing."""
    items = [CommentIn(text=item) if isinstance(item, str) else item for item in body.comments]
    frame = pd.DataFrame({
        "text": [item.text for item in items],
        "published_at": pd.Series([item.published_at for item in items], dtype=object),
        "author": pd.Series([item.author for item in items], dtype=object),
        "likes": [item.likes for item in items],
    })
    present = {name for name in ("published_at", "author") if frame[name].notna().any()}
    batch = comments_from_frame(
        frame, name="comments", text_column="text", likes_column="likes",
        time_column="published_at" if "published_at" in present else None,
        time_format=body.time_format,
        author_column="author" if "author" in present else None,
        limit=config.max_comments_limit,
    )
    # The readers number the rows from 1 (rows without text are skipped): use the sent ids.
    comments = [
        replace(comment, id=items[int(comment.id) - 1].id or comment.id)
        if comment.id is not None else comment
        for comment in batch.comments
    ]
    return replace(batch, comments=comments, source={"kind": "json"})


@router.post(
    "/youtube/analyze",
    response_model=AnalysisResult,
    summary="Fetch a YouTube video's comments (with the server's key) and analyse them",
    openapi_extra=YOUTUBE_BODY,
    responses={200: {"description": "The analysis, as /v1/analyze's."}, **YOUTUBE_ERRORS},
)
async def youtube_analyze(
    request: Request,
    service: Service = Depends(get_service),
    youtube: YouTubeClient = Depends(get_youtube),
) -> Response:
    """Top-level comments and the replies YouTube sends with their threads, up to max_comments
    in all. Rate-limited per client address (a token bucket per server process)."""
    config: InsightsConfig = request.app.state.insights
    pool: ParsePool = request.app.state.pool
    raw = await request.body()
    body = await pool.parse(len(raw), parse_body, YouTubeAnalyzeRequest, raw,
                            '{"video": "<link or id>", "max_comments": 1000}')
    video_id = parse_video_id(body.video)
    max_comments = body.max_comments or config.max_comments
    if max_comments > config.max_comments_limit:
        raise InsightsError(
            "too_large", f"max_comments is {max_comments}, more than "
            f"insights.max_comments_limit = {config.max_comments_limit}; ask for fewer",
        )
    if not youtube.api_key:
        raise InsightsError("youtube_not_configured",
                            f"this server has no YouTube API key; {KEY_HINT} on the server")
    take_token(request)
    batch = await run_in_threadpool(youtube.fetch, video_id, max_comments,
                                    body.order or config.order)
    return await analysed(request, service, batch, body.charts)


def client_key(request: Request) -> str:
    """Who is rate-limited: the peer's address (uvicorn puts the X-Forwarded-For address here
    only for proxies it trusts, FORWARDED_ALLOW_IPS; the header itself is not read)."""
    return request.client.host if request.client else "unknown"


def take_token(request: Request) -> None:
    limiter: RateLimiter = request.app.state.youtube_limiter
    wait = limiter.take(client_key(request))
    if wait > 0:
        raise ServingError(
            429, "rate_limited",
            f"too many YouTube analyses from this client: at most {limiter.burst} at once and "
            f"{limiter.rate_per_s * 60:g} a minute (SENTIMENT_PIPELINE_YOUTUBE_BURST, "
            f"SENTIMENT_PIPELINE_YOUTUBE_RATE_PER_MINUTE); retry in {math.ceil(wait)} s",
            retry_after=wait,
        )
