"""Dynamic batching: texts of concurrent requests share model calls, by token budget and length."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from sentiment_pipeline.models.artifacts.manifest import SentimentModel

logger = logging.getLogger(__name__)

PLAN_WINDOW = 4  # a call is planned among this many times the texts it can hold (oldest first)


@dataclass(frozen=True)
class QueuedText:
    """What the planner sees of a queued text: its request (arrival number) and its tokens."""

    request: int
    tokens: int


def plan_batch(
    queue: Sequence[QueuedText], *, max_batch_tokens: int, max_batch_requests: int
) -> list[int]:
    """Positions in `queue` of the texts for the next model call, shortest first.

    `queue` is in arrival order, the texts of one request next to each other. The oldest text
    always goes (so nothing starves, and a text over the budget runs alone); the others come
    from the oldest `max_batch_requests` requests. Among those, texts are added in order of
    length around the oldest one, each time the one that adds the least padding, while the
    padded size (longest x count) stays within `max_batch_tokens`.
    """
    if not queue:
        return []
    requests: set[int] = set()
    candidates = []
    for position, item in enumerate(queue):
        if item.request not in requests:
            if len(requests) == max_batch_requests:
                break
            requests.add(item.request)
        candidates.append(position)
    order = sorted(candidates, key=lambda p: (queue[p].tokens, p))
    low = high = order.index(0)
    longest = queue[0].tokens
    while True:
        size = high - low + 2
        options = []
        if low > 0 and longest * size <= max_batch_tokens:
            options.append((longest - queue[order[low - 1]].tokens, -1))
        if high + 1 < len(order):
            tokens = queue[order[high + 1]].tokens
            if max(longest, tokens) * size <= max_batch_tokens:
                options.append(((tokens - longest) * (size - 1), 1))
        if not options:
            return order[low : high + 1]
        _, side = min(options)
        if side < 0:
            low -= 1
        else:
            high += 1
            longest = max(longest, queue[order[high]].tokens)


class BatchObserver(Protocol):
    def observe_batch(self, texts: int, tokens: int, seconds: float) -> None: ...


@dataclass
class Scored:
    """A request's raw scores (logits), the labels they belong to, and where its time went."""

    scores: np.ndarray
    labels: list[str]
    queue_s: float
    inference_s: float


@dataclass
class _Request:
    future: asyncio.Future[None]
    rows: list[np.ndarray | None]
    enqueued: float
    remaining: int
    first_start: float | None = None
    last_end: float = 0.0
    labels: list[str] = field(default_factory=list)


@dataclass
class _Pending:
    request: _Request
    number: int  # the request's arrival number
    index: int  # the text's position in its request
    text: str
    tokens: int


class InFlight:
    """How many inference requests this worker has admitted and not yet answered (the guard's
    count): the batcher waits for more texts only while some of them have not queued theirs."""

    def __init__(self) -> None:
        self.count = 0


