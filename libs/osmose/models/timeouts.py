"""Adaptive per-call deadlines from observed latencies.

A fixed timeout is either too short for a loaded GPU pool (everything times out
and is retried, making the load worse) or too long for a hung server (a document
waits minutes). The deadline follows the backend instead: `multiplier` x the
`percentile` of the last successful latencies, clamped to [min, max]; the
`initial` value until `samples` latencies are known. One tracker per
(endpoint, task): a vision summary and a 2,000-token extraction do not take the
same time.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from osmose.models.config import TimeoutConfig

__all__ = ["AdaptiveTimeout"]

WINDOW = 200  # latencies kept


class AdaptiveTimeout:
    def __init__(self, config: TimeoutConfig) -> None:
        self.config = config
        self._latencies: deque[float] = deque(maxlen=WINDOW)

    def observe(self, seconds: float) -> None:
        """The latency of a call that succeeded."""
        self._latencies.append(seconds)

    def percentile(self) -> float | None:
        if len(self._latencies) < self.config.samples:
            return None
        return float(np.percentile(np.fromiter(self._latencies, float), self.config.percentile))

    def current(self) -> float:
        """The deadline for the next call, in seconds."""
        observed = self.percentile()
        if observed is None:
            return self.config.initial
        return min(self.config.max, max(self.config.min, observed * self.config.multiplier))
