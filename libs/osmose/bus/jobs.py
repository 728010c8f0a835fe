"""Job status: snapshots on the compacted ``<prefix>.jobs`` topic, and the table rebuilt from it.

Every event about a job (queued, stage entered/finished, retrying, done, failed,
cancelled, replayed) is published as a *complete* :class:`~osmose.v1.envelope_pb2.Job`
snapshot keyed by job id, so compaction keeps exactly the latest one and any
process that reads the topic from the beginning knows every job (the front door
does at start: any replica answers GetJob/WatchJob for any job).

Snapshots are written by whichever stage holds the job, by different processes, and
a redelivered message can re-publish an old event. Readers therefore order snapshots
by ``(replay, progress)`` and never go back (:meth:`JobTable.apply`): progress is 0
when queued, ``10*(i+1)`` when stage *i* starts, ``+5`` when it finishes and 1000 at
the end; the first terminal snapshot of a run wins. Writers check the table first and
do not publish what readers would ignore, so the compacted topic keeps the right
latest snapshot too.

The overdue flag (``overdue_at_ms``/``overdue_by``, :mod:`osmose.telemetry.overdue`) is the
one field a snapshot of the same ``(replay, progress)`` may add: a *marker* (a copy of a
snapshot plus the flag) only sets the flag on what the table holds, and once set the flag
sticks to every later snapshot of the job, even one whose writer had not seen it yet (that
job is listed in :attr:`JobTable.unflagged` so the flag can be published again before
compaction drops the marker). Tables apply the topic in log order, so every table agrees
on which marker set the flag first: :attr:`JobTable.overdue_observers` hear about it.

The table is bounded: jobs that ended are kept for at most ``ended_ttl_s`` after their
last snapshot and at most ``max_ended`` of them (the oldest go first); jobs that have
not ended are always kept. A snapshot of a job that ended longer ago than the TTL is
not even stored (rebuilding from a week of compacted topic keeps one day). Forgotten
jobs answer NOT_FOUND; a late redelivery of one is re-run (idempotently) as if new.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import TYPE_CHECKING

from google.protobuf.message import DecodeError

from osmose.bus.exceptions import TopicError
from osmose.bus.kafka_client import BusConfig, new_consumer, translate
from osmose.bus.topics import job_topic
from osmose.v1 import envelope_pb2 as epb

if TYPE_CHECKING:
    from kafka.consumer.fetcher import ConsumerRecord

__all__ = [
    "DEFAULT_ENDED_TTL_S",
    "DEFAULT_MAX_ENDED",
    "PROGRESS_DONE",
    "TERMINAL_STATES",
    "JobTable",
    "JobTail",
    "is_terminal",
    "decode_job",
    "read_topic",
]

logger = logging.getLogger(__name__)

TERMINAL_STATES = frozenset({epb.JOB_STATE_SUCCEEDED, epb.JOB_STATE_FAILED, epb.JOB_STATE_CANCELLED})
PROGRESS_DONE = 1000
#: bounds of a job table's ended jobs (OSMOSE_JOB_TABLE_MAX_ENDED, OSMOSE_JOB_TABLE_ENDED_TTL_S)
DEFAULT_MAX_ENDED = 10_000
DEFAULT_ENDED_TTL_S = 24 * 3600.0


def is_terminal(job: epb.Job) -> bool:
    return job.state in TERMINAL_STATES


def _order(job: epb.Job) -> tuple[int, int]:
    return (job.replay, job.progress)


class JobTable:
    """The latest snapshot of every job plus a short history for watchers.

    Lives on the event loop (no locks): the tail thread hands snapshots over with
    ``call_soon_threadsafe``.
    """

    #: snapshots kept per job for WatchJob's replay
    DEFAULT_HISTORY = 64

    def __init__(self, *, history_limit: int = DEFAULT_HISTORY, max_ended: int = DEFAULT_MAX_ENDED,
                 ended_ttl_s: float = DEFAULT_ENDED_TTL_S, clock: Callable[[], float] = time.time) -> None:
        self.history_limit = history_limit
        self.max_ended = max_ended
        self.ended_ttl_s = ended_ttl_s
        self._clock = clock
        self._jobs: dict[str, epb.Job] = {}
        self._open: set[str] = set()   # jobs not ended: what the in-flight metrics walk
        self._ended: OrderedDict[str, float] = OrderedDict()   # ended jobs -> when (s), oldest first
        self._history: dict[str, list[epb.Job]] = {}
        self._watchers: dict[str, set[asyncio.Queue]] = {}
        #: called with every snapshot that is news (in order per job), kept in the table or not:
        #: what counts jobs beyond the table's bounds (the plan quotas) listens here
        self.observers: list[Callable[[epb.Job], None]] = []
        #: called with the stored snapshot when the overdue flag of a job is first set in this table
        self.overdue_observers: list[Callable[[epb.Job], None]] = []
        #: jobs whose latest snapshot on the topic lacks the overdue flag the table keeps for them
        self.unflagged: set[str] = set()

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, job_id: str) -> epb.Job | None:
        return self._jobs.get(job_id)

    def jobs(self) -> list[epb.Job]:
        return list(self._jobs.values())

    def open_jobs(self) -> list[epb.Job]:
        """Jobs that have not ended (queued or running), without walking the ended ones."""
        return [self._jobs[job_id] for job_id in list(self._open)]

    def accepts(self, job: epb.Job) -> bool:
        """Whether `job` is news: later than what the table holds."""
        current = self._jobs.get(job.job_id)
        if current is None:
            return True
        if job == current:   # the same snapshot again (a process's own write-through, then the tail)
            return False
        if _order(job) < _order(current):
            return False
        return not (_order(job) == _order(current) and is_terminal(current))

    def _ended_at(self, job: epb.Job) -> float:
        return job.updated_at_ms / 1000 if job.updated_at_ms else self._clock()

    def evict(self) -> int:
        """Forget ended jobs beyond the bounds (count, then age); the number forgotten."""
        horizon = self._clock() - self.ended_ttl_s
        forgotten = 0
        while self._ended:
            job_id, ended = next(iter(self._ended.items()))
            if len(self._ended) <= self.max_ended and ended >= horizon:
                break
            del self._ended[job_id]
            if job_id not in self._watchers:   # a watcher still waiting keeps its history
                self._history.pop(job_id, None)
            self._jobs.pop(job_id, None)
            self.unflagged.discard(job_id)
            forgotten += 1
        return forgotten

    def _marker(self, job: epb.Job, current: epb.Job | None) -> bool | None:
        """For a snapshot carrying the overdue flag at the order the table holds: True when it is a
        marker that sets the flag here (merged), False when it is a marker or a re-publication
        that says nothing new (ignored); None for every other snapshot."""
        if current is None or not job.overdue_at_ms or _order(job) != _order(current):
            return None
        if not current.overdue_at_ms:
            current.overdue_at_ms, current.overdue_by = job.overdue_at_ms, job.overdue_by
            self.unflagged.discard(job.job_id)
            for observe in self.overdue_observers:
                observe(current)
            return True
        if job.updated_at_ms <= current.updated_at_ms:
            self.unflagged.discard(job.job_id)
            return False
        return None

    def apply(self, job: epb.Job) -> bool:
        if not job.job_id:
            return False
        current = self._jobs.get(job.job_id)
        merged = self._marker(job, current)
        if merged is not None:
            return merged
        if not self.accepts(job):
            return False
        for observe in self.observers:
            observe(job)
        if (is_terminal(job) and job.job_id not in self._jobs
                and self._ended_at(job) < self._clock() - self.ended_ttl_s):
            return False   # ended long ago (a rebuild from the compacted topic): not worth memory
        snapshot = epb.Job()
        snapshot.CopyFrom(job)
        flagged = bool(snapshot.overdue_at_ms) and not (current is not None and current.overdue_at_ms)
        if current is not None and current.overdue_at_ms and not snapshot.overdue_at_ms:
            # written before its writer saw the flag: the flag sticks (and is published again)
            snapshot.overdue_at_ms, snapshot.overdue_by = current.overdue_at_ms, current.overdue_by
            self.unflagged.add(job.job_id)
        elif snapshot.overdue_at_ms:
            self.unflagged.discard(job.job_id)
        self._jobs[job.job_id] = snapshot
        if is_terminal(snapshot):
            self._open.discard(job.job_id)
            self._ended.pop(job.job_id, None)
            self._ended[job.job_id] = self._ended_at(snapshot)
        else:
            self._open.add(job.job_id)
            self._ended.pop(job.job_id, None)
        history = self._history.setdefault(job.job_id, [])
        history.append(snapshot)
        del history[:-self.history_limit]
        for queue in self._watchers.get(job.job_id, ()):
            queue.put_nowait(snapshot)
        if flagged:
            for observe in self.overdue_observers:
                observe(snapshot)
        if len(self._ended) > self.max_ended or (self._ended and next(iter(self._ended.values()))
                                                  < self._clock() - self.ended_ttl_s):
            self.evict()
        return True

    def apply_many(self, jobs: Iterable[epb.Job]) -> None:
        for job in jobs:
            self.apply(job)

    async def watch(self, job_id: str) -> AsyncGenerator[epb.Job, None]:
        """The job's snapshots so far, then each new one, until a terminal one."""
        queue: asyncio.Queue[epb.Job] = asyncio.Queue()
        self._watchers.setdefault(job_id, set()).add(queue)
        try:
            # Registered before copying the history, with no await in between: nothing is
            # missed and nothing comes twice.
            for snapshot in list(self._history.get(job_id, ())):
                yield snapshot
                if is_terminal(snapshot):
                    return
            while True:
                snapshot = await queue.get()
                yield snapshot
                if is_terminal(snapshot):
                    return
        finally:
            watchers = self._watchers.get(job_id)
            if watchers is not None:
                watchers.discard(queue)
                if not watchers:
                    del self._watchers[job_id]


