"""Request and response bodies of the service, as TEI and MLflow's scoring server shape them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    Tag,
    WithJsonSchema,
    create_model,
)

from sentiment_pipeline.insights.aspects import AspectSpec
from sentiment_pipeline.insights.comments import NOT_BLANK, ErrorKind, not_blank
from sentiment_pipeline.serving.errors import ErrorType

# Checked in Python, not by pydantic's regex engine, which refuses a lone surrogate (JSON's
# "\ud800") that the readers take.
Text = Annotated[str, AfterValidator(not_blank),
                 Field(json_schema_extra={"minLength": 1, "pattern": NOT_BLANK})]


def whole(value: Any) -> Any:
    """A JSON number without a fraction (4.0) as the integer JSON Schema says it is."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# An integer as JSON Schema's: 4 or 4.0, never "4" or true (the models are strict).
Integer = Annotated[int, BeforeValidator(whole)]
# Aspects to read and aspects to discover: the same two fields in both analysis requests.
ASPECTS_FIELD = Field(
    default_factory=list, description="Aspects to read, each a name and its synonyms, e.g. "
    '{"name": "audio", "terms": ["sound", "mic"]} (at most insights.max_aspects: 413 beyond; '
    "409 no_aspect_model when the server has no aspect model).",
)
DiscoverCount = Annotated[int, Field(ge=0), BeforeValidator(whole)]
DISCOVER_FIELD = Field(
    0, description="Also find and read this many aspects the comments mention most (at most "
    "insights.max_discover_aspects: 413 beyond).",
)
# Every model kind served today classifies one text; an aspect model will take a text pair.
TEXTS_PER_INPUT = 1


