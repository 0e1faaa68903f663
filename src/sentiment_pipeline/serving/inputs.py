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
PAIR_BATCH_FORM = '"inputs": [["t1", "aspect1"], ["t2", "aspect2"]]'
SINGLE_TEXTS = (
    "this model classifies single texts: send one text as \"inputs\": \"t1\" or a batch as "
    f"{BATCH_FORM}"
)
TEXT_PAIRS = (
    "this model classifies (text, aspect) pairs: send one pair as \"inputs\": "
    f"[\"text\", \"aspect\"] or a batch as {PAIR_BATCH_FORM}"
)
TEXT_COLUMN = "text"
PAIR_COLUMNS = (TEXT_COLUMN, "aspect")
EXPECTED = (
    '{"inputs": "text" | [["t1"], ["t2"]] (a pair model: ["text", "aspect"] | '
    '[["t1", "a1"], ["t2", "a2"]]), "raw_scores": false, "truncate": false}'
)
CONTENT_TYPES = ("application/json", "text/csv")
# One input of a model: a text, or a (text, aspect) pair for a pair model.
Item = str | tuple[str, str]


def _invalid(message: str, status: int = 422) -> ServingError:
    return ServingError(status, "validation", message)


def predict_texts(
    inputs: str | list[str] | list[list[str]], *, truncate: bool, limits: ServeConfig,
    pairs: bool = False,
) -> tuple[list[Item], bool]:
    """The inputs of a TEI /predict request (texts, or (text, aspect) pairs for a pair model),
    and whether it was a single input (not a batch)."""
    size, expected = (2, TEXT_PAIRS) if pairs else (1, SINGLE_TEXTS)
    if isinstance(inputs, str):
        if pairs:
            raise _invalid(f"`inputs` is a single text {json.dumps(inputs[:100])}; {expected}")
        return [fit_text(inputs, "inputs", truncate=truncate, limits=limits)], True
    if not inputs:
        batch = PAIR_BATCH_FORM if pairs else BATCH_FORM
        raise ServingError(400, "empty", f"`inputs` cannot be empty; send {batch}")
    if all(isinstance(item, str) for item in inputs):
        if pairs and len(inputs) == size:
            return [fit_item(inputs, "inputs", truncate=truncate, limits=limits)], True
        shown = json.dumps(inputs[:2])[:200]
        what = "a text pair" if len(inputs) == 2 else f"a flat list of {len(inputs)} strings"
        raise _invalid(f"`inputs` is {what} {shown}; {expected}")
    count_limit(len(inputs), "`inputs`", limits, "pairs" if pairs else "texts")
    items = []
    for index, item in enumerate(inputs):
        if not isinstance(item, list) or len(item) != size:
            length = len(item) if isinstance(item, list) else 1
            what = "a text pair" if length == 2 else f"a list of {length} strings"
            raise _invalid(f"inputs[{index}] is {what}; {expected}")
        items.append(fit_item(item, f"inputs[{index}]", truncate=truncate, limits=limits))
    return items, False


def fit_item(parts: Sequence[str], where: str, *, truncate: bool, limits: ServeConfig) -> Item:
    """One input from its parts: a text alone, or a (text, aspect) pair, each part fit_text's
    (a pair's parts are named `where`[0] and `where`[1])."""
    if len(parts) == 1:
        return fit_text(parts[0], where, truncate=truncate, limits=limits)
    text, aspect = (fit_text(part, f"{where}[{k}]", truncate=truncate, limits=limits)
                    for k, part in enumerate(parts))
    return text, aspect


def count_limit(count: int, what: str, limits: ServeConfig, noun: str = "texts") -> None:
    if count > limits.max_texts_per_request:
        raise _invalid(
            f"{what} holds {count} {noun}, more than serve.max_texts_per_request = "
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


def predict_input(
    body: bytes, limits: ServeConfig, pairs: bool = False
) -> tuple[list[Item], bool, bool]:
    """A /predict body's inputs (pairs for a pair model), whether it was one input (not a
    batch), and raw_scores."""
    request = predict_request(body)
    items, single = predict_texts(request.inputs, truncate=request.truncate, limits=limits,
                                  pairs=pairs)
    return items, single, request.raw_scores


def validation_summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:6]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def invocation_texts(
    body: bytes, content_type: str | None, limits: ServeConfig, pairs: bool = False
) -> list[Item]:
    """The inputs of an MLflow /invocations request (JSON or CSV), within the limits: a
    column `text` (or the only column), or for a pair model the columns `text` and `aspect`."""
    columns = PAIR_COLUMNS if pairs else (TEXT_COLUMN,)
    if media_type(content_type) == "text/csv":
        rows, truncate = csv_rows(body, columns), True
    else:
        payload = decode_json(body)
        rows, truncate = json_rows(payload, columns)
    texts = [[text_value(value, i, column) for value, column in zip(row, columns, strict=True)]
             for i, row in enumerate(rows)]
    if not texts:
        raise _bad("the request holds no rows; send at least one text")
    count_limit(len(texts), "the request", limits, "pairs" if pairs else "texts")
    return [fit_item(parts, f"row {i}", truncate=truncate, limits=limits)
            for i, parts in enumerate(texts)]


