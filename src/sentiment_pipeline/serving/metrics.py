"""Prometheus metrics named like TEI's (te_*), per app, or aggregated over worker processes."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

# Set by run_server for --workers > 1 (before a worker imports prometheus_client).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# TEI's duration buckets: 1.5x steps from 15 us to about 19 s.
DURATION_BUCKETS = tuple(1e-5 * 1.5**k for k in range(1, 36))
SIZE_BUCKETS = tuple(2.0**k for k in range(13))
TOKEN_BUCKETS = tuple(2.0**k for k in range(21))


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class ServingMetrics:
    """The service's metrics in a registry of their own (one per app: tests build many apps)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: they double the output for nothing
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "te_request_count", "Requests by route and status", ["route", "status"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "te_request_duration", "Request duration (s)", ["route"],
            buckets=DURATION_BUCKETS, registry=registry,
        )
        self.queue_duration = Histogram(
            "te_request_queue_duration", "Time a request's texts waited for a model call (s)",
            buckets=DURATION_BUCKETS, registry=registry,
        )
        self.inference_duration = Histogram(
            "te_request_inference_duration", "Time from a request's first model call to its "
            "last one's end (s)", buckets=DURATION_BUCKETS, registry=registry,
        )
        self.batch_size = Histogram(
            "te_batch_next_size", "Texts per model call", buckets=SIZE_BUCKETS, registry=registry
        )
        self.batch_tokens = Histogram(
            "te_batch_next_tokens", "Tokens per model call (unpadded)",
            buckets=TOKEN_BUCKETS, registry=registry,
        )
        self.batch_duration = Histogram(
            "te_batch_inference_duration", "Duration of one model call (s)",
            buckets=DURATION_BUCKETS, registry=registry,
        )
        self.model_calls = Counter(
            "te_model_calls", "Model calls (batches); fewer than requests when batching merges",
            registry=registry,
        )
        self.queue_size = Gauge(
            "te_queue_size", "Texts waiting for a model call", multiprocess_mode="livesum",
            registry=registry,
        )
        self.model_info = Gauge(
            "te_model_info", "The model served (1) and any served before it (0)",
            ["name", "version", "backend", "kind"], multiprocess_mode="livemax",
            registry=registry,
        )
        self.refused = Counter(
            "te_request_refused", "Requests answered 408, 413 or 429, by status and reason",
            ["status", "reason"], registry=registry,
        )
        self.reloads = Counter(
            "te_model_reload", "Model reloads by result (success, failure)", ["result"],
            registry=registry,
        )
        self.queues: dict[str, int] = {}  # texts waiting, per model served

    def report_queue(self, model: str, size: int) -> None:
        """`size` texts wait for the model `model` (te_queue_size: all models' together)."""
        self.queues[model] = size
        self.queue_size.set(sum(self.queues.values()))

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, status=str(status)).inc()
        self.request_duration.labels(route=route).observe(seconds)

    def observe_refused(self, status: int, reason: str) -> None:
        self.refused.labels(status=str(status), reason=reason).inc()

    def observe_batch(self, texts: int, tokens: int, seconds: float) -> None:
        self.model_calls.inc()
        self.batch_size.observe(texts)
        self.batch_tokens.observe(tokens)
        self.batch_duration.observe(seconds)

    def serving(self, labels: dict[str, str], previous: dict[str, str] | None = None) -> None:
        """Mark the model described by `labels` as served (and `previous` as no longer)."""
        if previous is not None:
            self.model_info.labels(**previous).set(0)
        self.model_info.labels(**labels).set(1)

    def render(self) -> bytes:
        """The exposition text: this process's metrics, or every worker's in multiprocess mode."""
        if not multiprocess_mode():
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    @staticmethod
    def process_exited() -> None:
        """Drop this worker's live gauges from the multiprocess files (at shutdown)."""
        if multiprocess_mode():
            multiprocess.mark_process_dead(os.getpid())
