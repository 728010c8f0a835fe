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

* bulk is never starved: after ``bulk_every`` high starts in a row (default 4), bulk
  partitions are fetched even while high work waits, and the next free slot goes to a
  bulk message (it takes the place a high one would have had). Under a sustained
  premium stream bulk work still gets one start in ``bulk_every + 1`` (20% by default);
  without premium work it gets every slot.

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


#: high starts in a row after which bulk work gets the next slot (its guaranteed share)
BULK_EVERY = 4


class Lanes(Generic[T]):
    def __init__(self, max_in_flight: int, *, bulk_every: int = BULK_EVERY) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if bulk_every < 1:
            raise ValueError("bulk_every must be at least 1")
        self.max_in_flight = max_in_flight
        self.bulk_every = bulk_every
        #: high starts since the last bulk start
        self._high_streak = 0
        self._lock = threading.Lock()
        self._queued: dict[str, deque[T]] = {HIGH: deque(), BULK: deque()}
        self._running: dict[str, int] = {HIGH: 0, BULK: 0}

    def push(self, priority: str, message: T) -> None:
        with self._lock:
            self._queued[priority].append(message)

    def pop_startable(self) -> tuple[str, T] | None:
        """The next message to start (now counted as running), or None."""
        with self._lock:
            total = self._running[HIGH] + self._running[BULK]
            if (self._queued[BULK] and self._bulk_due() and self._running[BULK] < self.max_in_flight
                    and (total < self.max_in_flight or self._running[HIGH] < self.max_in_flight)):
                return self._start(BULK)             # its share: the slot a high message would have taken
            if self._queued[HIGH] and self._running[HIGH] < self.max_in_flight:
                return self._start(HIGH)
            if not self._queued[HIGH] and self._queued[BULK] and total < self.max_in_flight:
                return self._start(BULK)
            return None

    def _bulk_due(self) -> bool:
        return self._high_streak >= self.bulk_every

    def _start(self, priority: str) -> tuple[str, T]:
        self._running[priority] += 1
        self._high_streak = self._high_streak + 1 if priority == HIGH else 0
        return priority, self._queued[priority].popleft()

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
            bulk = len(self._queued[BULK]) + self._running[BULK]
            if self._bulk_due():      # its share is due: fetch some bulk even while high work waits
                return not self._queued[BULK] and bulk < self.max_in_flight
            if high_waiting_in_kafka or self._queued[HIGH]:
                return False
            return bulk < self.max_in_flight

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
