"""Texts out of a request: TEI's inputs and MLflow's four JSON formats or CSV, with the limits."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
from pydantic import ValidationError

from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.serving.errors import ServingError
from sentiment_pipeline.serving.schemas import MLFLOW_FORMATS, PredictRequest

BATCH_FORM = '"inputs": [["t1"], ["t2"]]'
SINGLE_TEXTS = (
    "this model classifies single texts: send one text as \"inputs\": \"t1\" or a batch as "
    f"{BATCH_FORM}"
)
TEXT_COLUMN = "text"
EXPECTED = '{"inputs": "text" | [["t1"], ["t2"]], "raw_scores": false, "truncate": false}'
CONTENT_TYPES = ("application/json", "text/csv")


def _invalid(message: str, status: int = 422) -> ServingError:
    return ServingError(status, "validation", message)


def predict_texts(
    inputs: str | list[str] | list[list[str]], *, truncate: bool, limits: ServeConfig
) -> tuple[list[str], bool]:
    """The texts of a TEI /predict request, and whether it was a single text (not a batch)."""
    if isinstance(inputs, str):
        return [fit_text(inputs, "inputs", truncate=truncate, limits=limits)], True
    if not inputs:
        raise ServingError(400, "empty", f"`inputs` cannot be empty; send {BATCH_FORM}")
    if all(isinstance(item, str) for item in inputs):
        shown = json.dumps(inputs[:2])[:200]
        what = "a text pair" if len(inputs) == 2 else f"a flat list of {len(inputs)} strings"
        raise _invalid(f"`inputs` is {what} {shown}; {SINGLE_TEXTS}")
    count_limit(len(inputs), "`inputs`", limits)
    texts = []
    for index, item in enumerate(inputs):
        if not isinstance(item, list) or len(item) != 1:
            size = len(item) if isinstance(item, list) else 1
            what = "a text pair" if size == 2 else f"a list of {size} strings"
            raise _invalid(f"inputs[{index}] is {what}; {SINGLE_TEXTS}")
        texts.append(fit_text(item[0], f"inputs[{index}]", truncate=truncate, limits=limits))
    return texts, False


def count_limit(count: int, what: str, limits: ServeConfig) -> None:
    if count > limits.max_texts_per_request:
        raise _invalid(
            f"{what} holds {count} texts, more than serve.max_texts_per_request = "
            f"{limits.max_texts_per_request}; split it into several requests",
            413,
        )


def fit_text(text: str, where: str, *, truncate: bool, limits: ServeConfig) -> str:
    """`text` within serve.max_text_chars: cut when truncate, else a 413 naming `where`."""
    if len(text) <= limits.max_text_chars:
        return text
    if truncate:
        return text[: limits.max_text_chars]
    raise _invalid(
        f"{where} has {len(text)} characters, more than serve.max_text_chars = "
        f"{limits.max_text_chars}; shorten it or send truncate: true to cut it",
        413,
    )


def _bad(message: str, status: int = 400) -> ServingError:
    return ServingError(status, "validation", message)


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header; a charset other than UTF-8 is a 415."""
    if not content_type:
        return "application/json"
    mime, *parameters = (part.strip() for part in content_type.split(";"))
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            raise _bad(f"charset {value.strip()!r} is not supported; send UTF-8", 415)
    mime = mime.lower()
    if mime not in CONTENT_TYPES:
        raise _bad(
            f"content type {mime!r} is not supported; send one of {list(CONTENT_TYPES)} "
            "(Parquet bodies are not taken: send JSON or CSV)",
            415,
        )
    return mime


def decode_json(body: bytes, status: int = 400) -> Any:
    """The JSON value of a body; not UTF-8, not JSON or nested too deeply is a `status` error."""
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        message = f"the body is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    except json.JSONDecodeError as exc:
        message = f"the body is not valid JSON: {exc.msg} at position {exc.pos}"
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        message = f"the body is not valid JSON: {exc}"
    except RecursionError:
        message = "the body's JSON is nested too deeply"
    raise _bad(message, status)


def predict_request(body: bytes) -> PredictRequest:
    """The /predict request in `body`; anything malformed is a 422 naming the field."""
    payload = decode_json(body, 422)
    try:
        return PredictRequest.model_validate(payload)
    except ValidationError as exc:
        raise _invalid(f"invalid request ({validation_summary(exc)}); expected {EXPECTED}") from exc


def predict_input(body: bytes, limits: ServeConfig) -> tuple[list[str], bool, bool]:
    """A /predict body's texts, whether it was one text (not a batch), and raw_scores."""
    request = predict_request(body)
    texts, single = predict_texts(request.inputs, truncate=request.truncate, limits=limits)
    return texts, single, request.raw_scores


