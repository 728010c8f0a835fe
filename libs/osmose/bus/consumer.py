"""A stage's consumer: one thread owns the KafkaConsumer, the event loop runs the work.

kafka-python's consumer is synchronous and not thread-safe, so exactly one thread
(started here, named ``consumer-<stage>``) polls, pauses, resumes, commits and
closes it. Messages go to the event loop through :class:`~osmose.bus.lanes.Lanes`
(priority and bounded in-flight work); the handler's completion goes back through
:class:`~osmose.bus.offsets.OffsetTracker`. The poll loop never waits for work, so
a long model call cannot exceed ``max.poll.interval.ms``: while the lanes are full
the partitions are paused and poll() only keeps the membership alive.

Commit protocol, per message (steps numbered as in the code):

1. fetch: the offset becomes pending in the tracker;
2. the handler runs the stage and publishes every output (next stage's envelope,
   job status, dead letter) and **waits for the broker's acknowledgement**
   (acks=all, idempotent producer);
3. only then the offset is marked done;
4. the consumer thread commits each partition's commit point (the lowest offset
   not done) — a crash anywhere before 4 means redelivery, never loss.

Rebalance: partitions are assigned cooperatively (cooperative-sticky: only partitions
that really change owner are revoked). kafka-python 3 runs rebalance callbacks on its
IO thread, where nothing may block or call the consumer, so revocation is bookkeeping
only: queued messages of those partitions are dropped and the partitions forgotten.
Messages still running there finish and publish (their offsets are no longer ours to
commit), and the new owner gets them again from the last commit point: duplicate work
with idempotent results, limited to what was in flight, since done messages are
committed continuously.

Shutdown (:meth:`StageConsumer.stop`):

1. stop starting work and pause every partition (no more fetching);
2. wait up to ``drain_timeout_s`` for running messages; cancel the rest (their
   offsets stay uncommitted: handed back to the group);
3. commit what is done;
4. close the consumer, which leaves the group, so its partitions move to another
   replica at once instead of after the session timeout.

A handler that raises is a fatal error of the consumer (the handler deals with
message-level failures itself: retries, dead letters): the message stays
uncommitted and ``on_fatal`` is called; the host stops this consumer and starts a new
one (it leaves and rejoins the group, so the message is delivered again), or exits
after too many restarts.

Backpressure: while ``blocked()`` is true (the stage waits for a dependency that is
down, see :mod:`osmose.hosts.service_worker`) no queued message is started and every
partition is paused; offsets stay where they are and poll() keeps the membership
alive. Fetching resumes when it turns false.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from osmose.bus.kafka_client import BusConfig, new_consumer, poll, translate
from osmose.bus.lanes import BULK, HIGH, Lanes
from osmose.bus.offsets import OffsetTracker
from osmose.bus.topics import consumer_group, input_topics
from osmose.telemetry.kafka_lag import LagSampler

if TYPE_CHECKING:  # kafka-python is imported only when a consumer runs
    from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition

__all__ = ["Delivery", "StageConsumer"]

logger = logging.getLogger(__name__)

# Poll timeouts: short while work is queued or running (commits and resumes happen between
# polls), long when idle (an idle consumer costs ~1% of a core instead of ~4%). New records
# end a poll at once either way.
_BUSY_POLL_MS = 100
_IDLE_POLL_MS = 500


@dataclass(frozen=True)
class Delivery:
    """One fetched message, independent of kafka-python's types."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    priority: str
    #: the record's Kafka timestamp (Unix ms; -1 when the broker gives none): Kafka wait, lag in seconds
    timestamp_ms: int = -1

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


Handler = Callable[[Delivery], Awaitable[None]]


