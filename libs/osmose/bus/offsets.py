"""Which offsets may be committed: the bookkeeping between fetch and commit.

Messages of one partition finish out of order (several are in flight), but a
committed offset means "everything before it is done". So a partition's commit
point is its lowest offset not yet done (queued or running), or one past the
highest offset seen when nothing is outstanding. A message that never finishes
(a crash, a fatal error) holds its partition's commit point back, and it and
everything after it are delivered again: at-least-once, made harmless by
idempotent stages.

Thread-safe: the consumer thread adds and commits, the event loop starts and
finishes messages.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

__all__ = ["OffsetTracker"]

_QUEUED, _RUNNING = "queued", "running"

#: what names a partition, e.g. (topic, partition)
P = TypeVar("P", bound=Hashable)


class OffsetTracker(Generic[P]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[P, dict[int, str]] = {}
        self._next: dict[P, int] = {}        # one past the highest offset seen
        self._committed: dict[P, int] = {}

    def assign(self, partitions: Iterable[P]) -> None:
        with self._lock:
            for tp in partitions:
                self._pending.setdefault(tp, {})

    def forget(self, partitions: Iterable[P]) -> None:
        """Drop partitions this consumer no longer owns (after a revocation)."""
        with self._lock:
            for tp in partitions:
                self._pending.pop(tp, None)
                self._next.pop(tp, None)
                self._committed.pop(tp, None)

    def partitions(self) -> list[P]:
        with self._lock:
            return list(self._pending)

    def owns(self, tp: P) -> bool:
        with self._lock:
            return tp in self._pending

    def add(self, tp: P, offset: int) -> None:
        with self._lock:
            pending = self._pending.setdefault(tp, {})
            pending[offset] = _QUEUED
            self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def start(self, tp: P, offset: int) -> bool:
        """Mark a queued message running; False when its partition was revoked meanwhile."""
        with self._lock:
            pending = self._pending.get(tp)
            if pending is None or offset not in pending:
                return False
            pending[offset] = _RUNNING
            return True

    def done(self, tp: P, offset: int) -> None:
        """The message's outputs are acknowledged: it no longer holds the commit point back."""
        with self._lock:
            pending = self._pending.get(tp)
            if pending is not None:
                pending.pop(offset, None)

    def release(self, tp: P, offset: int) -> None:
        """A message given back unfinished (shutdown): it stays pending so the commit
        point never passes it, but no longer counts as running."""
        with self._lock:
            pending = self._pending.get(tp)
            if pending is not None and offset in pending:
                pending[offset] = _QUEUED

    def oldest_pending(self, tp: P) -> int | None:
        """The lowest offset of `tp` fetched and not done (its commit point), or None."""
        with self._lock:
            pending = self._pending.get(tp)
            return min(pending) if pending else None

    def running(self, partitions: Iterable[P] | None = None) -> int:
        with self._lock:
            return self._running(partitions)

    def _running(self, partitions: Iterable[P] | None) -> int:
        tps = self._pending if partitions is None else [tp for tp in partitions if tp in self._pending]
        return sum(1 for tp in tps for state in self._pending[tp].values() if state == _RUNNING)

    def committable(self, partitions: Iterable[P] | None = None) -> dict[P, int]:
        """Commit points that moved since the last commit."""
        with self._lock:
            tps = list(self._pending) if partitions is None else [tp for tp in partitions if tp in self._pending]
            result = {}
            for tp in tps:
                if tp not in self._next:
                    continue
                pending = self._pending[tp]
                point = min(pending) if pending else self._next[tp]
                if point > self._committed.get(tp, -1):
                    result[tp] = point
            return result

    def committed(self, offsets: dict[P, int]) -> None:
        with self._lock:
            for tp, offset in offsets.items():
                if tp in self._pending:
                    self._committed[tp] = max(self._committed.get(tp, -1), offset)
