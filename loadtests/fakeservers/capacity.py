"""The capacity model of a simulated GPU server: slots, a waiting queue, latency from tokens.

A request waits (``waiting``) until one of `slots` is free, then runs
(``running``) for ``base + prompt_tokens / prefill_tps + output_tokens / decode_tps``
seconds, all scaled by `time_scale` (0 = instant, for tests that only count).
That is roughly how vLLM behaves under continuous batching when each slot is a
sequence of the running batch: prefill is cheap, every output token costs a
decode step, and requests beyond the batch wait in the scheduler's queue.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

__all__ = ["Capacity", "LatencyModel", "QueueFull"]


@dataclass(frozen=True, kw_only=True)
class LatencyModel:
    base_s: float = 0.02
    prefill_tps: float = 10_000.0
    decode_tps: float = 100.0
    time_scale: float = 1.0

    def seconds(self, *, prompt_tokens: int, output_tokens: int, slow_factor: float = 1.0) -> float:
        if self.time_scale <= 0:
            return 0.0
        decode = output_tokens / self.decode_tps * slow_factor
        return (self.base_s + prompt_tokens / self.prefill_tps + decode) * self.time_scale


class QueueFull(Exception):
    """More requests waiting than the queue holds."""


class Capacity:
    """Slots and a waiting queue; created inside the server's event loop.

    The queue is ordered by ``priority`` (lower first, as vLLM's priority scheduling
    policy orders it), then by arrival; with every request at priority 0 it is FIFO."""

    def __init__(self, slots: int, *, max_waiting: int = 0) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.slots = slots
        self.max_waiting = max_waiting
        self._queue: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self.running = 0
        self.waiting = 0
        self.peak_running = 0
        self.peak_in_flight = 0  # running + waiting: what the clients had open at once
        # Slot-seconds spent serving (not waiting): busy / slots is the floor of any run,
        # busy / (wall x slots) the utilisation. Counted as requests finish.
        self.busy_seconds = 0.0
        self.served = 0
        #: (start, end) of every request served, perf_counter seconds: where the slots sat idle
        self.spans: list[tuple[float, float]] = []

    async def _acquire(self, priority: int) -> None:
        if self.running < self.slots and not self._queue:
            self.running += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (priority, next(self._arrivals), future)
        heapq.heappush(self._queue, entry)
        try:
            await future  # the slot is handed over by _release (running already counts it)
        except BaseException:
            if future.done() and not future.cancelled():
                self._release()  # got the slot just as we were cancelled: pass it on
            elif entry in self._queue:   # (release() may already have dropped it, cancelled)
                self._queue.remove(entry)
                heapq.heapify(self._queue)
            raise

    def _release(self) -> None:
        while self._queue:
            _, _, future = heapq.heappop(self._queue)
            if not future.done():
                future.set_result(None)  # the slot passes to the next waiter
                return
        self.running -= 1

    @asynccontextmanager
    async def admit(self, priority: int = 0) -> AsyncIterator[None]:
        if self.max_waiting and self.waiting >= self.max_waiting and self.running >= self.slots:
            raise QueueFull(f"{self.waiting} requests waiting")
        self.waiting += 1
        self.peak_in_flight = max(self.peak_in_flight, self.running + self.waiting)
        try:
            await self._acquire(priority)
        finally:
            self.waiting -= 1
        self.peak_running = max(self.peak_running, self.running)
        started = time.perf_counter()
        try:
            yield
        finally:
            ended = time.perf_counter()
            self.busy_seconds += ended - started
            self.spans.append((started, ended))
            self.served += 1
            self._release()

    def reset_peaks(self) -> None:
        self.peak_running = self.running
        self.peak_in_flight = self.running + self.waiting
