"""Client-facing errors: one exception, rendered as TEI's or MLflow's error body by route."""

from __future__ import annotations

import json
from typing import Literal

from starlette.responses import Response

# TEI's error types; each goes with a status (validation: 413 for a limit, 422 for a shape).
ErrorType = Literal["validation", "empty", "overloaded", "unhealthy", "backend"]
MLFLOW_ROUTES = ("/invocations",)
# MLflow's scoring server answers {"error_code", "message"}; its codes by our status.
MLFLOW_CODES = {
    404: "ENDPOINT_NOT_FOUND",
    424: "INTERNAL_ERROR",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}


class ServingError(Exception):
    """A request the service refuses (4xx) or cannot answer now (503), with a message for it."""

    def __init__(self, status: int, error_type: ErrorType, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


def mlflow_code(status: int) -> str:
    if status in MLFLOW_CODES:
        return MLFLOW_CODES[status]
    return "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"


def error_body(path: str, error: ServingError) -> dict[str, str]:
    """TEI's {"error", "error_type"}, or MLflow's {"error_code", "message"} on /invocations."""
    if path in MLFLOW_ROUTES:
        return {"error_code": mlflow_code(error.status), "message": error.message}
    return {"error": error.message, "error_type": error.error_type}


def error_response(path: str, error: ServingError) -> Response:
    return Response(
        json.dumps(error_body(path, error)),
        status_code=error.status,
        media_type="application/json",
    )
