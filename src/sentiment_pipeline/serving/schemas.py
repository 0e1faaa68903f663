"""Request and response bodies of the service, as TEI and MLflow's scoring server shape them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from sentiment_pipeline.insights.comments import ErrorKind
from sentiment_pipeline.serving.errors import ErrorType


class PredictRequest(BaseModel):
    """TEI's /predict request. Unknown keys are ignored, as TEI does."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"inputs": "I love this airline", "raw_scores": False, "truncate": False},
                {"inputs": [["Delayed again"], ["Great crew, thanks!"]]},
            ]
        },
    )

    inputs: str | list[str] | list[list[str]] = Field(
        description="One text (a string), or a batch of texts [[\"t1\"], [\"t2\"], ...]: each "
        "inner list holds one text. A flat [\"a\", \"b\"] is a text pair in TEI, and so is an "
        "inner list of two; this model classifies single texts, so a pair is refused (422).",
    )
    raw_scores: bool = Field(
        False, description="Return the raw scores (logits) instead of softmax probabilities."
    )
    truncate: bool = Field(
        False,
        description="Cut a text longer than the character limit instead of refusing it (413).",
    )


class Prediction(BaseModel):
    """One class of one text."""

    label: str = Field(description="Class name.", examples=["positive"])
    score: float = Field(
        description="Probability (softmax), or the raw score with raw_scores.", examples=[0.93]
    )


class PredictResponse(RootModel[list[Prediction] | list[list[Prediction]]]):
    """Every class, highest score first; a list of such lists for a batch, in input order."""


class ErrorResponse(BaseModel):
    """TEI's error body."""

    error: str = Field(description="What was wrong: the item, the value and the limit.")
    error_type: ErrorType = Field(
        description="validation (413: a limit; 422: a malformed request), empty (400), "
        "overloaded (429), unhealthy (503), backend (424)."
    )


class AnalysisErrorResponse(BaseModel):
    """TEI's error body, with the kinds an analysis can fail with."""

    error: str = Field(description="What was wrong and how to fix it.")
    error_type: ErrorType | ErrorKind = Field(
        description="The service's types (validation, unauthorized, rate_limited, overloaded, "
        "unhealthy, backend, too_large) or why the analysis failed (bad_file, bad_video, "
        "video_not_found, comments_disabled, youtube_*)."
    )


class MlflowError(BaseModel):
    """MLflow's scoring-server error body (on /invocations)."""

    error_code: str = Field(
        description="BAD_REQUEST (4xx), REQUEST_LIMIT_EXCEEDED (429), "
        "TEMPORARILY_UNAVAILABLE (503), INTERNAL_ERROR.",
        examples=["BAD_REQUEST"],
    )
    message: str = Field(description="What was wrong: the row, the value and the limit.")


class DataframeSplit(BaseModel):
    """pandas' split orientation."""

    columns: list[str] = Field(description="Column names; one must be 'text' (or the only one).")
    data: list[list[Any]] = Field(description="Rows, each with one value per column.")
    index: list[Any] | None = Field(None, description="Row labels (ignored).")


class InvocationParams(BaseModel):
    """The optional `params` of an MLflow request."""

    model_config = ConfigDict(extra="allow")

    truncate: bool = Field(
        True, description="Cut texts longer than the character limit (false: refuse them, 413)."
    )


class InvocationsRequest(BaseModel):
    """MLflow's scoring protocol: exactly one of the four input fields, plus optional params."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"dataframe_split": {"columns": ["text"], "data": [["Lost my bag"], ["Thanks!"]]}},
                {"dataframe_records": [{"text": "Lost my bag"}]},
                {"instances": ["Lost my bag", "Thanks!"]},
                {"inputs": {"text": ["Lost my bag"]}},
            ]
        },
    )

    dataframe_split: DataframeSplit | None = Field(None, description="A frame, split-oriented.")
    dataframe_records: list[dict[str, Any]] | None = Field(
        None, description="A frame as records: [{\"text\": ...}, ...]."
    )
    instances: list[str] | list[dict[str, Any]] | dict[str, list[Any]] | None = Field(
        None,
        description="TF-serving style: a list of texts, a list of records, or {\"text\": [...]}.",
    )
    inputs: list[str] | list[dict[str, Any]] | dict[str, list[Any]] | None = Field(
        None, description="As instances."
    )
    params: InvocationParams | None = Field(None, description="Options of this request.")


class InvocationsPrediction(BaseModel):
    """One row's prediction; `p_<class>` holds each class's probability."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "label": "negative",
                    "score": 0.81,
                    "p_negative": 0.81,
                    "p_neutral": 0.12,
                    "p_positive": 0.07,
                }
            ]
        },
    )

    label: str = Field(description="The most probable class.")
    score: float = Field(description="Its probability.")