class PredictRequest(BaseModel):
    """TEI's /predict request. Unknown keys are ignored, as TEI does; booleans are strict.

    `inputs` is parsed loosely here so that a wrong shape gets a message naming it
    (serving.inputs.predict_texts); the documented shape is predict_request_model's.
    """

    model_config = ConfigDict(
        extra="ignore",
        strict=True,
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


def predict_request_model(texts_per_input: int, max_batch: int) -> type[PredictRequest]:
    """The /predict request as a model taking `texts_per_input` texts per input documents it:
    one text ("t") or a batch of one-element lists for 1 (a flat list is a pair in TEI); one
    pair (["a", "b"]) or a batch of pairs for 2. A batch holds 1 to `max_batch` inputs."""
    one = Annotated[list[str], Field(min_length=texts_per_input, max_length=texts_per_input)]
    batch = Annotated[list[one], Field(min_length=1, max_length=max_batch)]
    single = str if texts_per_input == 1 else one
    what = "one text" if texts_per_input == 1 else f"{texts_per_input} texts"
    described = Field(
        description=f"One input, or a batch of inputs in input order: each input is {what}"
        + (" (a string alone, or a one-element list in a batch)." if texts_per_input == 1
           else " (a list); a batch is a list of such lists."),
    )
    return create_model(
        "PredictRequest", __base__=PredictRequest, __doc__=PredictRequest.__doc__,
        inputs=(single | batch, described),
    )


class Prediction(BaseModel):
    """One class of one text."""

    label: str = Field(description="Class name.", examples=["positive"])
    score: float = Field(
        description="Probability (softmax), or the raw score with raw_scores.", examples=[0.93]
    )


class PredictResponse(RootModel[list[Prediction] | list[list[Prediction]]]):
    """Every class, highest score first; a list of such lists for a batch, in input order."""


class HealthResponse(BaseModel):
    """The service is ready."""

    status: Literal["ok"] = Field(description="Always ok (not ready: 503 unhealthy).")


class ErrorResponse(BaseModel):
    """TEI's error body; each answer of each route documents the error types it can carry."""

    model_config = ConfigDict(extra="forbid")

    error: str = Field(description="What was wrong: the item, the value and how to fix it.")
    error_type: ErrorType | ErrorKind = Field(
        description="The service's type (validation, empty, unauthorized, overloaded, "
        "rate_limited, too_large, unhealthy, backend) or why an analysis failed (bad_file, "
        "bad_video, video_not_found, comments_disabled, youtube_*)."
    )


class MlflowError(BaseModel):
    """MLflow's scoring-server error body (on /invocations)."""

    model_config = ConfigDict(extra="forbid")

    error_code: str = Field(
        description="BAD_REQUEST (4xx), UNAUTHENTICATED (401), REQUEST_LIMIT_EXCEEDED (429), "
        "TEMPORARILY_UNAVAILABLE (503), INTERNAL_ERROR (424).",
        examples=["BAD_REQUEST"],
    )
    message: str = Field(description="What was wrong: the row, the value and the limit.")


MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def not_null(schema: dict[str, Any]) -> None:
    """An optional field that may be left out but not sent as null (no default shown)."""
    schema.pop("default", None)


def one_text_column(value: dict[str, Any]) -> dict[str, Any]:
    """An object whose texts are under "text", or under its only key (the other keys ignored)."""
    return {"anyOf": [
        {"type": "object", "required": ["text"], "properties": {"text": value}},
        {"type": "object", "minProperties": 1, "maxProperties": 1,
         "additionalProperties": value},
    ]}


class DataframeSplit(BaseModel):
    """pandas' split orientation."""

    model_config = ConfigDict(extra="allow")

    columns: list[str] = Field(
        ["text"], description="Column names: 'text' among them, or a single column.",
        json_schema_extra={"anyOf": [{"contains": {"const": "text"}},
                                     {"minItems": 1, "maxItems": 1}]},
    )
    data: list[list[Any]] = Field(
        min_length=1, description="Rows, each with one value per column; the text column's "
        "value a string (otherwise 400).",
    )
    index: Any = Field(None, description="Row labels (ignored).")


class InvocationParams(BaseModel):
    """The optional `params` of an MLflow request."""

    model_config = ConfigDict(extra="allow")

    truncate: bool = Field(
        True, description="Cut texts longer than the character limit (false: refuse them, 413)."
    )


class InvocationsRequest(BaseModel):
    """MLflow's scoring protocol: exactly one of the four input fields, plus optional params.

    The server reads the body itself (serving.inputs.json_texts, also CSV); this model is its
    documentation: invocations_request_model puts the row limit in.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "oneOf": [{"required": [name]} for name in MLFLOW_FORMATS],
            "examples": [
                {"dataframe_split": {"columns": ["text"], "data": [["Lost my bag"], ["Thanks!"]]}},
                {"dataframe_records": [{"text": "Lost my bag"}]},
                {"instances": ["Lost my bag", "Thanks!"]},
                {"inputs": {"text": ["Lost my bag"]}},
            ],
        },
    )

    params: InvocationParams | None = Field(None, description="Options of this request.")


def invocations_request_model(max_rows: int) -> type[InvocationsRequest]:
    """InvocationsRequest with its four input fields, each of 1 to `max_rows` rows."""
    texts = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": max_rows}
    records = {"type": "array", "items": one_text_column({"type": "string"}), "minItems": 1,
               "maxItems": max_rows}
    tf_style = {"anyOf": [texts, records, one_text_column(texts)]}
    split = create_model(
        "DataframeSplit", __base__=DataframeSplit, __doc__=DataframeSplit.__doc__,
        data=(list[list[Any]], Field(min_length=1, max_length=max_rows,
                                     description=DataframeSplit.model_fields["data"].description)),
    )

    def documented(schema: dict[str, Any], description: str) -> Any:
        return (Annotated[Any, WithJsonSchema(schema)],
                Field(None, description=description, json_schema_extra=not_null))

    return create_model(
        "InvocationsRequest", __base__=InvocationsRequest, __doc__=InvocationsRequest.__doc__,
        dataframe_split=(split, Field(None, description="A frame, split-oriented.",
                                      json_schema_extra=not_null)),
        dataframe_records=documented(records, 'A frame as records: [{"text": ...}, ...].'),
        instances=documented(tf_style, 'TF-serving style: a list of texts, a list of records, '
                             'or {"text": [...]}.'),
        inputs=documented(tf_style, "As instances."),
    )


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

    model_config = ConfigDict(extra="forbid", strict=True)

    text: Text = Field(description="The comment (not blank).")
    published_at: str | float | None = Field(
        None, description="ISO 8601, epoch seconds, or the request's time_format (strftime)."
    )
    author: str | None = Field(None, description="Who wrote it.")
    likes: Integer = Field(0, ge=0, description="Its likes (the like-weighted breakdown).")
    id: str | None = Field(None, description="Your id for it, returned with its row.")


class AnalyzeRequest(BaseModel):
    """Comments to analyse, sent as JSON (a file goes as multipart/form-data instead)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"comments": ["Lost my bag again", "Great crew, thanks!"]},
                {"comments": [{"text": "Delayed 3 hours", "published_at": "2024-05-01T12:00:00Z",
                               "likes": 4}], "charts": True},
            ]
        },
    )

    comments: list[Annotated[
        Annotated[CommentIn, Tag("object")] | Annotated[Text, Tag("text")],
        Discriminator(lambda item: "text" if isinstance(item, str) else "object"),
    ]] = Field(
        min_length=1, description="The comments: texts (not blank), or objects with a text and "
        "its facts.",
    )
    time_format: str | None = Field(
        None, description="strftime format of published_at, when not ISO 8601 or epoch seconds."
    )
    charts: bool = Field(False, description="Also render the three charts as SVG.")
    aspects: list[AspectSpec] = ASPECTS_FIELD
    discover_aspects: DiscoverCount = DISCOVER_FIELD


class YouTubeAnalyzeRequest(BaseModel):
    """A video whose comments the server fetches (with its own API key) and analyses."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"video": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
                          "max_comments": 500, "order": "time", "charts": True}]
        },
    )

    video: Text = Field(
        description="A YouTube link (watch, youtu.be, shorts, embed, live) or id; any other "
        "text is refused with 422 bad_video."
    )
    # The bound before the validator, or pydantic's JSON schema says "ge" for "minimum".
    max_comments: Annotated[int, Field(ge=1), BeforeValidator(whole)] | None = Field(
        None, description="Comments to analyse, replies included (default "
        "insights.max_comments; at most insights.max_comments_limit).",
    )
    order: Literal["time", "relevance"] | None = Field(
        None, description="Newest first, or YouTube's relevance (default insights.order)."
    )
    charts: bool = Field(False, description="Also render the three charts as SVG.")
    aspects: list[AspectSpec] = ASPECTS_FIELD
    discover_aspects: DiscoverCount = DISCOVER_FIELD
