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
    """Slots and queue; created inside the server's event loop."""

    def __init__(self, slots: int, *, max_waiting: int = 0) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.slots = slots
        self.max_waiting = max_waiting
        self._semaphore = asyncio.Semaphore(slots)
        self.running = 0
        self.waiting = 0
        self.peak_running = 0
        self.peak_in_flight = 0  # running + waiting: what the clients had open at once

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        if self.max_waiting and self.waiting >= self.max_waiting and self.running >= self.slots:
            raise QueueFull(f"{self.waiting} requests waiting")
        self.waiting += 1
        self.peak_in_flight = max(self.peak_in_flight, self.running + self.waiting)
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        try:
            yield
        finally:
            self.running -= 1
            self._semaphore.release()

    def reset_peaks(self) -> None:
        self.peak_running = self.running
        self.peak_in_flight = self.running + self.waiting
