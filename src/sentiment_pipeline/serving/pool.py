"""The parse pool: request parsing, upload reading and analyses in worker processes, bounded."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import traceback
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.serving.errors import ServingError

T = TypeVar("T")

# Processes, not threads. pandas parsing a CSV of 200,000 columns holds the GIL in C code for up
# to 270 ms at a time (6.4 s in all), json.loads of a 4 MB body for 90 ms in one call, and an
# analysis of 10,000 comments for up to 120 ms: from a thread, each starves the event loop's
# thread of the GIL, so /health waits (benchmarks/bench_event_loop.py, BENCHMARKS.md).
# The workers fork from a forkserver that imported the app once: a new worker starts in
# milliseconds and shares those pages, and none inherits the server's threads or their locks.
PRELOAD = ["__main__", "sentiment_pipeline.serving.app"]
# The event loop and the model's threads come first when the cores are busy.
NICENESS = 10


def start_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops us
    os.nice(NICENESS)


@dataclass(frozen=True)
class Raised:
    """An exception a job raised, carried back whole: its class, arguments and attributes.

    Pickle rebuilds an exception by calling its class with its args, which fails for errors
    that take more than a message (ServingError, InsightsError); this sets them instead.
    """

    kind: type[BaseException]
    args: tuple[Any, ...]
    state: dict[str, Any]

    def rebuild(self) -> BaseException:
        try:
            error = self.kind.__new__(self.kind)
            error.args = self.args
            error.__dict__.update(self.state)
        except (TypeError, AttributeError):  # a class built in C that takes neither
            error = RuntimeError(f"{self.kind.__name__}: {self.args}")
            error.__dict__.update(self.state)
        return error


def call(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Run a job in a worker: its result, or what it raised as a Raised (with the worker's
    traceback as a note, for the server's log)."""
    try:
        return fn(*args)
    except Exception as error:  # noqa: BLE001 - every failure goes back to the request
        error.add_note(f"raised in parse process {os.getpid()}:\n{traceback.format_exc()}")
        return Raised(type(error), error.args, vars(error))


def process_executor(workers: int) -> Executor:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return ProcessPoolExecutor(workers, mp_context=context, initializer=start_worker)


class ParsePool:
    """At most `workers` jobs run at once and `queue` more wait; beyond that a job is refused
    (429, so the client retries, as for serve.max_concurrent_requests).

    Workers start with the first job that needs one; a worker that dies (killed, out of memory)
    fails its job and the next job starts new ones. `executor` builds the executor (default:
    `workers` processes); tests give one that holds jobs.
    """

    def __init__(self, *, workers: int, queue: int, inline_bytes: int,
                 executor: Callable[[int], Executor] = process_executor) -> None:
        self.workers = workers
        self.queue = queue
        self.inline_bytes = inline_bytes
        self.make_executor = executor
        self.executor: Executor | None = None
        self.jobs = 0  # running or waiting

    @classmethod
    def of(cls, config: ServeConfig, **kwargs: Any) -> ParsePool:
        return cls(workers=config.max_parse_workers, queue=config.max_parse_queue,
                   inline_bytes=config.inline_parse_bytes, **kwargs)

    async def parse(self, size: int, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the event loop when its input is at most inline_bytes (a process
        round trip costs ~0.3 ms, a small body parses in microseconds), else in a worker."""
        if size <= self.inline_bytes:
            return fn(*args)
        return await self.run(fn, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker process; what it raises is raised here."""
        limit = self.workers + self.queue
        if self.jobs >= limit:
            raise ServingError(
                429, "overloaded",
                f"the server is busy parsing: {self.jobs} jobs running or waiting in this worker, "
                f"the limit is {limit} (serve.max_parse_workers = {self.workers} + "
                f"serve.max_parse_queue = {self.queue}); retry",
                retry_after=1, reason="parse_queue",
            )
        if self.executor is None:
            self.executor = self.make_executor(self.workers)
        executor = self.executor
        self.jobs += 1
        try:
            # Submitted from a thread: starting a worker (the forkserver's first start imports
            # the app, seconds) happens inside submit.
            future = await asyncio.to_thread(executor.submit, call, fn, args)
            result = await asyncio.wrap_future(future)
        except BrokenProcessPool:
            if self.executor is executor:
                self.executor = None
                executor.shutdown(wait=False)
            raise
        finally:
            self.jobs -= 1
        if isinstance(result, Raised):
            raise result.rebuild()
        return result

    def close(self) -> None:
        """Wait for the running jobs, drop the waiting ones, stop the workers."""
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None
