"""Priority lanes of one stage consumer: what to start next and what to keep fetching.

Each priority class (``high``, ``bulk``; :data:`osmose.bus.topics.PRIORITIES`) has a
queue of fetched messages and a count of running ones, each bounded by
``max_in_flight``:

* a high message starts whenever fewer than ``max_in_flight`` high messages run,
  whatever bulk work is running: premium work never waits for a bulk slot;
* a bulk message starts only when no high message is waiting and fewer than
  ``max_in_flight`` messages run in total;
* a class's partitions are fetched only while its queue + running is below
  ``max_in_flight``, and bulk partitions are paused whenever high work is waiting
  (queued here, or still in Kafka: see :class:`osmose.bus.consumer.StageConsumer`).

So the consumer holds at most a few messages it has not started, a long model call
never stops the poll loop (``max.poll.interval.ms`` is never at risk), and an
onboarding burst sits in Kafka, not in memory, while premium documents pass it.
Thread-safe (the consumer thread pushes, the event loop pops).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Lanes"]

T = TypeVar("T")
HIGH, BULK = "high", "bulk"


class Lanes(Generic[T]):
    def __init__(self, max_in_flight: int) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.max_in_flight = max_in_flight
        self._lock = threading.Lock()
        self._queued: dict[str, deque[T]] = {HIGH: deque(), BULK: deque()}
        self._running: dict[str, int] = {HIGH: 0, BULK: 0}

    def push(self, priority: str, message: T) -> None:
        with self._lock:
            self._queued[priority].append(message)

    def pop_startable(self) -> tuple[str, T] | None:
        """The next message to start (now counted as running), or None."""
        with self._lock:
            if self._queued[HIGH] and self._running[HIGH] < self.max_in_flight:
                self._running[HIGH] += 1
                return HIGH, self._queued[HIGH].popleft()
            if (not self._queued[HIGH] and self._queued[BULK]
                    and self._running[HIGH] + self._running[BULK] < self.max_in_flight):
                self._running[BULK] += 1
                return BULK, self._queued[BULK].popleft()
            return None

    def finished(self, priority: str) -> None:
        with self._lock:
            self._running[priority] -= 1

    def outstanding(self, priority: str) -> int:
        with self._lock:
            return len(self._queued[priority]) + self._running[priority]

    def queued(self) -> int:
        with self._lock:
            return len(self._queued[HIGH]) + len(self._queued[BULK])

    def running(self) -> int:
        with self._lock:
            return self._running[HIGH] + self._running[BULK]

    def wants(self, priority: str, *, high_waiting_in_kafka: bool = False) -> bool:
        """Whether to keep fetching the class's partitions."""
        with self._lock:
            high = len(self._queued[HIGH]) + self._running[HIGH]
            if priority == HIGH:
                return high < self.max_in_flight
            if high_waiting_in_kafka or self._queued[HIGH]:
                return False
            return len(self._queued[BULK]) + self._running[BULK] < self.max_in_flight

    def drop(self, predicate: Callable[[T], bool]) -> list[T]:
        """Remove queued (not started) messages matching `predicate`; returns them."""
        with self._lock:
            dropped: list[T] = []
            for priority, queue in self._queued.items():
                keep: deque[T] = deque()
                for message in queue:
                    (dropped if predicate(message) else keep).append(message)
                self._queued[priority] = keep
            return dropped