def decode_job(value: bytes | None) -> epb.Job | None:
    """A job snapshot from the job topic; None for a tombstone or an undecodable message."""
    if not value:   # a tombstone
        return None
    job = epb.Job()
    try:
        job.ParseFromString(value)
    except DecodeError:
        logger.warning("skipping an undecodable job status message")
        return None
    return job


def read_topic(config: BusConfig, topic: str, on_record: Callable[[ConsumerRecord], None], *,
               timeout_s: float = 30.0) -> None:
    """Read a whole topic once, from the beginning to the end offsets at call time
    (no consumer group: nothing is committed). For tools: dlq list, job lookups."""
    from kafka import TopicPartition

    consumer = new_consumer(config, group=None)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        targets = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < targets[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} took longer than {timeout_s:.0f} s")
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    if record.offset < targets[TopicPartition(record.topic, record.partition)]:
                        on_record(record)
    except Exception as exc:
        raise translate(exc, f"reading {topic}", config) from exc
    finally:
        consumer.close(autocommit=False)


class JobTail:
    """Follows the job topic from its beginning in a thread and feeds a :class:`JobTable`.

    ``ready`` is set once everything that was on the topic at start has been applied.
    """

    def __init__(self, config: BusConfig, table: JobTable) -> None:
        self.config = config
        self.table = table
        self.topic = job_topic(config.prefix)
        self.ready = asyncio.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_fatal: Callable[[BaseException], None] = lambda exc: None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, args=(loop,), name="job-tail", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        from kafka import TopicPartition

        consumer = None
        try:
            consumer = new_consumer(self.config, group=None, client_id=f"{self.config.client_id}-jobs")
            partitions = consumer.partitions_for_topic(self.topic)
            deadline = time.monotonic() + self.config.request_timeout_s
            while not partitions:   # a topic created a moment ago may not be in the metadata yet
                if time.monotonic() > deadline or self._stop.is_set():
                    raise TopicError(f"topic {self.topic} does not exist (osmose topics --create makes it)")
                self._stop.wait(0.2)
                partitions = consumer.partitions_for_topic(self.topic)
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            targets = consumer.end_offsets(tps)
            caught_up = False
            while not self._stop.is_set():
                jobs = []
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        job = decode_job(record.value)
                        if job is not None:
                            jobs.append(job)
                if jobs:
                    loop.call_soon_threadsafe(self.table.apply_many, jobs)
                if not caught_up and all(consumer.position(tp) >= targets[tp] for tp in tps):
                    caught_up = True
                    logger.info("job table rebuilt from %s", self.topic)
                    loop.call_soon_threadsafe(self.ready.set)
        except Exception as exc:
            error = translate(exc, f"following {self.topic}", self.config)
            logger.critical("job status tail stopped: %s", error)
            loop.call_soon_threadsafe(self.on_fatal, error)
        finally:
            if consumer is not None:
                consumer.close(autocommit=False)
