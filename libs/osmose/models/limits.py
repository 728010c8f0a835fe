"""Concurrency and rate limits of one backend, shared by every document of the process.

A slot count bounds the requests in flight (vLLM and TEI batch whatever is in
flight, so this is what keeps a pool saturated without piling up a queue that
only adds latency); aiolimiter's leaky buckets bound requests per second and
tokens per minute when the endpoint has such quotas. The slot is taken last,
after the rate limiters, so a request waiting for its quota does not hold a slot.

Requests waiting for a slot are served by ``(priority, order, arrival)``: lower
priority values first (vLLM's convention: premium work is negative), then the
older document first (so documents finish in the order they started and their
later stages can run while the pool works on the next ones), then arrival.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiolimiter import AsyncLimiter

from osmose.models.config import EndpointConfig

__all__ = ["BackendLimits", "PriorityGate"]


class PriorityGate:
    """A semaphore of `slots` whose waiters are served by a sort key (lowest first), then by
    arrival. A waiter cancelled while waiting gives its turn away; one given the slot just as it
    was cancelled passes the slot on. Used for backend slots (key: priority, document order) and
    for the in-process host's documents in flight (key: most model work first)."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.held = 0      # slots taken (handed over directly to the next waiter on release)
        self.waiting = 0   # acquirers queued for a slot
        self._queue: list[tuple[tuple[int, ...], int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    async def acquire(self, key: tuple[int, ...] = ()) -> None:
        if self.held < self.slots and not self._queue:
            self.held += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (key, next(self._arrivals), future)
        heapq.heappush(self._queue, entry)
        self.waiting += 1
        try:
            await future  # release() hands the slot over (held already counts it)
        except BaseException:
            if future.done() and not future.cancelled():
                self.release()  # given the slot as it was cancelled: pass it on
            elif entry in self._queue:   # (release() may already have dropped it, cancelled)
                self._queue.remove(entry)
                heapq.heapify(self._queue)
            raise
        finally:
            self.waiting -= 1

    def release(self) -> None:
        while self._queue:
            future = heapq.heappop(self._queue)[-1]
            if not future.done():
                future.set_result(None)
                return
        self.held -= 1


class BackendLimits:
    def __init__(self, config: EndpointConfig) -> None:
        self.concurrency = config.concurrency
        self._slots = PriorityGate(config.concurrency)
        rps = config.requests_per_second
        self._requests = AsyncLimiter(rps, 1.0) if rps > 0 else None
        tpm = config.tokens_per_minute
        self._tokens = AsyncLimiter(tpm, 60.0) if tpm > 0 else None
        self.peak_in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._slots.held

    @property
    def waiting(self) -> int:
        """Requests queued here for a slot."""
        return self._slots.waiting

    @property
    def free(self) -> int:
        """Slots nobody holds or waits for: how many more calls would start at once."""
        return self.concurrency - self.in_flight - self.waiting

    @asynccontextmanager
    async def slot(self, tokens: int = 0, *, priority: int = 0, order: int = 0) -> AsyncIterator[None]:
        """Hold one request slot; `tokens` (estimated) count against tokens per minute;
        waiting requests are served by (priority, order, arrival)."""
        if self._requests is not None:
            await self._requests.acquire()
        if self._tokens is not None and tokens > 0:
            # A request larger than the whole bucket would wait forever: cap it at the bucket.
            await self._tokens.acquire(min(float(tokens), self._tokens.max_rate))
        await self._slots.acquire((priority, order))
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            yield
        finally:
            self._slots.release()
