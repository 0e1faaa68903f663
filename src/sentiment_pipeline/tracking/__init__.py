"""MLflow for the stages; callers outside the package use the names in __all__."""

from sentiment_pipeline.tracking.experiments import (
    STAGE_RETRIES,
    STAGE_TIMEOUT_S,
    configure,
    experiment_name,
    stage_run,
)
from sentiment_pipeline.tracking.guard import STAGE_SCOPE, LoggingGuard
from sentiment_pipeline.tracking.runs import log_metrics
from sentiment_pipeline.tracking.store import (
    DATABASES,
    HTTP_BOUNDS,
    TrackingUnavailable,
    chain,
    http_bounds,
    one_line,
    probe,
    tracking_uri,
    uri_scheme,
)

__all__ = [
    "DATABASES",
    "HTTP_BOUNDS",
    "STAGE_RETRIES",
    "STAGE_SCOPE",
    "STAGE_TIMEOUT_S",
    "LoggingGuard",
    "TrackingUnavailable",
    "chain",
    "configure",
    "experiment_name",
    "http_bounds",
    "log_metrics",
    "one_line",
    "probe",
    "stage_run",
    "tracking_uri",
    "uri_scheme",
]
