"""The parse pool: parsing, upload reading and analyses run off the event loop, bounded."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial

import pytest

from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.insights.comments import BadFileError
from sentiment_pipeline.insights.files import read_comments
from sentiment_pipeline.serving.app import create_app
from sentiment_pipeline.serving.errors import ServingError
from sentiment_pipeline.serving.inputs import invocation_texts
from sentiment_pipeline.serving.pool import ParsePool
from server_process import begin_post, call, finish_post, serving
from serving_fakes import FakeModel, FakeProvider, held_pool, serve_async, until
from tiny_sklearn import save_tiny_model


def wide_csv(columns: int) -> bytes:
    """A header of `columns` names, `text` first, and one row."""
    return ("text," + ",".join(f"c{i}" for i in range(1, columns)) + "\nlost my bag,"
            + ",".join("x" for _ in range(1, columns)) + "\n").encode()


WIDE_CSV = wide_csv(2000)


def test_a_wide_csv_is_parsed_off_the_event_loop_which_keeps_answering() -> None:
    # Issue 17, finding 3: /invocations parsed text/csv with pandas in the async route, so one
    # 200,000-column CSV held /health for 7.46 s. Here the parse is held in the pool's worker
    # while /health and a small /predict (parsed on the loop) are answered.
    config = ServeConfig(max_wait_ms=0)
    pool, executor = held_pool(config)
    app = create_app(config, FakeProvider(FakeModel()), pool=pool)

    async def scenario(client):
        loop_thread = threading.current_thread()
        csv = asyncio.ensure_future(client.post(
            "/invocations", content=WIDE_CSV, headers={"content-type": "text/csv"}))
        await until(lambda: executor.threads)  # the parse has started, held at the gate
        health = await client.get("/health")
        small = await client.post("/predict", json={"inputs": "small, parsed inline"})
        parsing = not csv.done()
        executor.gate.set()
        return loop_thread, health.status_code, small.status_code, parsing, await csv

    loop_thread, health, small, parsing, csv = serve_async(app, scenario)

    assert (health, small, parsing) == (200, 200, True)
    assert csv.status_code == 200 and len(csv.json()["predictions"]) == 1
    assert executor.submitted == 1  # the CSV only: the small body never left the loop
    assert loop_thread not in executor.threads


def test_beyond_its_workers_and_queue_the_pool_refuses_with_429_and_counts_it() -> None:
    config = ServeConfig(max_wait_ms=0, max_parse_workers=1, max_parse_queue=1)
    pool, executor = held_pool(config)
    app = create_app(config, FakeProvider(FakeModel()), pool=pool)

    async def scenario(client):
        held = [asyncio.ensure_future(client.post(
            "/invocations", content=WIDE_CSV, headers={"content-type": "text/csv"}))
            for _ in range(2)]
        await until(lambda: pool.jobs == 2)  # one running, one waiting
        refused = await client.post("/invocations", content=WIDE_CSV,
                                    headers={"content-type": "text/csv"})
        executor.gate.set()
        statuses = [r.status_code for r in await asyncio.gather(*held)]
        return refused, statuses, (await client.get("/metrics")).text

    refused, statuses, metrics = serve_async(app, scenario)

    assert statuses == [200, 200]
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    body = refused.json()
    assert body["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    for fragment in ("2 jobs", "serve.max_parse_workers = 1", "serve.max_parse_queue = 1"):
        assert fragment in body["message"]
    assert 'te_request_refused_total{reason="parse_queue",status="429"} 1.0' in metrics


def test_jobs_run_in_other_processes_and_their_errors_come_back_whole() -> None:
    pool = ParsePool(workers=1, queue=0, inline_bytes=0)

    async def scenario():
        pid = await pool.run(os.getpid)
        with pytest.raises(ServingError) as refused:
            await pool.run(invocation_texts, b"\xff\xfe", "text/csv", ServeConfig())
        with pytest.raises(BadFileError) as unreadable:
            await pool.run(partial(read_comments, b"a,b\n1,2\n", filename="comments.csv"))
        return pid, refused.value, unreadable.value

    try:
        pid, refused, unreadable = asyncio.run(scenario())
    finally:
        pool.close()

    assert pid != os.getpid()
    assert (refused.status, refused.error_type, refused.reason) == (400, "validation",
                                                                    "validation")
    assert "not valid UTF-8" in refused.message
    assert unreadable.kind == "bad_file" and "comments.csv" in unreadable.message
    assert any("raised in parse process" in note for note in unreadable.__notes__)


def test_a_worker_that_dies_fails_its_job_and_the_next_job_gets_a_new_one() -> None:
    pool = ParsePool(workers=1, queue=0, inline_bytes=0)

    async def scenario():
        first = await pool.run(os.getpid)
        with pytest.raises(BrokenProcessPool):
            await pool.run(os._exit, 1)
        return first, await pool.run(os.getpid)

    try:
        first, after = asyncio.run(scenario())
    finally:
        pool.close()

    assert after not in (first, os.getpid())


@pytest.mark.slow
def test_a_real_server_answers_health_while_it_parses_a_wide_csv(tmp_path) -> None:
    # Finding 3 as it was seen: pandas parsing a wide CSV in the async route held GET /health
    # for as long as the parse took (7.46 s for 200,000 columns); 100,000 take about 3 s here.
    save_tiny_model(tmp_path / "tiny")
    body = wide_csv(100_000)
    with serving(["--model", str(tmp_path / "tiny"), "--trust"], cwd=tmp_path) as served:
        pending = begin_post(served.port, "/invocations", len(body), content_type="text/csv")
        with ThreadPoolExecutor(1) as client:
            started = time.monotonic()
            csv = client.submit(finish_post, pending, body)
            time.sleep(0.5)  # the server has the body and is parsing it
            asked = time.monotonic()
            health = call(served.port, "/health")[0]
            health_s = time.monotonic() - asked
            status, answer = csv.result()
            csv_s = time.monotonic() - started

    assert (health, status) == (200, 200), answer
    # Blocked, /health waited for the rest of the parse (about csv_s - 0.5 s).
    assert health_s < 0.25 * csv_s, f"/health took {health_s:.2f} s, the CSV {csv_s:.2f} s"
