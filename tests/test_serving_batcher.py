"""The batch planner (a pure function) and the batching loop, with a fake model."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentiment_pipeline.serving import batcher as batcher_module
from sentiment_pipeline.serving.batcher import Batcher, InFlight, QueuedText, plan_batch
from serving_fakes import FakeModel


def queue_of(*requests: list[int]) -> list[QueuedText]:
    """Texts of each request (their token counts), in arrival order."""
    return [QueuedText(number, tokens) for number, texts in enumerate(requests) for tokens in texts]


def test_an_empty_queue_plans_nothing() -> None:
    assert plan_batch([], max_batch_tokens=100, max_batch_requests=4) == []


def test_everything_that_fits_goes_shortest_first() -> None:
    queue = queue_of([7], [3], [5, 4])

    assert plan_batch(queue, max_batch_tokens=1000, max_batch_requests=8) == [1, 3, 2, 0]


def test_the_padded_size_stays_within_the_token_budget() -> None:
    queue = queue_of([10], [10], [10], [10], [10])

    chosen = plan_batch(queue, max_batch_tokens=30, max_batch_requests=8)

    assert len(chosen) == 3 and 0 in chosen


def test_the_oldest_text_always_goes_even_alone_over_the_budget() -> None:
    queue = queue_of([100], [5], [5])

    assert plan_batch(queue, max_batch_tokens=50, max_batch_requests=8) == [0]


def test_only_the_oldest_requests_join_a_call() -> None:
    queue = queue_of([4, 4], [4], [4, 4])

    assert sorted(plan_batch(queue, max_batch_tokens=1000, max_batch_requests=2)) == [0, 1, 2]
    assert plan_batch(queue, max_batch_tokens=1000, max_batch_requests=1) == [0, 1]


def test_texts_of_similar_length_are_grouped() -> None:
    queue = queue_of([20], [5], [21], [60], [19])

    assert plan_batch(queue, max_batch_tokens=63, max_batch_requests=8) == [4, 0, 2]


@settings(max_examples=200, deadline=None)
@given(
    requests=st.lists(st.lists(st.integers(1, 80), min_size=1, max_size=6), min_size=1,
                      max_size=12),
    budget=st.integers(1, 400),
    max_requests=st.integers(1, 6),
)
def test_every_plan_is_a_valid_batch(requests: list[list[int]], budget: int,
                                     max_requests: int) -> None:
    queue = queue_of(*requests)

    chosen = plan_batch(queue, max_batch_tokens=budget, max_batch_requests=max_requests)

    assert 0 in chosen and len(set(chosen)) == len(chosen)
    tokens = [queue[i].tokens for i in chosen]
    assert tokens == sorted(tokens)
    assert len(chosen) == 1 or max(tokens) * len(chosen) <= budget
    assert len({queue[i].request for i in chosen}) <= max_requests


def batcher_for(model: FakeModel, **overrides: float) -> Batcher:
    settings = {"max_batch_tokens": 16384, "max_batch_requests": 32, "max_wait_ms": 5.0}
    settings.update(overrides)
    return Batcher(model, **settings)  # type: ignore[arg-type]


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 20))


async def settle() -> None:
    """Let every task that is ready run until it blocks (no wall-clock time involved): the
    batcher's path from a wake-up to taking a batch has no await that needs time to pass."""
    for _ in range(20):
        await asyncio.sleep(0)


def test_concurrent_requests_share_model_calls_off_the_event_loop() -> None:
    model = FakeModel()

    async def scenario():
        batcher = batcher_for(model)
        batcher.start()
        texts = [["a" * (i + 1)] for i in range(16)]
        results = await asyncio.gather(*(batcher.scores(t) for t in texts))
        await batcher.stop()
        return texts, results, batcher.calls

    texts, results, calls = run(scenario())

    assert calls == len(model.calls) < len(texts)
    for request, scored in zip(texts, results, strict=True):
        assert scored.scores.tolist() == [[len(request[0]), 0.0, -len(request[0])]]
        assert scored.labels == model.labels
    assert model.threads and all(name.startswith("inference") for name in model.threads)


