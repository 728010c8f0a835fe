"""Concurrency and rate limits of one backend, shared by every document of the process.

A semaphore bounds the requests in flight (vLLM and TEI batch whatever is in
flight, so this is what keeps a pool saturated without piling up a queue that
only adds latency); aiolimiter's leaky buckets bound requests per second and
tokens per minute when the endpoint has such quotas. The semaphore is taken
last, after the rate limiters, so a request waiting for its quota does not hold
a slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiolimiter import AsyncLimiter

from osmose.models.config import EndpointConfig

__all__ = ["BackendLimits"]


class BackendLimits:
    def __init__(self, config: EndpointConfig) -> None:
        self.concurrency = config.concurrency
        self._slots = asyncio.Semaphore(config.concurrency)
        rps = config.requests_per_second
        self._requests = AsyncLimiter(rps, 1.0) if rps > 0 else None
        tpm = config.tokens_per_minute
        self._tokens = AsyncLimiter(tpm, 60.0) if tpm > 0 else None
        self.in_flight = 0
        self.peak_in_flight = 0

    @asynccontextmanager
    async def slot(self, tokens: int = 0) -> AsyncIterator[None]:
        """Hold one request slot; `tokens` (estimated) count against tokens per minute."""
        if self._requests is not None:
            await self._requests.acquire()
        if self._tokens is not None and tokens > 0:
            # A request larger than the whole bucket would wait forever: cap it at the bucket.
            await self._tokens.acquire(min(float(tokens), self._tokens.max_rate))
        async with self._slots:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1
