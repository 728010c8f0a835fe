"""Retries with tenacity: exponential backoff with jitter, Retry-After honoured, a budget per document.

A failed call is retried when all of these hold:

1. its error is a :class:`ModelUnavailableError` (429, 5xx, timeout, connection) other than
   :class:`CircuitOpenError` — a request the server rejected (4xx) would fail the same way again;
2. it has attempts left (``retries.attempts`` per call);
3. the server's Retry-After, if any, is at most ``retries.max_retry_after`` — a server asking
   for ten minutes gets an immediate failure and the document takes its fallback instead;
4. the document's :class:`RetryBudget` has a retry left: a sick backend costs each document a
   bounded number of retries in total, not ``attempts`` per call times hundreds of calls.

The wait before the next attempt is the server's Retry-After when it sent one, otherwise
tenacity's exponential backoff (``backoff_initial`` x 2^n, at most ``backoff_max``) plus a random
jitter of up to ``jitter`` seconds. The wait itself is ``asyncio.sleep`` unless the caller passes
another ``sleep`` (tests pass one that records the delays instead of waiting for them).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, RetryCallState, stop_never, wait_exponential, wait_random
from tenacity.retry import retry_base
from tenacity.wait import wait_base

from osmose.models.config import RetryConfig
from osmose.models.exceptions import CircuitOpenError, ModelUnavailableError

__all__ = ["RetryBudget", "retrying", "retry_after_of"]


class RetryBudget:
    """Retries one document may still spend over all its model calls."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.spent = 0
        self._lock = threading.Lock()

    @property
    def left(self) -> int:
        return self.total - self.spent

    def try_spend(self) -> bool:
        with self._lock:
            if self.spent >= self.total:
                return False
            self.spent += 1
            return True


def retry_after_of(exc: BaseException | None) -> float | None:
    value = getattr(exc, "retry_after", None)
    return float(value) if value is not None else None


class _RetryWhen(retry_base):
    def __init__(self, config: RetryConfig, budget: RetryBudget) -> None:
        self.config = config
        self.budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            return False
        exc = outcome.exception()
        if not isinstance(exc, ModelUnavailableError) or isinstance(exc, CircuitOpenError):
            return False
        if retry_state.attempt_number >= self.config.attempts:
            return False
        after = retry_after_of(exc)
        if after is not None and after > self.config.max_retry_after:
            return False
        return self.budget.try_spend()


class _WaitRetryAfter(wait_base):
    """The server's Retry-After when present, else the fallback strategy."""

    def __init__(self, fallback: wait_base, cap: float) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        after = retry_after_of(exc)
        if after is not None:
            return min(max(after, 0.0), self.cap)
        return self.fallback(retry_state)


def retrying(config: RetryConfig, budget: RetryBudget, *,
             on_retry: Callable[[RetryCallState], None] | None = None,
             sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> AsyncRetrying:
    """An ``async for attempt in retrying(...)`` loop for one call; `sleep` waits between attempts."""
    return AsyncRetrying(
        sleep=sleep,
        retry=_RetryWhen(config, budget),
        stop=stop_never,  # attempts and budget are checked in _RetryWhen
        wait=_WaitRetryAfter(wait_exponential(multiplier=config.backoff_initial, max=config.backoff_max)
                             + wait_random(0, config.jitter), cap=config.max_retry_after),
        before_sleep=on_retry,
        reraise=True,
    )