class Batcher:
    """Queues texts from requests and runs them through the model in one worker thread.

    Inference never runs on the event loop. While a model call runs, new texts queue up; the
    next call takes what `plan_batch` picks. A call waits up to `max_wait_ms` after its oldest
    text arrived for more requests to join, unless the batch is already full or no other
    admitted request is on its way (`in_flight`): a lone request never waits.
    `max_batch_requests` 1 serves each request in calls of its own (no batching).
    """

    def __init__(
        self,
        model: SentimentModel,
        *,
        max_batch_tokens: int,
        max_batch_requests: int,
        max_wait_ms: float,
        observer: BatchObserver | None = None,
        on_queue_size: Callable[[int], None] | None = None,
        in_flight: InFlight | None = None,
    ) -> None:
        self.model = model
        self.in_flight = in_flight
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_requests = max_batch_requests
        self.max_wait_s = max_wait_ms / 1000
        self.observer = observer
        self.on_queue_size = on_queue_size
        self.calls = 0
        self._queue: list[_Pending] = []
        self._queued_tokens = 0
        self._numbers = itertools.count()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    @property
    def queue_size(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        """Serve what is queued, then stop the loop and the inference thread."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def run(self, model: SentimentModel, texts: list[str]) -> np.ndarray:
        """One direct call of `model` in the inference thread (warm-up)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, model.raw_scores, texts)

    async def scores(self, texts: list[str]) -> Scored:
        """The raw scores of `texts`, computed in model calls shared with other requests."""
        if self._closing or self._task is None or self._task.done():
            raise RuntimeError("the batcher is not running")
        model = self.model
        if not texts:
            return Scored(np.zeros((0, len(model.labels))), model.labels, 0.0, 0.0)
        tokens = model.token_lengths(texts) if len(texts) == 1 else await asyncio.to_thread(
            model.token_lengths, texts
        )
        loop = asyncio.get_running_loop()
        request = _Request(
            future=loop.create_future(),
            rows=[None] * len(texts),
            enqueued=time.perf_counter(),
            remaining=len(texts),
        )
        number = next(self._numbers)
        for index, (text, count) in enumerate(zip(texts, tokens, strict=True)):
            self._queue.append(_Pending(request, number, index, text, int(count)))
        self._queued_tokens += sum(int(t) for t in tokens)
        self._report_queue()
        self._wakeup.set()
        await request.future
        start = request.first_start if request.first_start is not None else request.enqueued
        return Scored(
            scores=np.vstack(request.rows),
            labels=request.labels,
            queue_s=start - request.enqueued,
            inference_s=request.last_end - start,
        )

    def _report_queue(self) -> None:
        if self.on_queue_size is not None:
            self.on_queue_size(len(self._queue))

    def _full(self) -> bool:
        if self._queued_tokens >= self.max_batch_tokens:
            return True
        requests = {p.number for p in self._queue}
        return len(requests) >= self.max_batch_requests

    async def _run(self) -> None:
        try:
            await self._serve()
        except Exception as exc:  # noqa: BLE001 - a bug here must not leave requests hanging
            logger.exception("the batching loop stopped")
            for pending in self._queue:
                if not pending.request.future.done():
                    pending.request.future.set_exception(exc)

    async def _serve(self) -> None:
        while True:
            self._drop_abandoned()
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._gather()
            await self._call(self._take())

    def _drop_abandoned(self) -> None:
        """Forget the texts of requests that are answered (failed) or gone (client left)."""
        if any(p.request.future.done() for p in self._queue):
            self._queue = [p for p in self._queue if not p.request.future.done()]
            self._queued_tokens = sum(p.tokens for p in self._queue)
            self._report_queue()

    async def _gather(self) -> None:
        """Wait for more requests to join, up to max_wait after the oldest text arrived."""
        if self.max_batch_requests == 1 or self._closing:
            return
        while not self._full() and self._others_coming():
            delay = self._queue[0].request.enqueued + self.max_wait_s - time.perf_counter()
            if delay <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), delay)
            except TimeoutError:
                return

    def _others_coming(self) -> bool:
        """Whether admitted requests have yet to queue their texts (unknown: assume so)."""
        if self.in_flight is None:
            return True
        return self.in_flight.count > len({p.number for p in self._queue})

    def _take(self) -> list[_Pending]:
        # Planned among the oldest texts only, PLAN_WINDOW times as many as the call can hold:
        # planning over every queued text (40,000 for four analyses of 10,000 comments) held the
        # event loop for about 70 ms a call, and /health with it.
        queue = self._queue
        holds = self.max_batch_tokens // max(1, queue[0].tokens)
        window = queue[: max(1, PLAN_WINDOW * holds)]
        chosen = plan_batch(
            [QueuedText(p.number, p.tokens) for p in window],
            max_batch_tokens=self.max_batch_tokens,
            max_batch_requests=self.max_batch_requests,
        )
        taken = set(chosen)
        self._queue = [p for i, p in enumerate(window) if i not in taken] + queue[len(window):]
        batch = [window[i] for i in chosen]
        self._queued_tokens -= sum(p.tokens for p in batch)
        self._report_queue()
        return batch

    async def _call(self, batch: list[_Pending]) -> None:
        model = self.model
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            scores = await loop.run_in_executor(
                self._executor, model.raw_scores, [p.text for p in batch]
            )
            scores = np.asarray(scores, dtype=np.float64)
            if scores.shape != (len(batch), len(model.labels)):
                raise ValueError(
                    f"the model returned scores of shape {scores.shape} for {len(batch)} texts "
                    f"and {len(model.labels)} labels"
                )
        except Exception as exc:  # noqa: BLE001 - every request of the batch gets the error
            logger.exception("a model call on %d texts failed", len(batch))
            for pending in batch:
                if not pending.request.future.done():
                    pending.request.future.set_exception(exc)
            return
        end = time.perf_counter()
        self.calls += 1
        if self.observer is not None:
            self.observer.observe_batch(len(batch), sum(p.tokens for p in batch), end - start)
        for row, pending in zip(scores, batch, strict=True):
            request = pending.request
            request.rows[pending.index] = row
            request.remaining -= 1
            if request.first_start is None:
                request.first_start = start
            request.last_end = end
            request.labels = model.labels
            if request.remaining == 0 and not request.future.done():
                request.future.set_result(None)