def validation_summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:6]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def invocation_texts(
    body: bytes, content_type: str | None, limits: ServeConfig
) -> list[str]:
    """The texts of an MLflow /invocations request (JSON or CSV), within the limits."""
    if media_type(content_type) == "text/csv":
        texts, truncate = csv_texts(body), True
    else:
        payload = decode_json(body)
        texts, truncate = json_texts(payload)
    if not texts:
        raise _bad("the request holds no rows; send at least one text")
    count_limit(len(texts), "the request", limits)
    return [fit_text(t, f"row {i}", truncate=truncate, limits=limits) for i, t in enumerate(texts)]


def csv_texts(body: bytes) -> list[str]:
    try:
        frame = pd.read_csv(
            io.StringIO(body.decode("utf-8")), dtype=str, keep_default_na=False
        )
    except UnicodeDecodeError as exc:
        raise _bad(f"the CSV body is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise _bad(f"the body is not a CSV table with a header row: {exc}") from exc
    column = text_column([str(c) for c in frame.columns])
    return [str(value) for value in frame.iloc[:, column]]


def json_texts(payload: Any) -> tuple[list[str], bool]:
    """Texts and the truncate option of an MLflow JSON payload (one of the four formats)."""
    if not isinstance(payload, dict):
        raise _bad(
            f"the input must be a JSON object with exactly one of the fields {list(MLFLOW_FORMATS)}"
            f"; received a {type(payload).__name__}"
        )
    present = [key for key in MLFLOW_FORMATS if key in payload]
    if len(present) != 1:
        raise _bad(
            f"the input must be a JSON object with exactly one of the fields {list(MLFLOW_FORMATS)}"
            f"; received the fields {sorted(payload)[:10]}"
        )
    truncate = request_truncate(payload.get("params"))
    key = present[0]
    data = payload[key]
    if key == "dataframe_split":
        values = split_values(data)
    elif key == "dataframe_records":
        values = record_values(data, key)
    else:
        values = tf_values(data, key)
    return [text_value(value, i) for i, value in enumerate(values)], truncate


def request_truncate(params: Any) -> bool:
    if params is None:
        return True
    if not isinstance(params, dict):
        raise _bad(f"params must be a JSON object, got {type(params).__name__}")
    truncate = params.get("truncate", True)
    if not isinstance(truncate, bool):
        raise _bad(f"params.truncate must be true or false, got {json.dumps(truncate)[:50]}")
    return truncate


def text_column(columns: Sequence[str]) -> int:
    """Which column holds the texts: 'text', or the only column there is."""
    if TEXT_COLUMN in columns:
        return list(columns).index(TEXT_COLUMN)
    if len(columns) == 1:
        return 0
    raise _bad(
        f"no column {TEXT_COLUMN!r} among the columns {list(columns)[:20]}; name the text "
        f"column {TEXT_COLUMN!r} (or send a single column)"
    )


def split_values(data: Any) -> list[Any]:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise _bad('dataframe_split must be {"columns": [...], "data": [[...], ...]}')
    columns = data.get("columns", [TEXT_COLUMN])
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise _bad("dataframe_split.columns must be a list of column names")
    column = text_column(columns)
    values = []
    for index, row in enumerate(data["data"]):
        if not isinstance(row, list) or len(row) != len(columns):
            raise _bad(
                f"dataframe_split.data[{index}] must be a list of {len(columns)} value(s), "
                f"one per column {columns[:20]}"
            )
        values.append(row[column])
    return values


def record_values(data: Any, key: str) -> list[Any]:
    if not isinstance(data, list):
        raise _bad(f'{key} must be a list of records [{{"text": ...}}, ...]')
    values = []
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            raise _bad(f'{key}[{index}] must be a record {{"text": ...}}')
        values.append(record[list(record)[text_column(list(record))]])
    return values


def tf_values(data: Any, key: str) -> list[Any]:
    """instances / inputs: a list of texts, a list of records, or columns {"text": [...]}."""
    if isinstance(data, dict):
        column = list(data)[text_column(list(data))] if data else TEXT_COLUMN
        values = data.get(column)
        if not isinstance(values, list):
            raise _bad(f'{key} must map the column {column!r} to a list of texts')
        return values
    if not isinstance(data, list):
        raise _bad(f'{key} must be a list of texts, a list of records or {{"text": [...]}}')
    if data and all(isinstance(item, dict) for item in data):
        return record_values(data, key)
    return data


def text_value(value: Any, index: int) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        raise _bad(f"row {index}: the text is null; send a string (an empty one is allowed)")
    raise _bad(f"row {index}: expected a text (a string), got {type(value).__name__}")
