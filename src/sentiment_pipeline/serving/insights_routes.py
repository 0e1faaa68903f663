"""The audience-insights endpoints: POST /v1/analyze (JSON or a file) and /v1/youtube/analyze."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Request
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response

from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.data.tables import FORMATS
from sentiment_pipeline.insights.aspects import (
    AspectScores,
    AspectSpec,
    check_asked,
    score_aspects,
)
from sentiment_pipeline.insights.comments import CommentBatch, InsightsError
from sentiment_pipeline.insights.files import comments_from_frame, read_comments
from sentiment_pipeline.insights.pipeline import finish, model_info
from sentiment_pipeline.insights.result import AnalysisResult, ModelInfo
from sentiment_pipeline.insights.youtube import YouTubeClient, client_from_settings
from sentiment_pipeline.insights.youtube_answers import KEY_HINT
from sentiment_pipeline.insights.youtube_links import parse_video_id
from sentiment_pipeline.models.artifacts.manifest import softmax
from sentiment_pipeline.serving.errors import ErrorType, ServingError
from sentiment_pipeline.serving.guard import START
from sentiment_pipeline.serving.inputs import decode_json, validation_summary
from sentiment_pipeline.serving.openapi import error_responses
from sentiment_pipeline.serving.pool import ParsePool
from sentiment_pipeline.serving.ratelimit import RateLimiter
from sentiment_pipeline.serving.schemas import (
    AnalyzeRequest,
    CommentIn,
    YouTubeAnalyzeRequest,
)
from sentiment_pipeline.serving.service import Service, get_service

router = APIRouter(prefix="/v1", tags=["audience insights"])

FORM_FIELDS = ("text_column", "time_column", "time_format", "likes_column", "author_column",
               "format", "encoding", "charts", "aspects", "discover_aspects")
ASPECTS_FORM = '[{"name": "audio", "terms": ["sound", "mic"]}]'
ASPECT_LIST = TypeAdapter(list[AspectSpec])
MULTIPART = "multipart/form-data"
JSON_EXAMPLE = '{"comments": ["text", ...] | [{"text", "published_at", "likes", ...}]}'


SERVICE_ERRORS: list[tuple[int, ErrorType, str]] = [
    (422, "validation", "A malformed request: not JSON, wrong types, a blank comment, an unknown "
     "field."),
    (408, "timeout", "The body did not arrive within serve.body_timeout_s."),
    (424, "backend", "The model call failed."),
    (429, "overloaded", "Too many analyses in flight, or the parse workers' queue is full."),
    (503, "unhealthy", "The model is not loaded yet."),
]
ANALYSIS_ERRORS = error_responses(
    [(400, "validation", "A multipart body that cannot be parsed."), *SERVICE_ERRORS],
    kinds={"bad_file": "A file that cannot be read as asked, or without text in its text "
                       "column.",
           "too_large": "Too many comments, an upload too large (as sent or decoded), or too "
                        "many aspects or aspect mentions.",
           "no_aspect_model": "Aspects asked for, and the server has no aspect model."},
)
YOUTUBE_ERRORS = error_responses(
    [(413, "validation", "A body over serve.max_body_bytes."),
     (429, "rate_limited", "This client's YouTube analyses are over the rate limit."),
     *SERVICE_ERRORS],
    kinds={"too_large": "max_comments over insights.max_comments_limit, or too many aspects or "
                        "aspect mentions.",
           "no_aspect_model": "Aspects asked for, and the server has no aspect model.",
           "bad_video": "Not a YouTube video link or id.",
           "video_not_found": "No such video (private, deleted or mistyped).",
           "comments_disabled": "The video's comments are turned off.",
           "youtube_not_configured": "This server has no YouTube API key.",
           "youtube_key": "YouTube refuses the server's key.",
           "youtube_quota": "The server's YouTube quota is spent.",
           "youtube_unavailable": "YouTube fails (5xx or nonsense).",
           "youtube_unreachable": "YouTube cannot be reached.",
           "youtube_error": "YouTube refuses the request otherwise."},
)
ANALYZE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/AnalyzeRequest"}},
            MULTIPART: {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "additionalProperties": False,
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": "CSV, TSV, JSON Lines or Parquet, optionally "
                                 "compressed; a file that cannot be read: 422 bad_file."},
                        "text_column": {"type": "string", "default": "text"},
                        "time_column": {"type": "string"},
                        "time_format": {"type": "string",
                                        "description": "strftime, e.g. %d-%m-%Y %H.%M"},
                        "likes_column": {"type": "string"},
                        "author_column": {"type": "string"},
                        "format": {"type": "string", "enum": ["auto", *FORMATS],
                                   "default": "auto",
                                   "description": "auto: from the file name's extension."},
                        "encoding": {"type": "string", "default": "auto",
                                     "description": "A Python codec name; auto: UTF-8."},
                        "charts": {"type": "boolean", "default": False,
                                   "description": "Sent as true or false."},
                        "aspects": {"type": "string", "contentMediaType": "application/json",
                                    "contentSchema": {"type": "array", "items": {
                                        "$ref": "#/components/schemas/AspectSpec"}},
                                    "description": "The JSON request's aspects as a JSON "
                                    f"string, e.g. {ASPECTS_FORM}; not such a list: 422."},
                        "discover_aspects": {"type": "integer", "minimum": 0, "default": 0,
                                             "description": "As in the JSON request."},
                    },
                    "description": "An empty field is as if it were not sent.",
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


@dataclass(frozen=True)
class Asked:
    """What a request asks for besides its comments."""

    charts: bool = False
    aspects: list[AspectSpec] = field(default_factory=list)
    discover_aspects: int = 0


def get_youtube(request: Request) -> YouTubeClient:
    """A YouTube client with the server's key and base URL; tests may override it."""
    return client_from_settings(request.app.state.settings)