def csv_rows(body: bytes, columns: Sequence[str]) -> list[list[Any]]:
    try:
        frame = pd.read_csv(
            io.StringIO(body.decode("utf-8")), dtype=str, keep_default_na=False
        )
    except UnicodeDecodeError as exc:
        raise _bad(f"the CSV body is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise _bad(f"the body is not a CSV table with a header row: {exc}") from exc
    positions = column_positions([str(c) for c in frame.columns], columns)
    return [[str(value) for value in row] for row in frame.iloc[:, positions].itertuples(
        index=False, name=None)]


def json_rows(payload: Any, columns: Sequence[str]) -> tuple[list[list[Any]], bool]:
    """Rows (a value per wanted column) and the truncate option of an MLflow JSON payload (one
    of the four formats)."""
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
        return split_rows(data, columns), truncate
    if key == "dataframe_records":
        return record_rows(data, key, columns), truncate
    return tf_rows(data, key, columns), truncate


def request_truncate(params: Any) -> bool:
    if params is None:
        return True
    if not isinstance(params, dict):
        raise _bad(f"params must be a JSON object, got {type(params).__name__}")
    truncate = params.get("truncate", True)
    if not isinstance(truncate, bool):
        raise _bad(f"params.truncate must be true or false, got {json.dumps(truncate)[:50]}")
    return truncate


def column_positions(names: Sequence[str], columns: Sequence[str]) -> list[int]:
    """Where the wanted `columns` are among `names`: by name, or for a single wanted column
    the only column there is."""
    if all(column in names for column in columns):
        return [list(names).index(column) for column in columns]
    if len(columns) == 1 and len(names) == 1:
        return [0]
    if len(columns) == 1:
        raise _bad(
            f"no column {TEXT_COLUMN!r} among the columns {list(names)[:20]}; name the text "
            f"column {TEXT_COLUMN!r} (or send a single column)"
        )
    missing = [column for column in columns if column not in names]
    raise _bad(
        f"no column {missing[0]!r} among the columns {list(names)[:20]}; this model classifies "
        f"(text, aspect) pairs: send the columns {list(columns)}"
    )


def split_rows(data: Any, columns: Sequence[str]) -> list[list[Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise _bad('dataframe_split must be {"columns": [...], "data": [[...], ...]}')
    names = data.get("columns", list(columns))
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise _bad("dataframe_split.columns must be a list of column names")
    positions = column_positions(names, columns)
    rows = []
    for index, row in enumerate(data["data"]):
        if not isinstance(row, list) or len(row) != len(names):
            raise _bad(
                f"dataframe_split.data[{index}] must be a list of {len(names)} value(s), "
                f"one per column {names[:20]}"
            )
        rows.append([row[p] for p in positions])
    return rows


def record_rows(data: Any, key: str, columns: Sequence[str]) -> list[list[Any]]:
    shape = "{" + ", ".join(f'"{c}": ...' for c in columns) + "}"
    if not isinstance(data, list):
        raise _bad(f"{key} must be a list of records [{shape}, ...]")
    rows = []
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            raise _bad(f"{key}[{index}] must be a record {shape}")
        names = list(record)
        rows.append([record[names[p]] for p in column_positions(names, columns)])
    return rows


def tf_rows(data: Any, key: str, columns: Sequence[str]) -> list[list[Any]]:
    """instances / inputs: a list of texts (of [text, aspect] pairs for a pair model), a list
    of records, or columns {"text": [...]} ({"text": [...], "aspect": [...]})."""
    if isinstance(data, dict):
        names = list(data) or list(columns)
        wanted = [names[p] for p in column_positions(names, columns)] if data else names
        values = [data.get(name) for name in wanted]
        if not all(isinstance(v, list) for v in values):
            named = " and ".join(repr(name) for name in wanted)
            raise _bad(f"{key} must map the column{'s' if len(wanted) > 1 else ''} {named} to "
                       f"{'lists' if len(wanted) > 1 else 'a list'} of texts")
        if len({len(v) for v in values}) > 1:
            raise _bad(f"{key}'s columns {wanted} must be lists of the same length")
        return [list(row) for row in zip(*values, strict=True)]
    if not isinstance(data, list):
        shape = "[text, aspect] pairs" if len(columns) == 2 else "texts"
        raise _bad(f"{key} must be a list of {shape}, a list of records or "
                   + "{" + ", ".join(f'"{c}": [...]' for c in columns) + "}")
    if data and all(isinstance(item, dict) for item in data):
        return record_rows(data, key, columns)
    if len(columns) == 1:
        return [[item] for item in data]
    rows = []
    for index, item in enumerate(data):
        if not isinstance(item, list) or len(item) != len(columns):
            raise _bad(f"{key}[{index}] must be a [text, aspect] pair (a list of two strings); "
                       "this model classifies (text, aspect) pairs")
        rows.append(item)
    return rows


def text_value(value: Any, index: int, column: str = TEXT_COLUMN) -> str:
    """A row's value of `column` (the text, or a pair's aspect), which must be a string."""
    if isinstance(value, str):
        return value
    what = "text" if column == TEXT_COLUMN else column
    if value is None:
        raise _bad(f"row {index}: the {what} is null; send a string (an empty one is allowed)")
    raise _bad(f"row {index}: expected a{'n' if what[0] in 'aeiou' else ''} {what} (a string), "
               f"got {type(value).__name__}")
