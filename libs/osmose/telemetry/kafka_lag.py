"""Kafka lag of one stage consumer, in messages and in seconds, measured by the service itself.

Exporters outside the service see offsets only; time is what an SLO needs. Every
``interval_s`` the consumer thread calls :meth:`LagSampler.sample`. Per assigned
partition, the oldest message this consumer has not finished is at the commit point (the
lowest offset fetched and not done, else the fetch position):

* lag in messages: ``highwater - commit point``;
* lag in seconds: ``now - timestamp`` of the message at the commit point. Fetched messages'
  timestamps are remembered at fetch; for a partition that lags with nothing fetched
  (paused while the lanes are full), one record at the position is *peeked* with a
  group-less consumer (no commit, no membership).

Both are summed (messages) or maxed (seconds) per lane and set on
``osmose_kafka_consumer_lag_messages`` / ``_seconds{group, stage, lane}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

from osmose.telemetry import metrics

__all__ = ["LagSampler"]

logger = logging.getLogger(__name__)


class LagSampler:
    def __init__(self, *, group: str, stage: str, lanes: dict[str, str], new_peeker: Callable[[], Any] | None = None,
                 interval_s: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.group = group
        self.stage = stage
        self._lane_of_topic = {topic: lane for lane, topic in lanes.items()}
        self._new_peeker = new_peeker
        self._peeker: Any = None
        self.interval_s = interval_s
        self._clock = clock
        self._next_at = 0.0
        self._timestamps: dict[tuple[Hashable, int], int] = {}
        for lane in lanes:
            metrics.KAFKA_LAG_MESSAGES.labels(group, stage, lane).set(0)
            metrics.KAFKA_LAG_SECONDS.labels(group, stage, lane).set(0)

    def fetched(self, tp: Hashable, offset: int, timestamp_ms: int) -> None:
        if timestamp_ms >= 0:
            self._timestamps[(tp, offset)] = timestamp_ms

    def due(self) -> bool:
        return time.monotonic() >= self._next_at

    def sample(self, consumer: Any, oldest_pending: Callable[[Any], int | None]) -> dict[str, tuple[int, float]]:
        """Measure and export; returns ``{lane: (messages, seconds)}`` (tests read it)."""
        from kafka import TopicPartition

        self._next_at = time.monotonic() + self.interval_s
        now_ms = self._clock() * 1000
        result = {lane: [0, 0.0] for lane in self._lane_of_topic.values()}
        keep: set[tuple[Hashable, int]] = set()
        for tp in consumer.assignment():
            lane = self._lane_of_topic.get(tp.topic)
            high = consumer.highwater(tp)
            if lane is None or high is None:
                continue
            key = (tp.topic, tp.partition)
            point = oldest_pending(key)
            if point is None:
                try:
                    point = consumer.position(tp, timeout_ms=50)
                except Exception:
                    continue
                point = getattr(point, "offset", point)
            if point is None or point >= high:
                continue
            result[lane][0] += high - point
            timestamp = self._timestamps.get((key, point))
            if timestamp is None:
                timestamp = self._peek(TopicPartition(tp.topic, tp.partition), point)
            if timestamp is not None:
                keep.add((key, point))
                result[lane][1] = max(result[lane][1], max(0.0, (now_ms - timestamp) / 1000))
        # Forget timestamps below the commit points (those messages are done).
        points = {k[0]: oldest_pending(k[0]) for k in self._timestamps}

        def still_pending(key: tuple[Any, int]) -> bool:
            point = points[key[0]]
            return point is not None and key[1] >= point

        self._timestamps = {k: v for k, v in self._timestamps.items() if k in keep or still_pending(k)}
        for lane, (messages, seconds) in result.items():
            metrics.KAFKA_LAG_MESSAGES.labels(self.group, self.stage, lane).set(messages)
            metrics.KAFKA_LAG_SECONDS.labels(self.group, self.stage, lane).set(round(seconds, 3))
        return {lane: (int(m), s) for lane, (m, s) in result.items()}

    def _peek(self, tp: Any, offset: int) -> int | None:
        """The timestamp of the record at `offset` of `tp`, read without a group."""
        if self._new_peeker is None:
            return None
        try:
            if self._peeker is None:
                self._peeker = self._new_peeker()
            self._peeker.assign([tp])
            self._peeker.seek(tp, offset)
            for records in self._peeker.poll(timeout_ms=500, max_records=1).values():
                for record in records:
                    return record.timestamp
        except Exception as exc:
            logger.debug("peeking %s@%d for the lag in seconds failed: %s", tp, offset, exc)
        return None

    def close(self) -> None:
        if self._peeker is not None:
            try:
                self._peeker.close(autocommit=False)
            except Exception:
                logger.debug("closing the lag peeker failed", exc_info=True)
            self._peeker = None