def current_model(service: Service) -> ModelInfo:
    loaded = service.current
    assert loaded is not None  # get_service checked that the service is ready
    return model_info(loaded)


def form_flag(value: str | None, field: str) -> bool:
    """A boolean form field, strict as the schema's boolean: true or false (absent: false)."""
    if value is None or value in ("true", "false"):
        return value == "true"
    raise ServingError(422, "validation", f"form field {field} is {value!r}; send true or false")


def parse_body(model: Any, body: bytes, expected: str) -> Any:
    try:
        return model.model_validate(decode_json(body, 422))
    except ValidationError as exc:
        raise ServingError(
            422, "validation", f"invalid request ({validation_summary(exc)}); expected {expected}"
        ) from exc


def analysis_json(batch: CommentBatch, proba: np.ndarray, labels: list[str], info: ModelInfo,
                  config: InsightsConfig, charts: bool, started: float,
                  aspects: AspectScores | None = None) -> bytes:
    """The analysis as the answer's JSON (in a parse process: `started` is perf_counter's,
    a clock the processes of one machine share)."""
    result = finish(batch, proba, labels, info, config, charts=charts, started=started,
                    aspects=aspects)
    return result.as_json().encode()


async def analysed(
    request: Request, service: Service, batch: CommentBatch, asked: Asked
) -> Response:
    """The aspects' mentions read by the aspect model (all pairs in one call, in a thread),
    the batch's predictions (the service's batched model calls), then the analysis in the
    parse pool, so the event loop keeps serving meanwhile."""
    config: InsightsConfig = request.app.state.insights
    pool: ParsePool = request.app.state.pool
    info = current_model(service)
    texts = [comment.text for comment in batch.comments]
    aspects = await run_in_threadpool(
        score_aspects, texts, asked.aspects, asked.discover_aspects,
        getattr(request.app.state, "aspect_model", None), config,
    )
    scored = await service.score(texts)
    proba = softmax(scored.scores)
    if np.isnan(proba).any():
        raise ServingError(424, "backend", "the model returned NaN scores")
    started = request.scope.get(START, time.perf_counter())
    answer = await pool.run(analysis_json, batch, proba, scored.labels, info, config,
                            asked.charts, started, aspects)
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
        batch, asked = await uploaded_batch(request, config)
    else:
        body = await request.body()
        batch, asked = await pool.parse(len(body), json_comments, body, config)
    return await analysed(request, service, batch, asked)


async def uploaded_batch(request: Request, config: InsightsConfig) -> tuple[CommentBatch, Asked]:
    """The comments of the multipart upload's `file`, read by the file readers, and what else
    its fields ask for (the aspects are checked before the file is read)."""
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
    asked = Asked(form_flag(fields.pop("charts", None), "charts"),
                  form_aspects(fields.pop("aspects", None)),
                  form_count(fields.pop("discover_aspects", None), "discover_aspects"))
    check_asked(asked.aspects, asked.discover_aspects,
                getattr(request.app.state, "aspect_model", None), config)
    fields.setdefault("text_column", "text")
    pool: ParsePool = request.app.state.pool
    batch = await pool.run(
        partial(read_comments, data, filename=upload.filename or "upload",
                limit=config.max_comments_limit, **fields)
    )
    return batch, asked


def form_aspects(value: str | None) -> list[AspectSpec]:
    """The `aspects` form field: the JSON request's list, as a JSON string (absent: none)."""
    if value is None:
        return []
    try:
        return ASPECT_LIST.validate_json(value)
    except ValidationError as exc:
        raise ServingError(
            422, "validation", f"form field aspects is not a list of aspects "
            f"({validation_summary(exc)}); send a JSON list such as {ASPECTS_FORM}",
        ) from exc


def form_count(value: str | None, field: str) -> int:
    """A whole-number form field, 0 or more (absent: 0)."""
    if value is None:
        return 0
    if not value.isascii() or not value.isdigit():
        raise ServingError(422, "validation", f"form field {field} is {value[:40]!r}; send a "
                           "whole number, 0 or more")
    # Beyond 18 digits every count is over its limit alike (and int() refuses 4,300 digits).
    return int(value) if len(value) <= 18 else 10**18


def json_comments(body: bytes, config: InsightsConfig) -> tuple[CommentBatch, Asked]:
    """The comments of a JSON /v1/analyze body, and what else it asks for."""
    request = parse_body(AnalyzeRequest, body, JSON_EXAMPLE)
    return json_batch(request, config), Asked(request.charts, request.aspects,
                                              request.discover_aspects)


def json_batch(body: AnalyzeRequest, config: InsightsConfig) -> CommentBatch:
    """The comments of a JSON request, through the file readers' checks and time parsing."""
    items = [CommentIn(text=item) if isinstance(item, str) else item for item in body.comments]
    frame = pd.DataFrame({
        "text": pd.Series([item.text for item in items], dtype=object),
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
            "too_large", f"max_comments is {max_comments:,}, more than the "
            f"{config.max_comments_limit:,} comments one analysis may hold; ask for at most "
            f"{config.max_comments_limit:,}",
            setting="insights.max_comments_limit",
        )
    check_asked(body.aspects, body.discover_aspects,
                getattr(request.app.state, "aspect_model", None), config)
    if not youtube.api_key:
        raise InsightsError("youtube_not_configured",
                            f"this server has no YouTube API key; {KEY_HINT} on the server")
    take_token(request)
    batch = await run_in_threadpool(youtube.fetch, video_id, max_comments,
                                    body.order or config.order)
    return await analysed(request, service, batch,
                          Asked(body.charts, body.aspects, body.discover_aspects))


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
