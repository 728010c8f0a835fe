"""A circuit breaker per backend: closed, open, half-open over an error-rate window.

Why our own class: the maintained Python breakers do not fit. pybreaker counts
*consecutive* failures and is built around synchronous calls (its async support
is Tornado's); purgatory and aiobreaker also trip on a consecutive-failure
threshold, not on an error *rate* over a time window, and their half-open state
lets any number of calls through. What is needed here is ~80 lines: outcomes in
a time window, a rate threshold with a minimum number of calls, a bounded number
of half-open probes. The clock is injectable so tests need no sleeps.

States::

    CLOSED --(>= min_calls in window and failures/calls >= error_rate)--> OPEN
    OPEN   --(open_seconds elapsed)--> HALF_OPEN (half_open_calls probes allowed)
    HALF_OPEN --(a probe succeeds)--> CLOSED (window cleared)
    HALF_OPEN --(a probe fails)--> OPEN (for open_seconds again)
"""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Callable

from osmose.models.config import BreakerConfig
from osmose.models.exceptions import CircuitOpenError

__all__ = ["BreakerState", "CircuitBreaker"]

logger = logging.getLogger(__name__)


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, config: BreakerConfig, *, name: str = "", clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.name = name
        self._clock = clock
        self._outcomes: deque[tuple[float, bool]] = deque()  # (time, failed)
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probes = 0  # half-open probes in flight
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.config.open_seconds:
            self._state = BreakerState.HALF_OPEN
            self._probes = 0
            logger.info("breaker %s half-open", self.name)
        return self._state

    def allows(self) -> bool:
        """Whether a call would be let through now (without taking a probe slot)."""
        state = self.state
        return state is BreakerState.CLOSED or (
            state is BreakerState.HALF_OPEN and self._probes < self.config.half_open_calls)

    def acquire(self) -> None:
        """Before a call: raises :class:`CircuitOpenError` when it must not be made."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and self._probes < self.config.half_open_calls:
            self._probes += 1
            return
        # No time in the message: it ends up in warnings, which should read the same on every run.
        raise CircuitOpenError(f"circuit open for {self.name}", endpoint=self.name)

    def record(self, *, failed: bool) -> None:
        """After a call that was let through."""
        now = self._clock()
        if self._state is BreakerState.HALF_OPEN:
            self._probes = max(0, self._probes - 1)
            if failed:
                self._open(now)
            else:
                self._state = BreakerState.CLOSED
                self._outcomes.clear()
                logger.info("breaker %s closed", self.name)
            return
        if self._state is BreakerState.OPEN:  # a call let through before it opened
            return
        self._outcomes.append((now, failed))
        self._trim(now)
        calls = len(self._outcomes)
        failures = sum(1 for _, f in self._outcomes if f)
        if calls >= self.config.min_calls and failures / calls >= self.config.error_rate:
            self._open(now)

    def release(self) -> None:
        """A probe that ended without an outcome (cancelled, or a 429 that says nothing about health)."""
        if self._state is BreakerState.HALF_OPEN:
            self._probes = max(0, self._probes - 1)

    def snapshot(self) -> dict[str, object]:
        now = self._clock()
        self._trim(now)
        return {"state": self.state.value, "calls": len(self._outcomes),
                "failures": sum(1 for _, f in self._outcomes if f), "times_opened": self.times_opened}

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._outcomes.clear()
        self.times_opened += 1
        logger.warning("breaker %s open for %.1fs", self.name, self.config.open_seconds)

    def _trim(self, now: float) -> None:
        horizon = now - self.config.window_seconds
        while self._outcomes and self._outcomes[0][0] < horizon:
            self._outcomes.popleft()
