"""ASGI middleware in front of the routes: body size and deadline, requests in flight, metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.serving.batcher import InFlight
from sentiment_pipeline.serving.errors import ServingError, error_response
from sentiment_pipeline.serving.metrics import ServingMetrics

INFERENCE_ROUTES = ("/predict", "/invocations")
# Analyses: admitted up to serve.max_concurrent_requests too, but counted apart from the
# inference requests (the batcher must not wait for texts a YouTube fetch will send later).
UPLOAD_ROUTE = "/v1/analyze"
ANALYSIS_ROUTES = (UPLOAD_ROUTE, "/v1/youtube/analyze")
ROUTES = (*INFERENCE_ROUTES, *ANALYSIS_ROUTES, "/health", "/info", "/metrics", "/docs",
          "/openapi.json", "/")
START = "sentiment_pipeline.start"  # scope key: when the request arrived (perf_counter)
# Scope key: why a request was answered 408, 413 or 429 (ServingError.reason), for /metrics.
REFUSAL = "sentiment_pipeline.refusal"
REFUSED = (408, 413, 429)

Scope = dict[str, Any]
Message = dict[str, Any]


def declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def too_large(size: int | str, limit: int) -> ServingError:
    return ServingError(
        413, "validation",
        f"the request body has {size} bytes, more than serve.max_body_bytes = {limit}; "
        "split it into several requests",
        reason="body_bytes",
    )


def upload_too_large(size: int | str, limit: int) -> ServingError:
    return ServingError(
        413, "too_large",
        f"the upload has {size} bytes, more than insights.max_upload_bytes = {limit}; "
        "send fewer comments (or only the columns needed)",
        reason="upload_bytes",
    )


def too_slow(size: int, timeout_s: float | None) -> ServingError:
    return ServingError(
        408, "timeout",
        f"the request body was not sent within serve.body_timeout_s = {timeout_s:g} s of its "
        f"headers ({size} bytes had arrived); send it at once",
        reason="body_timeout",
    )


async def read_body(scope: Scope, receive: Any, limit: int, refuse: Any = too_large, *,
                    timeout_s: float | None = None) -> bytes | None:
    """The whole body, refused (413, `refuse`'s error) as soon as it is known to exceed
    `limit` bytes, and (408) when it is not all in within `timeout_s`.

    None when the client left before sending it all.
    """
    length = declared_length(scope)
    if length is not None and length > limit:
        raise refuse(length, limit)
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise refuse(f"more than {limit}", limit)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        raise too_slow(size, timeout_s) from None


def replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def receive_again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


class Guard:
    """Refuses what is too large (413), too slow (408) or too many (429) before a route parses
    anything.

    A request is admitted to serve.max_concurrent_requests only once its body is in, so a
    client that sends its body slowly holds a connection (until serve.body_timeout_s), never a
    slot that another request could use.
    """

    def __init__(
        self, app: Any, *, config: ServeConfig, metrics: ServingMetrics, in_flight: InFlight,
        insights: InsightsConfig | None = None,
    ) -> None:
        self.app = app
        self.config = config
        self.metrics = metrics
        self.in_flight = in_flight
        self.insights = insights or InsightsConfig()
        self.analyses = 0  # analyses in flight in this worker

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        scope[START] = start
        path = scope["path"]
        route = path if path in ROUTES else "other"
        status = 500
        observed = False

        def observe() -> None:
            nonlocal observed
            if not observed:
                observed = True
                self.metrics.observe_request(route, status, time.perf_counter() - start)
                if status in REFUSED:
                    self.metrics.observe_refused(status, scope.get(REFUSAL, "other"))

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                observe()  # before the client has it all, so a /metrics call after sees it
            await send(message)

        admitted = analysis = False
        timeout_s = self.config.body_timeout_s
        try:
            if path in INFERENCE_ROUTES and scope["method"] == "POST":
                body = await read_body(scope, receive, self.config.max_body_bytes,
                                       timeout_s=timeout_s)
                if body is not None:
                    self.admit(self.in_flight.count, "requests")
                    self.in_flight.count += 1
                    admitted = True
            elif path in ANALYSIS_ROUTES and scope["method"] == "POST":
                body = await (
                    read_body(scope, receive, self.insights.max_upload_bytes, upload_too_large,
                              timeout_s=timeout_s)
                    if path == UPLOAD_ROUTE
                    else read_body(scope, receive, self.config.max_body_bytes,
                                   timeout_s=timeout_s)
                )
                if body is not None:
                    self.admit(self.analyses, "analyses")
                    self.analyses += 1
                    analysis = True
            else:
                await self.app(scope, receive, send_status)
                return
            if body is None:
                status = 499  # the client closed the connection
                return
            await self.app(scope, replay(body, receive), send_status)
        except ServingError as exc:
            scope[REFUSAL] = exc.reason
            response = error_response(path, exc)
            if exc.status in (408, 413):
                response.headers["connection"] = "close"  # the rest of the body goes unread
            await response(scope, receive, send_status)
        finally:
            if admitted:
                self.in_flight.count -= 1
            if analysis:
                self.analyses -= 1
            observe()

    def admit(self, count: int, what: str) -> None:
        limit = self.config.max_concurrent_requests
        if count >= limit:
            raise ServingError(
                429, "overloaded",
                f"model is overloaded: {count} {what} in flight in this "
                f"worker, the limit (serve.max_concurrent_requests) is {limit}; retry",
                reason="in_flight",
            )
