"""Benchmark: how fast `GET /health` answers while the server parses four of the heaviest
requests it accepts.

One `sentiment-pipeline serve` process (the airline baseline, one worker) on 127.0.0.1. The
heavy requests, sent at once: two `POST /invocations` of a `text/csv` body of 200,000 columns
(1.9 MB, a `text` column first: the body of issue 17's finding 3, answered 200) and two
`POST /v1/analyze` uploads of 10,000 airline tweets (2.1 MB CSV, with their time, likes and
author columns, charts on). Meanwhile a probe opens a new connection and sends `GET /health`
every `--interval-ms`, whether or not the earlier probes have been answered (as a load
balancer does), until every heavy request is answered; the same probe runs for `--idle-s`
first with nothing else going on. A blocked event loop shows as every probe sent while it is
blocked waiting for it, not as one slow sample.

    python benchmarks/bench_event_loop.py [--label after] [--interval-ms 25] [--idle-s 3]

The result goes under `--label` in benchmarks/results/event_loop.json (other labels are
kept). The `before` run of BENCHMARKS.md had main's src on PYTHONPATH and main's params.yaml
in place of this checkout's (which has settings the old code refuses).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench_serving import BIN, HOST, ours
from common import AIRLINE, RESULTS, airline_project, machine_info, print_table

COLUMNS = 200_000
UPLOAD_ROWS = 10_000
TARGET_P99_MS = 100.0


def wide_csv(columns: int = COLUMNS) -> bytes:
    """A header of `columns` names (`text` first) and one row: 1.9 MB for 200,000."""
    names = ["text", *(f"c{i}" for i in range(1, columns))]
    values = ["the flight was delayed three hours", *("x" for _ in range(1, columns))]
    return (",".join(names) + "\n" + ",".join(values) + "\n").encode()


def airline_upload(rows: int = UPLOAD_ROWS) -> bytes:
    """The first `rows` airline tweets with every column, as a file a user would upload."""
    return pd.read_csv(AIRLINE).head(rows).to_csv(index=False).encode()


def multipart(data: bytes, fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = "bench-event-loop-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        .encode() for name, value in fields.items()
    ]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 'filename="comments.csv"\r\nContent-Type: text/csv\r\n\r\n'.encode()
                 + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request(path: str, body: bytes, content_type: str, port: int) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return head + body


def heavy_requests(port: int) -> list[tuple[str, bytes]]:
    csv = request("/invocations", wide_csv(), "text/csv", port)
    form, content_type = multipart(airline_upload(), {
        "text_column": "text", "time_column": "tweet_created", "time_format": "%d-%m-%Y %H.%M",
        "likes_column": "retweet_count", "author_column": "name", "charts": "true",
    })
    upload = request("/v1/analyze", form, content_type, port)
    return [("csv_200k_columns", csv), ("csv_200k_columns", csv),
            ("upload_10k_comments", upload), ("upload_10k_comments", upload)]


async def send(port: int, raw: bytes) -> tuple[int, float, int]:
    """(status, seconds, response bytes) of one request on a new connection."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(raw)
        await writer.drain()
        response = await reader.read()  # Connection: close, so up to EOF
    finally:
        writer.close()
    status = int(response.split(b" ", 2)[1]) if response else 0
    return status, time.perf_counter() - started, len(response)


async def probe(port: int, interval_s: float, done: asyncio.Event) -> list[tuple[int, float]]:
    """GET /health every `interval_s` until `done` is set; (status, ms) of each probe."""
    raw = f"GET /health HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
    probes: list[asyncio.Task] = []
    start = time.perf_counter()
    while not done.is_set():
        probes.append(asyncio.create_task(send(port, raw)))
        next_at = start + len(probes) * interval_s
        try:
            await asyncio.wait_for(done.wait(), max(0.0, next_at - time.perf_counter()))
        except TimeoutError:
            pass
    return [(status, seconds * 1000) for status, seconds, _ in await asyncio.gather(*probes)]


def summary(probes: list[tuple[int, float]]) -> dict[str, Any]:
    ms = sorted(latency for _, latency in probes)
    return {
        "probes": len(ms),
        "not_200": sum(1 for status, _ in probes if status != 200),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 1),
        "max_ms": round(ms[-1], 1),
    }


async def measure(port: int, interval_s: float, idle_s: float) -> dict[str, Any]:
    done = asyncio.Event()
    idle = asyncio.create_task(probe(port, interval_s, done))
    await asyncio.sleep(idle_s)
    done.set()
    idle_probes = await idle

    heavy = heavy_requests(port)
    done = asyncio.Event()
    loaded = asyncio.create_task(probe(port, interval_s, done))
    started = time.perf_counter()
    answers = await asyncio.gather(*(send(port, raw) for _, raw in heavy))
    heavy_s = time.perf_counter() - started
    done.set()
    loaded_probes = await loaded
    return {
        "idle": summary(idle_probes),
        "heavy": summary(loaded_probes),
        "heavy_seconds": round(heavy_s, 2),
        "heavy_requests": [
            {"request": name, "body_bytes": len(raw), "status": status,
             "seconds": round(seconds, 2), "response_bytes": size}
            for (name, raw), (status, seconds, size) in zip(heavy, answers, strict=True)
        ],
    }


def warm_up(port: int) -> None:
    """One small request of each heavy kind, so nothing is started for the first time below."""
    small_csv = request("/invocations", wide_csv(2_000), "text/csv", port)
    form, content_type = multipart(airline_upload(50), {"text_column": "text"})
    for raw in (small_csv, request("/v1/analyze", form, content_type, port)):
        status = asyncio.run(send(port, raw))[0]
        if status != 200:
            raise SystemExit(f"the warm-up request was answered {status}")


def source_commit() -> str | None:
    """The commit of the sentiment_pipeline the server runs (PYTHONPATH's, else this one)."""
    import sentiment_pipeline

    folder = Path(sentiment_pipeline.__file__).parent
    result = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() or None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after", help="the key of this run in the result")
    parser.add_argument("--interval-ms", type=float, default=25.0)
    parser.add_argument("--idle-s", type=float, default=3.0)
    args = parser.parse_args()

    from sentiment_pipeline.stages import run_stage

    paths, manager = airline_project("serving")
    if not (paths.baseline_model / "model.json").is_file():
        run_stage("train_baseline", manager.config, paths)
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    with ours(paths.baseline_model, paths.root, env) as port:
        warm_up(port)
        run = asyncio.run(measure(port, args.interval_ms / 1000, args.idle_s))
    run.update(commit=source_commit(), interval_ms=args.interval_ms,
               met=run["heavy"]["p99_ms"] < TARGET_P99_MS)

    rows = [{"phase": phase, **run[phase]} for phase in ("idle", "heavy")]
    print_table(rows)
    print_table(run["heavy_requests"])
    print(f"/health p99 while parsing: {run['heavy']['p99_ms']} ms "
          f"(target < {TARGET_P99_MS:g} ms: {'met' if run['met'] else 'not met'})")

    path = RESULTS / "event_loop.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    runs = {**previous.get("runs", {}), args.label: run}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine_info(), "target_p99_ms": TARGET_P99_MS,
                                "runs": runs}, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
