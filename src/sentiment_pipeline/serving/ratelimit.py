"""Token buckets: how many YouTube analyses each client may start, per server process."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBucket:
    """`size` tokens, refilled at `rate_per_s`; each call of `take` spends one.

    `take` answers 0.0 when a token was there (and spends it), else the seconds until one
    will be, spending nothing. Starts full. The clock is injectable for tests.
    """

    def __init__(self, *, rate_per_s: float, size: int, clock: Clock = time.monotonic) -> None:
        if rate_per_s <= 0 or size < 1:
            raise ValueError(f"a token bucket needs rate_per_s > 0 and size >= 1, "
                             f"got {rate_per_s} and {size}")
        self.rate_per_s = rate_per_s
        self.size = size
        self.clock = clock
        self.tokens = float(size)
        self.updated = clock()

    def _refill(self) -> None:
        now = self.clock()
        elapsed = max(0.0, now - self.updated)  # a clock that steps back refills nothing
        self.tokens = min(float(self.size), self.tokens + elapsed * self.rate_per_s)
        self.updated = now

    def take(self) -> float:
        self._refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s

    def full(self) -> bool:
        self._refill()
        return self.tokens >= self.size


class RateLimiter:
    """One token bucket per client key (an IP address), kept in this process only.

    At most `max_clients` buckets are kept: when there are more, buckets that have refilled
    completely are dropped (a full bucket is the same as a new one), then the least recently
    used ones (which can only make the limit more lenient for a client that vanished for long).
    """

    def __init__(
        self, *, rate_per_minute: float, burst: int, clock: Clock = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.rate_per_s = rate_per_minute / 60.0
        self.burst = burst
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0.0 when `client` may go ahead (a token is spent), else seconds until it may."""
        with self._lock:
            bucket = self._buckets.pop(client, None)
            if bucket is None:
                bucket = TokenBucket(rate_per_s=self.rate_per_s, size=self.burst,
                                     clock=self.clock)
            self._buckets[client] = bucket  # most recently used last
            wait = bucket.take()
            if len(self._buckets) > self.max_clients:
                self._prune()
            return wait

    def _prune(self) -> None:
        for key in [key for key, bucket in self._buckets.items() if bucket.full()]:
            del self._buckets[key]
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
