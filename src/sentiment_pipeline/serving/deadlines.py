"""uvicorn's HTTP/1.1 protocol with deadlines for a request's headers and for its body."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

# The lifespan state key under which the app hands its Deadlines to the protocol.
DEADLINES = "sentiment_pipeline.deadlines"


@dataclass(frozen=True)
class Deadlines:
    """serve.header_timeout_s and serve.body_timeout_s, and what counts a header timeout."""

    header_s: float
    body_s: float
    on_header_timeout: Callable[[], None] = lambda: None


def timeout_response(message: str) -> bytes:
    """A whole 408 answer that closes the connection, in TEI's error shape."""
    body = json.dumps({"error": message, "error_type": "timeout"}).encode()
    head = ("HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
    return head + body


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, which waits for headers and bodies for ever, with two deadlines.

    Headers: a request's headers must be complete within `header_s` of the connection opening
    (or of the request's first byte on a kept-alive connection), else the client gets 408 and
    the connection is closed. uvicorn has no such timeout: a client sending its headers a byte
    at a time kept its connection (and a task) for as long as it liked.
    Body: the app answers 408 when a body it reads is not in within `body_s` of the headers
    (serving/guard.py); here, a body still arriving at that deadline after the answer was sent
    (one nobody reads, as after a 401) closes the connection.
    The deadlines come from the app's lifespan state (DEADLINES); an app without them gets
    uvicorn's behaviour.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadlines: Deadlines | None = self.app_state.get(DEADLINES)
        self.header_timer: asyncio.TimerHandle | None = None
        self.body_timer: asyncio.TimerHandle | None = None
        self.body_late = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.start_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self.start_header_timer()  # the first byte of a request on a kept-alive connection
        super().data_received(data)
        state = self.conn.their_state
        if state is not h11.IDLE and self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None
            if state is h11.SEND_BODY and self.deadlines is not None:
                self.body_late = False
                self.body_timer = self.loop.call_later(self.deadlines.body_s, self.body_deadline)
        if state is not h11.SEND_BODY and self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None

    def start_header_timer(self) -> None:
        if self.deadlines is not None and self.header_timer is None:
            self.header_timer = self.loop.call_later(self.deadlines.header_s,
                                                     self.header_deadline)

    def cancel_timers(self) -> None:
        for timer in (self.header_timer, self.body_timer):
            if timer is not None:
                timer.cancel()
        self.header_timer = self.body_timer = None

    def header_deadline(self) -> None:
        self.header_timer = None
        if self.deadlines is None or self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE:
            self.deadlines.on_header_timeout()
            # h11 cannot answer a request it has not read: the answer is written as bytes.
            self.transport.write(timeout_response(
                f"the request's headers did not arrive within serve.header_timeout_s = "
                f"{self.deadlines.header_s:g} s; send the whole request at once"
            ))
            self.transport.close()

    def body_deadline(self) -> None:
        self.body_timer = None
        if self.conn.their_state is not h11.SEND_BODY or self.transport.is_closing():
            return
        if self.cycle is not None and self.cycle.response_complete:
            self.transport.close()
        else:  # the app reads it and answers 408, or answers first: closed then
            self.body_late = True

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.body_late and self.conn.their_state is h11.SEND_BODY:
            self.transport.close()