class StageConsumer:
    """Consumes the input topics of one stage in the group ``<prefix>.<stage>``."""

    def __init__(self, *, config: BusConfig, stage: str, handler: Handler, max_in_flight: int = 2,
                 on_fatal: Callable[[BaseException], None] | None = None,
                 blocked: Callable[[], bool] | None = None) -> None:
        self.config = config
        self.stage = stage
        self.handler = handler
        self.group = consumer_group(config.prefix, stage)
        self.topics = input_topics(config.prefix, stage)   # {"high": ..., "bulk": ...}
        self._priority_of = {topic: priority for priority, topic in self.topics.items()}
        self.max_in_flight = max_in_flight
        self.on_fatal = on_fatal or (lambda exc: None)
        self.blocked = blocked or (lambda: False)
        self.lanes: Lanes[Delivery] = Lanes(max_in_flight)
        self.tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
        self.ready = asyncio.Event()
        self.processed = 0
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()   # step 1 of shutdown: no new work, partitions paused
        self._closing = threading.Event()    # step 3: commit and close
        self._tasks: dict[asyncio.Task, Delivery] = {}
        self._error: BaseException | None = None
        # Lag in messages and seconds (osmose.telemetry.kafka_lag), sampled by the consumer thread.
        self.lag = LagSampler(group=self.group, stage=stage, lanes=self.topics,
                              new_peeker=lambda: new_consumer(config, group=None,
                                                              client_id=f"{config.client_id}-{stage}-lag"))

    # -- event loop side ---------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, args=(loop,), name=f"consumer-{self.stage}",
                                        daemon=True)
        self._thread.start()

    def _wake(self) -> None:
        """Start as many queued messages as the lanes allow (runs on the loop)."""
        while not self._stopping.is_set() and not self.blocked():
            picked = self.lanes.pop_startable()
            if picked is None:
                return
            priority, delivery = picked
            if not self.tracker.start(delivery.tp, delivery.offset):   # revoked meanwhile
                self.lanes.finished(priority)
                continue
            task = asyncio.get_running_loop().create_task(self._run_one(priority, delivery),
                                                          name=f"{self.stage}@{delivery.offset}")
            self._tasks[task] = delivery

    async def _run_one(self, priority: str, delivery: Delivery) -> None:
        try:
            await self.handler(delivery)                                # 2. outputs acknowledged
            self.tracker.done(delivery.tp, delivery.offset)             # 3. may be committed
            self.processed += 1
        except asyncio.CancelledError:
            self.tracker.release(delivery.tp, delivery.offset)          # handed back, uncommitted
            raise
        except BaseException as exc:  # the handler's own failure: not a message-level one
            self.tracker.release(delivery.tp, delivery.offset)
            logger.critical("stage %s failed on %s[%d]@%d, stopping: %s", self.stage, delivery.topic,
                            delivery.partition, delivery.offset, exc, exc_info=exc)
            self.on_fatal(exc)
        finally:
            self.lanes.finished(priority)
            self._tasks.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
            self._wake()

    async def stop(self, *, drain_timeout_s: float = 30.0) -> None:
        """Graceful shutdown; see the module docstring for the steps."""
        if self._thread is None:
            return
        self._stopping.set()                                            # 1.
        running = list(self._tasks)
        if running:
            logger.info("%s: finishing %d message(s) in flight", self.stage, len(running))
            _, late = await asyncio.wait(running, timeout=drain_timeout_s)  # 2.
            for task in late:
                task.cancel()
            if late:
                logger.warning("%s: %d message(s) handed back unfinished", self.stage, len(late))
                await asyncio.gather(*late, return_exceptions=True)
        self._closing.set()                                             # 3. and 4., in the thread
        await asyncio.to_thread(self._thread.join, self.config.request_timeout_s + 5)

    @property
    def error(self) -> BaseException | None:
        return self._error

    # -- consumer thread ---------------------------------------------------------------------------

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        consumer = None
        try:
            started = time.monotonic()
            while consumer is None:   # a broker that does not answer yet: keep trying for a while
                try:
                    consumer = new_consumer(self.config, group=self.group, max_poll_records=self.max_in_flight,
                                            client_id=f"{self.config.client_id}-{self.stage}",
                                            partition_assignment_strategy=(_cooperative_sticky(),))
                except Exception as exc:
                    if not _transient(exc) or time.monotonic() - started > _OUTAGE_S or self._closing.is_set():
                        raise
                    logger.warning("%s: cannot reach the broker yet (%s); trying again", self.stage, exc)
                    self._closing.wait(2.0)
            for topic in self.topics.values():   # metadata first, so the first assignment is not empty
                consumer.partitions_for_topic(topic)
            consumer.subscribe(list(self.topics.values()), listener=_listener(self, loop))
            outage: float | None = None
            while not self._closing.is_set():
                try:
                    self._round(consumer, loop)
                except Exception as exc:   # the broker gone: ride it out for a while, then fail (restart)
                    if not _transient(exc):
                        raise
                    now = time.monotonic()
                    outage = outage or now
                    if now - outage > _OUTAGE_S:
                        raise
                    logger.warning("%s: the broker does not answer (%s: %s); polling on", self.stage,
                                   type(exc).__name__, exc)
                    self._closing.wait(1.0)
                    continue
                outage = None
            self._final_commit(consumer)                                # shutdown 3.
        except BaseException as exc:
            self._error = translate(exc, f"consumer of {self.stage}", self.config) if isinstance(
                exc, Exception) else exc
            logger.critical("consumer of %s stopped: %s", self.stage, self._error, exc_info=exc)
            loop.call_soon_threadsafe(self.on_fatal, self._error)
        finally:
            self.lag.close()
            if consumer is not None:
                try:
                    consumer.close(autocommit=False)                    # shutdown 4.: leave the group
                except Exception:
                    logger.exception("closing the consumer of %s failed", self.stage)

    def _round(self, consumer: KafkaConsumer, loop: asyncio.AbstractEventLoop) -> None:
        """One round of the consumer thread: flow control, commit, poll, hand over, lag."""
        self._flow(consumer)
        self._commit(consumer)                                  # 4.
        busy = self.lanes.queued() or self.tracker.running() or self.tracker.committable()
        batches = poll(consumer, _BUSY_POLL_MS if busy else _IDLE_POLL_MS)
        fetched = 0
        for tp, records in batches.items():
            priority = self._priority_of[tp.topic]
            for record in records:
                key = (tp.topic, tp.partition)
                self.tracker.add(key, record.offset)            # 1.
                self.lag.fetched(key, record.offset, record.timestamp if record.timestamp is not None else -1)
                self.lanes.push(priority, Delivery(
                    topic=tp.topic, partition=tp.partition, offset=record.offset, key=record.key,
                    value=record.value, headers=list(record.headers or []), priority=priority,
                    timestamp_ms=record.timestamp if record.timestamp is not None else -1))
                fetched += 1
        if fetched:
            loop.call_soon_threadsafe(self._wake)
        if self.lag.due():
            self.lag.sample(consumer, self.tracker.oldest_pending)

    def _flow(self, consumer: KafkaConsumer) -> None:
        """Pause or resume partitions so fetching follows the lanes."""
        assigned = consumer.assignment()
        if not assigned:
            return
        if self._stopping.is_set() or self.blocked():
            want = dict.fromkeys(assigned, False)
        else:
            high_tps = [tp for tp in assigned if self._priority_of[tp.topic] == HIGH]
            fetch_high = self.lanes.wants(HIGH)
            fetch_bulk = self.lanes.wants(BULK, high_waiting_in_kafka=_lagging(consumer, high_tps))
            want = {tp: fetch_high if self._priority_of[tp.topic] == HIGH else fetch_bulk for tp in assigned}
        paused = consumer.paused()
        to_pause = [tp for tp, fetch in want.items() if not fetch and tp not in paused]
        to_resume = [tp for tp, fetch in want.items() if fetch and tp in paused]
        if to_pause:
            consumer.pause(*to_pause)
        if to_resume:
            consumer.resume(*to_resume)

    def _final_commit(self, consumer: KafkaConsumer, timeout_s: float = 10.0) -> None:
        """Commit what is done; a rebalance in progress refuses commits, so keep polling
        (every partition paused: nothing new is fetched into work) until it settles."""
        deadline = time.monotonic() + timeout_s
        while not self._commit(consumer) and time.monotonic() < deadline:
            self._flow(consumer)
            poll(consumer, _BUSY_POLL_MS)

    def _commit(self, consumer: KafkaConsumer, partitions: Iterable[tuple[str, int]] | None = None) -> bool:
        """Commit the commit points that moved; True when nothing is left to commit."""
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        points = self.tracker.committable(partitions)
        if not points:
            return True
        try:
            consumer.commit({TopicPartition(t, p): OffsetAndMetadata(offset, "", -1)
                             for (t, p), offset in points.items()})
        except Exception as exc:  # a rebalance in progress: retried on the next round
            logger.info("%s: commit deferred (%s)", self.stage, type(exc).__name__)
            return False
        self.tracker.committed(points)
        return True


