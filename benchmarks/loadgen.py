"""A small closed-loop HTTP/1.1 load generator: N keep-alive connections, one request each in turn.

Written on asyncio streams rather than an HTTP client library so that the client costs as little
CPU as possible: on a 2-core machine it shares the cores with the server it measures.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    def summary(self, texts_per_request: int) -> dict[str, Any]:
        ok = sorted(self.latencies_ms)
        rate = len(ok) / self.seconds if self.seconds else 0.0
        return {
            "requests": self.requests,
            "errors": self.errors,
            "requests_per_s": round(rate, 1),
            "texts_per_s": round(rate * texts_per_request, 1),
            "p50_ms": round(statistics.median(ok), 2) if ok else None,
            "p99_ms": round(ok[min(len(ok) - 1, int(0.99 * len(ok)))], 2) if ok else None,
        }


def http_request(host: str, port: int, path: str, payload: Any) -> bytes:
    body = json.dumps(payload).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    ).encode()
    return head + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one response; return its status code."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the server")
    status = int(status_line.split()[1])
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return status


async def _connection(
    host: str,
    port: int,
    requests: itertools.cycle,
    deadline: float,
    latencies: list[float],
    counts: dict[str, int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            request = next(requests)
            start = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status = await _read_response(reader)
            counts["requests"] += 1
            if status == 200:
                latencies.append((time.perf_counter() - start) * 1000)
            else:
                counts["errors"] += 1
    finally:
        writer.close()


async def _run(
    host: str, port: int, requests: Sequence[bytes], concurrency: int, seconds: float
) -> LoadResult:
    cycle = itertools.cycle(requests)
    latencies: list[float] = []
    counts = {"requests": 0, "errors": 0}
    start = time.perf_counter()
    await asyncio.gather(
        *(
            _connection(host, port, cycle, start + seconds, latencies, counts)
            for _ in range(concurrency)
        )
    )
    return LoadResult(counts["requests"], counts["errors"], time.perf_counter() - start, latencies)


def run_load(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    seconds: float,
    warmup_s: float = 2.0,
) -> LoadResult:
    """Warm up for warmup_s (not counted), then measure `seconds` of closed-loop load."""
    if warmup_s > 0:
        asyncio.run(_run(host, port, requests, concurrency, warmup_s))
    return asyncio.run(_run(host, port, requests, concurrency, seconds))
