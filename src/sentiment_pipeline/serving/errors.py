"""Client-facing errors: one exception, rendered as TEI's or MLflow's error body by route."""

from __future__ import annotations

import json
import logging
import math
from typing import Literal

from starlette.responses import Response

from sentiment_pipeline.insights.comments import ErrorKind, InsightsError

logger = logging.getLogger(__name__)
# TEI's error types; each goes with a status (validation: 413 for a limit, 422 for a shape).
# unauthorized (401), rate_limited (429) and too_large (413) are the /v1 routes' and the token's;
# timeout (408) a body that did not arrive in time.
ErrorType = Literal["validation", "empty", "overloaded", "unhealthy", "backend", "unauthorized",
                    "rate_limited", "too_large", "timeout"]
MLFLOW_ROUTES = ("/invocations",)
# MLflow's scoring server answers {"error_code", "message"}; its codes by our status.
MLFLOW_CODES = {
    401: "UNAUTHENTICATED",
    404: "ENDPOINT_NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    424: "INTERNAL_ERROR",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}
# The HTTP status of each kind of failed analysis: the one place insights meets HTTP.
INSIGHTS_STATUS: dict[ErrorKind, int] = {
    "bad_request": 422,
    "bad_file": 422,
    "too_large": 413,
    "bad_video": 422,
    "video_not_found": 404,
    "comments_disabled": 422,
    "youtube_not_configured": 503,
    "youtube_key": 502,
    "youtube_quota": 503,
    "youtube_unavailable": 503,
    "youtube_unreachable": 502,
    "youtube_error": 502,
    "no_aspect_model": 409,
}


class ServingError(Exception):
    """A request the service refuses (4xx) or cannot answer now (503), with a message for it.

    `reason`: what /metrics counts a 408, 413 or 429 under (default: the error type).
    """

    def __init__(
        self, status: int, error_type: ErrorType, message: str, retry_after: float | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.retry_after = retry_after
        self.reason = reason or error_type


def mlflow_code(status: int) -> str:
    if status in MLFLOW_CODES:
        return MLFLOW_CODES[status]
    return "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"


def error_body(path: str, error: ServingError) -> dict[str, str]:
    """TEI's {"error", "error_type"}, or MLflow's {"error_code", "message"} on /invocations."""
    if path in MLFLOW_ROUTES:
        return {"error_code": mlflow_code(error.status), "message": error.message}
    return {"error": error.message, "error_type": error.error_type}


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """A Retry-After header: whole seconds, rounded up, at least 1 (none without a value)."""
    if seconds is None:
        return {}
    return {"retry-after": str(max(1, math.ceil(seconds - 1e-9)))}


def error_response(path: str, error: ServingError) -> Response:
    return Response(
        json.dumps(error_body(path, error)),
        status_code=error.status,
        media_type="application/json",
        headers=retry_after_header(error.retry_after),
    )


def insights_error_response(error: InsightsError) -> Response:
    """{"error", "error_type": kind} with the kind's status, and Retry-After when it has one;
    the setting behind a limit goes to the log, for the operator, not to the caller."""
    if error.setting is not None:
        logger.info("analysis refused (%s): %s", error.kind, error)
    return Response(
        json.dumps({"error": error.message, "error_type": error.kind}),
        status_code=INSIGHTS_STATUS[error.kind],
        media_type="application/json",
        headers=retry_after_header(error.retry_after),
    )