#: how long the consumer thread rides out a broker that does not answer before it fails
_OUTAGE_S = 300.0


def _transient(exc: BaseException) -> bool:
    """A broker that does not answer (for now), as opposed to a bug or a configuration error."""
    from kafka import errors as kerr

    from osmose.bus.exceptions import BusUnavailableError

    if isinstance(exc, BusUnavailableError | kerr.KafkaConnectionError | kerr.KafkaTimeoutError):
        return True
    return isinstance(exc, kerr.KafkaError) and bool(getattr(exc, "retriable", False))


def _cooperative_sticky() -> type:
    from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor

    return CooperativeStickyAssignor


def _lagging(consumer: KafkaConsumer, partitions: Iterable[TopicPartition]) -> bool:
    """Whether any of `partitions` has messages in Kafka not yet handed to us."""
    for tp in partitions:
        high = consumer.highwater(tp)
        if high is None:
            continue
        try:
            position = consumer.position(tp, timeout_ms=50)
        except Exception:
            continue
        position = getattr(position, "offset", position)
        if position is not None and position < high:
            return True
    return False


def _listener(owner: StageConsumer, loop: asyncio.AbstractEventLoop) -> ConsumerRebalanceListener:
    """A rebalance listener for `owner` (kafka-python imported only when a consumer runs).

    Runs on kafka-python's IO thread: quick bookkeeping only, no blocking, no consumer calls.
    """
    from kafka import ConsumerRebalanceListener

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
            keys = {(tp.topic, tp.partition) for tp in revoked}
            if keys:
                owner.lanes.drop(lambda d: d.tp in keys)
                owner.tracker.forget(keys)
                logger.info("%s: %d partition(s) revoked", owner.stage, len(keys))

        def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
            owner.tracker.assign((tp.topic, tp.partition) for tp in assigned)
            logger.info("%s: group %s gave this consumer %d more partition(s), %d in all", owner.stage,
                        owner.group, len(assigned), len(owner.tracker.partitions()))
            loop.call_soon_threadsafe(owner.ready.set)

        def on_partitions_lost(self, lost: Collection[TopicPartition]) -> None:
            self.on_partitions_revoked(lost)

    return Listener()