def test_a_lone_request_does_not_wait_but_one_on_its_way_is_waited_for() -> None:
    """max_wait_ms holds a call back only while another admitted request has yet to queue."""
    model = FakeModel()
    in_flight = InFlight()
    max_wait_ms = 60_000  # a wait would outlast the test: only the batcher's choice shows

    async def scenario():
        batcher = Batcher(model, max_batch_tokens=16384, max_batch_requests=32,
                          max_wait_ms=max_wait_ms, in_flight=in_flight)
        batcher.start()
        in_flight.count = 1  # the guard admitted one request: it is the one queued
        start = time.perf_counter()
        lone = asyncio.ensure_future(batcher.scores(["alone"]))
        await settle()
        assert batcher.queue_size == 0, "the lone request was held back"
        await lone
        lone_s = time.perf_counter() - start
        in_flight.count = 2  # two admitted; the second queues after the batcher has looked
        first = asyncio.ensure_future(batcher.scores(["first"]))
        await settle()
        assert batcher.queue_size == 1, "the first of two was not held back for the second"
        await asyncio.gather(first, batcher.scores(["second"]))
        await batcher.stop()
        return lone_s

    lone_s = run(scenario())

    assert lone_s < max_wait_ms / 1000  # not the max_wait_ms
    assert model.calls[-1] == ["first", "second"] or model.calls[-1] == ["second", "first"]


def test_max_batch_requests_1_gives_each_request_its_own_calls() -> None:
    model = FakeModel()

    async def scenario():
        batcher = batcher_for(model, max_batch_requests=1)
        batcher.start()
        await asyncio.gather(*(batcher.scores(["x", "yy"]) for _ in range(5)))
        await batcher.stop()

    run(scenario())

    assert len(model.calls) == 5 and all(call == ["x", "yy"] for call in model.calls)


def test_a_request_over_the_budget_is_split_and_reassembled_in_order() -> None:
    model = FakeModel()
    texts = [" ".join(["w"] * n) for n in (1, 9, 3, 7, 2)]

    async def scenario():
        batcher = batcher_for(model, max_batch_tokens=12)
        batcher.start()
        scored = await batcher.scores(texts)
        await batcher.stop()
        return scored

    scored = run(scenario())

    assert len(model.calls) > 1
    assert scored.scores[:, 0].tolist() == [len(t) for t in texts]
    assert scored.queue_s >= 0 and scored.inference_s >= 0


def test_a_failed_call_fails_its_requests_and_the_batcher_goes_on() -> None:
    model = FakeModel(fail_on="boom")

    async def scenario():
        batcher = batcher_for(model, max_batch_requests=1)
        batcher.start()
        with pytest.raises(RuntimeError, match="cannot score 'boom'"):
            await batcher.scores(["boom"])
        scored = await batcher.scores(["fine"])
        await batcher.stop()
        return scored

    assert run(scenario()).scores.shape == (1, 3)


def test_texts_of_a_request_that_went_away_are_not_scored() -> None:
    model = FakeModel()

    async def scenario():
        batcher = batcher_for(model, max_batch_requests=1)
        batcher.start()
        model.gate.clear()  # the first call blocks in the inference thread
        first = asyncio.ensure_future(batcher.scores(["first"]))
        await asyncio.to_thread(model.wait_called, 1)
        gone = asyncio.ensure_future(batcher.scores(["gone"]))
        await settle()
        assert batcher.queue_size == 1  # "gone" is queued behind the blocked call
        gone.cancel()
        await settle()
        model.gate.set()
        await first
        await batcher.stop()

    run(scenario())

    assert model.calls == [["first"]]


def test_stop_serves_what_is_queued() -> None:
    model = FakeModel()

    async def scenario():
        batcher = batcher_for(model, max_batch_requests=1)
        batcher.start()
        pending = [asyncio.ensure_future(batcher.scores([f"t{i}"])) for i in range(4)]
        await asyncio.sleep(0)
        await batcher.stop()
        return [p.result().scores.shape for p in pending]

    assert run(scenario()) == [(1, 3)] * 4


def test_a_long_queue_is_planned_among_its_oldest_texts_and_served_in_full(monkeypatch) -> None:
    # Planning over every queued text held the event loop for ~70 ms a call with 40,000 queued.
    model = FakeModel()
    planned: list[int] = []

    def spy(queue, **limits):
        planned.append(len(queue))
        return plan_batch(queue, **limits)

    monkeypatch.setattr(batcher_module, "plan_batch", spy)
    requests = [[f"text {r} {i}" for i in range(300)] for r in range(3)]  # 5 tokens each

    async def scenario():
        batcher = batcher_for(model, max_batch_tokens=50)  # 10 texts a call
        batcher.start()
        results = await asyncio.gather(*(batcher.scores(texts) for texts in requests))
        await batcher.stop()
        return results

    results = run(scenario())

    assert max(planned) == batcher_module.PLAN_WINDOW * 10 < 900
    for texts, scored in zip(requests, results, strict=True):
        assert scored.scores[:, 0].tolist() == [len(t) for t in texts]
    assert all(len(call) <= 10 for call in model.calls)