class InvocationsResponse(BaseModel):
    predictions: list[InvocationsPrediction] = Field(description="One per row, in row order.")


class Limits(BaseModel):
    """What one request may hold (serve.* in params.yaml)."""

    max_texts_per_request: int = Field(description="Texts in one request (more: 413).")
    max_text_chars: int = Field(
        description="Characters per text (more: cut with truncate, else 413)."
    )
    max_body_bytes: int = Field(description="Request body size (more: 413).")
    max_concurrent_requests: int = Field(
        description="Requests in flight in this worker process (more: 429 at once)."
    )


class Batching(BaseModel):
    """How concurrent requests are merged into model calls (per worker process)."""

    max_batch_tokens: int = Field(description="Token budget of one model call (padded).")
    max_batch_requests: int = Field(description="Requests one model call may serve.")
    max_wait_ms: float = Field(description="How long a call waits for more requests to join.")
    threads: int | None = Field(description="Inference threads of this worker.")


class InfoResponse(BaseModel):
    """What is served, and how."""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str = Field(description="Registered model name, or the manifest's name.")
    model_version: str | None = Field(description="Registry version; null for a folder.")
    model_source: str = Field(description="What was resolved: a models:/ URI or a folder.")
    model_path: str = Field(description="The folder loaded (the chosen backend's).")
    kind: str = Field(description="Model kind: sklearn, transformers or onnx.")
    backend: str = Field(description="Runtime: sklearn, torch, onnx or onnx-int8.")
    labels: list[str] = Field(description="Class names in label-id order.")
    limits: Limits
    batching: Batching
    metrics: dict[str, Any] = Field(description="The model's test metrics, from its manifest.")
    loaded_at: str = Field(description="When this model started serving (UTC, ISO 8601).")


# --- audience insights (/v1) ------------------------------------------------------------------


class CommentIn(BaseModel):
    """One comment of a /v1/analyze JSON request."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The comment.")
    published_at: str | float | None = Field(
        None, description="ISO 8601, epoch seconds, or the request's time_format (strftime)."
    )
    author: str | None = Field(None, description="Who wrote it.")
    likes: int = Field(0, ge=0, description="Its likes (the like-weighted breakdown).")
    id: str | None = Field(None, description="Your id for it, returned with its row.")


class AnalyzeRequest(BaseModel):
    """Comments to analyse, sent as JSON (a file goes as multipart/form-data instead)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"comments": ["Lost my bag again", "Great crew, thanks!"]},
                {"comments": [{"text": "Delayed 3 hours", "published_at": "2024-05-01T12:00:00Z",
                               "likes": 4}], "charts": True},
            ]
        },
    )

    comments: list[CommentIn | str] = Field(
        min_length=1, description="The comments: texts, or objects with a text and its facts."
    )
    time_format: str | None = Field(
        None, description="strftime format of published_at, when not ISO 8601 or epoch seconds."
    )
    charts: bool = Field(False, description="Also render the three charts as SVG.")


class YouTubeAnalyzeRequest(BaseModel):
    """A video whose comments the server fetches (with its own API key) and analyses."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"video": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
                          "max_comments": 500, "order": "time", "charts": True}]
        },
    )

    video: str = Field(description="A YouTube link (watch, youtu.be, shorts, embed, live) or id.")
    max_comments: int | None = Field(
        None, ge=1, description="Comments to analyse, replies included (default "
        "insights.max_comments; at most insights.max_comments_limit).",
    )
    order: Literal["time", "relevance"] | None = Field(
        None, description="Newest first, or YouTube's relevance (default insights.order)."
    )
    charts: bool = Field(False, description="Also render the three charts as SVG.")
