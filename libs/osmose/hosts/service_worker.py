"""A stage on the bus: consume an envelope, run the stage, publish what comes next.

Per message (the commit protocol around it is in :mod:`osmose.bus.consumer`; every job
transition is published by the job ledger, :mod:`osmose.hosts.job_ledger`):

1. decode the envelope; a message that is not one goes to the dead-letter topic;
2. skip it when the job already ended (cancelled, or a redelivery after it finished):
   stages do no work for cancelled jobs;
3. fetch the work item (inline or claim check), record "entered";
4. run the stage on a copy of the item; the submitted file, a blob reference, is
   made a local file named like the original for the stages that read it; the
   stage's model calls wait for backend slots in the job's order (:func:`call_order`:
   the high lane — premium plans — first, then older jobs first), as in the
   in-process host;
5. on success: record "finished" and publish the envelope for the next stage of the
   job's plan, or, after the last stage, record "done" with the job's final report; after
   the writer's preview pass (``plan.enrich_tier``): record "searchable" and publish the
   enrichment pass (:func:`osmose.pipeline.begin_enrichment`) in the same job;
6. on a retryable error: record "retrying", back off exponentially with jitter
   (tenacity) and retry, up to the budget; then, like a permanent error at once: a dead
   letter (error class, reason, attempts) and "failed". An error that is not one of
   Osmose's (a bug, or a dependency error nobody mapped) is dead-lettered at once as
   ``internal``: retrying a bug only hides it.

Look-aheads (``OSMOSE_LOOKAHEAD``, :mod:`osmose.hosts.streaming`; README, "How the service host keeps
the pool busy"): when the extractor starts on a job it publishes a copy of its input to the embedder
(which reads nothing the extractor writes), and in DEEP, once most segments are answered and slots are
free, a copy with the concepts answered so far to the miner; both are envelopes marked ``lookahead``
on the job's lane topic and key. A stage runs a look-ahead like a real message (the job's document
scope and call order) for its model answers only, which land in the caches the real message recalls,
and discards the result: no job event, nothing published, no dead letter (a failure is logged and
costs only its calls). Writers and the front door drop look-aheads.

Each publish waits for the broker's acknowledgement, and the status is published
before the next stage's envelope so job events keep their order. Every step is safe
to repeat: ids come from content and stores upsert, so a redelivered message changes
nothing.

Faults (the guarantees are in the README, "Faults and guarantees"):

* **every failure ends somewhere**: an exception anywhere after decoding (fetching the
  item, publishing a snapshot, packing or putting the next item, a bug) ends the job
  ``failed`` and dead-letters the message with its reason; nothing escapes to the
  consumer except a broker outage longer than ``publish_retry_s`` (the process cannot
  publish anything then: the message stays uncommitted and is redelivered);
* **persisted delivery count**: the ``entered`` snapshot on the compacted job topic
  carries ``deliveries``, how many times this stage has taken the run's message; a
  process rebuilds its job table from that topic at start, so a message that killed
  its process (OOM, SIGKILL, a native crash) is seen again with its count, and past
  ``max_deliveries`` it is dead-lettered as ``delivery-limit`` without running;
* **a deadline per stage**: one attempt longer than ``stage_timeout_s`` is cancelled
  and dead-lettered as ``stage-timeout``;
* **outages are waits**: a dependency error (:class:`~osmose.errors.BackendUnavailableError`:
  breaker open, store unreachable, blob store full) that outlasts the retries puts the
  stage in *waiting* (:attr:`StageWorker.waiting`: the consumer starts no new message
  and pauses its partitions, readiness is NOT_SERVING); the document in hand retries
  every ``outage_cap_s`` at most and carries on when the dependency is back; only after
  ``outage_max_s`` is it dead-lettered (``dependency-unavailable``);
* **sizes bounded by construction**: job snapshots and dead letters are trimmed to
  fit a Kafka message (:func:`bounded_job`, :func:`bounded_letter`), and a next-stage
  envelope that cannot fit fails its job as ``message-too-large``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from osmose.bus.blobs import BlobStore, is_blob_ref
from osmose.bus.consumer import Delivery
from osmose.bus.envelope import (
    CLAIM_CHECK_BYTES,
    decode,
    encode,
    forward,
    headers,
    message_key,
    now_ms,
    pack,
    unpack,
)
from osmose.bus.exceptions import BusUnavailableError, EnvelopeError
from osmose.bus.jobs import JobTable
from osmose.bus.kafka_client import BusConfig, Producer
from osmose.bus.topics import consumer_group, dead_letter_topic, input_topic, job_topic, priority_name
from osmose.bus.trace import HEADER, TraceContext, child_of, from_headers
from osmose.cache import document_scope
from osmose.errors import BackendUnavailableError, DocumentError, OsmoseError, RetryableError
from osmose.hosts.job_ledger import JobLedger
from osmose.hosts.report import describe_error
from osmose.hosts.streaming import (
    RelationTrigger,
    extraction_ahead_of_vision,
    miner_item,
    relation_lookahead_wanted,
    side_copy,
    side_lookahead_wanted,
    side_stage_of,
)
from osmose.models.context import PREMIUM_PRIORITY, CallOrder, bind_call_order, bind_segment_listener
from osmose.pipeline import PIPELINE, Pipeline, begin_enrichment
from osmose.stage import PipelineStage
from osmose.telemetry import stages as telemetry
from osmose.telemetry.tracing import stage_span
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb

if TYPE_CHECKING:
    from osmose.models import ModelRuntime

__all__ = ["MAX_MESSAGE_BYTES", "DeliveryLimitError", "RetryPolicy", "ServiceBus", "StageTimeoutError",
           "StageWorker", "bounded_job", "bounded_letter", "call_order"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: the largest message a stage publishes (the producer's and the broker's default limit is 1 MiB)
MAX_MESSAGE_BYTES = 1000 * 1024
#: a job snapshot above this is trimmed (long strings cut): the job topic is read by every process
MAX_SNAPSHOT_BYTES = 64 * 1024
_KEEP_CHARS = 1024
#: the longest file name (the client's `file` header) a job may carry
MAX_FILE_CHARS = 4096


class StageTimeoutError(DocumentError):
    """One attempt of the stage ran longer than its deadline (``OSMOSE_STAGE_TIMEOUT_S``)."""

    reason = "stage-timeout"


class DeliveryLimitError(DocumentError):
    """The message was taken ``OSMOSE_MAX_DELIVERIES`` times without an outcome: each time the
    process holding it died (out of memory, killed, a native crash). Not run again."""

    reason = "delivery-limit"


class DependencyUnavailableError(BackendUnavailableError):
    """A dependency stayed down longer than ``OSMOSE_OUTAGE_MAX_S`` while a document waited for it."""

    reason = "dependency-unavailable"


def _cut(text: str, keep: int = _KEEP_CHARS) -> str:
    return text if len(text) <= keep else f"{text[:keep]}…[{len(text) - keep} characters cut]"


def _cut_json(value: object) -> object:
    if isinstance(value, str):
        return _cut(value)
    if isinstance(value, list):
        return [_cut_json(v) for v in value[:50]]
    if isinstance(value, dict):
        return {k: _cut_json(v) for k, v in value.items()}
    return value


def call_order(envelope: epb.Envelope) -> CallOrder:
    """Where the job's model calls queue for backend slots (:mod:`osmose.models.limits`, and vLLM's
    per-request ``priority`` where the endpoint enables it): the high lane — the lane of premium
    plans, set by the front door — before everything else, then older jobs first, so a backlog's
    documents finish in the order they were submitted."""
    return CallOrder(priority=PREMIUM_PRIORITY if envelope.priority == epb.PRIORITY_HIGH else 0,
                     order=envelope.created_at_ms)


def bounded_job(job: epb.Job, limit: int = MAX_SNAPSHOT_BYTES) -> epb.Job:
    """`job`, or a copy with its long strings cut when its size is above `limit` (a 600 KB
    file name must not make every snapshot of the job too large to publish)."""
    if job.ByteSize() <= limit:
        return job
    trimmed = epb.Job()
    trimmed.CopyFrom(job)
    trimmed.file, trimmed.file_name = _cut(job.file), _cut(job.file_name)
    trimmed.error, trimmed.reason, trimmed.tier_reason = _cut(job.error), _cut(job.reason, 64), _cut(job.tier_reason)
    del trimmed.warnings[:]
    trimmed.warnings.extend(_cut(w) for w in job.warnings[:50])
    if job.report_json:
        try:
            trimmed.report_json = json.dumps(_cut_json(json.loads(job.report_json)), ensure_ascii=False)
        except ValueError:
            trimmed.report_json = ""
    if trimmed.ByteSize() > limit:   # still: keep what identifies the job and its outcome
        trimmed.report_json = json.dumps({"file": trimmed.file, "status": "error" if job.error else "ok",
                                          "error": trimmed.error or None}, ensure_ascii=False)
        del trimmed.warnings[:]
        del trimmed.timings[:]
    return trimmed


def bounded_letter(letter: epb.DeadLetter, limit: int = MAX_MESSAGE_BYTES) -> epb.DeadLetter:
    """`letter`, or a copy that fits in a Kafka message: long strings cut, then, if the inline
    work item is still too large, without it (the letter says so; the job still ends failed)."""
    if letter.ByteSize() <= limit and len(letter.envelope.file) <= MAX_FILE_CHARS:
        return letter
    trimmed = epb.DeadLetter()
    trimmed.CopyFrom(letter)
    trimmed.message = _cut(letter.message)
    trimmed.envelope.file = _cut(letter.envelope.file)
    if trimmed.ByteSize() > limit:
        trimmed.envelope.ClearField("body")
        trimmed.message += " [the inline work item was too large to keep: not replayable]"
    return trimmed


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Retries of retryable errors within one delivery: attempt n waits a random time up to
    ``min(cap, base * 2**n)`` (full jitter spreads retries of many documents hitting one
    backend), and the message is dead-lettered after ``max_attempts`` attempts."""

    max_attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0
    #: deadline of one attempt of the stage (``OSMOSE_STAGE_TIMEOUT_S``)
    stage_timeout_s: float = 900.0
    #: deliveries of one message to one stage before it is dead-lettered (``OSMOSE_MAX_DELIVERIES``)
    max_deliveries: int = 5
    #: during a dependency outage: the longest wait between two tries, and how long a document waits
    outage_cap_s: float = 30.0
    outage_max_s: float = 3600.0
    #: how the worker waits between attempts (tests pass one that records instead of sleeping)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)

    def retrying(self, *, before_sleep: Callable[[RetryCallState], Awaitable[None]]) -> AsyncRetrying:
        return AsyncRetrying(stop=stop_after_attempt(self.max_attempts),
                             wait=wait_random_exponential(multiplier=self.base_s, max=self.cap_s),
                             retry=retry_if_exception_type(RetryableError), sleep=self.sleep,
                             before_sleep=before_sleep, reraise=True)


@dataclass
class ServiceBus:
    """What every stage of one process shares: producer, blob store, the job ledger.

    Every publish waits for the broker's acknowledgement; while the broker does not answer
    it is retried (backoff up to 10 s) for ``publish_retry_s`` (``OSMOSE_PUBLISH_RETRY_S``),
    and :attr:`broker_down_since` tells readiness about it."""

    config: BusConfig
    producer: Producer
    blobs: BlobStore
    jobs: JobTable
    host: str
    claim_check_bytes: int = CLAIM_CHECK_BYTES
    pipeline: Pipeline = PIPELINE
    publish_retry_s: float = 300.0
    ledger: JobLedger = field(init=False)
    broker_down_since: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.ledger = JobLedger(table=self.jobs, publish=self._publish_job, pipeline=self.pipeline)

    async def send(self, topic: str, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]] | None) -> None:
        """Publish and wait for the acknowledgement, retrying while the broker is unreachable."""
        deadline = time.monotonic() + self.publish_retry_s
        delay = 0.5
        while True:
            try:
                await self.producer.publish(topic, key=key, value=value, headers=headers)
            except BusUnavailableError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                if self.broker_down_since is None:
                    self.broker_down_since = time.monotonic()
                logger.warning("publishing to %s failed (%s); retrying in %.1f s", topic, exc, delay)
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)
                continue
            if self.broker_down_since is not None:
                logger.warning("the broker answers again after %.1f s", time.monotonic() - self.broker_down_since)
                self.broker_down_since = None
            return

    async def _publish_job(self, job: epb.Job, trace: TraceContext | None) -> None:
        await self.send(job_topic(self.config.prefix), key=job.job_id.encode(),
                        value=bounded_job(job).SerializeToString(),
                        headers=[(HEADER, trace.traceparent.encode())] if trace else None)

    async def publish_work(self, envelope: epb.Envelope, item: ppb.WorkItem, trace: TraceContext) -> None:
        # Serializing a large item and storing its claim check are CPU and I/O: off the event loop,
        # so health checks and WatchJob answer meanwhile.
        await asyncio.to_thread(pack, envelope, item, self.blobs, threshold=self.claim_check_bytes)
        value = encode(envelope)
        if len(value) > MAX_MESSAGE_BYTES:
            raise DocumentError(f"the message for stage {envelope.stage} would be {len(value)} bytes, over the "
                                f"{MAX_MESSAGE_BYTES} a Kafka message may hold", reason="message-too-large")
        topic = input_topic(self.config.prefix, envelope.stage, priority_name(envelope.priority))
        await self.send(topic, key=message_key(envelope), value=value, headers=headers(envelope, trace))

    async def publish_dead_letter(self, letter: epb.DeadLetter, trace: TraceContext) -> None:
        letter = bounded_letter(letter)
        envelope = letter.envelope
        await self.send(dead_letter_topic(self.config.prefix, letter.stage),
                        key=message_key(envelope) if envelope.job_id else b"",
                        value=letter.SerializeToString(), headers=headers(envelope, trace))


class StageWorker:
    """Runs one stage for the messages of its consumer (and for direct Process calls)."""

    def __init__(self, *, stage: PipelineStage, bus: ServiceBus, retry: RetryPolicy = RetryPolicy(),
                 exclusive: bool = False, lookahead: bool = False, models: ModelRuntime | None = None) -> None:
        self.stage = stage
        self.name = stage.name
        self.bus = bus
        self.retry = retry
        # Send look-aheads to the later stages (OSMOSE_LOOKAHEAD); their publishes run in the background.
        self.lookahead = lookahead
        self.models = models   # the process's model backends: which look-aheads are worth sending
        self._background: set[asyncio.Task[None]] = set()
        # The persister is the stores' only writer; local stores take one write at a time.
        self._lock = asyncio.Lock() if exclusive else None
        # Documents waiting for a dependency (job id -> what is down): the stage takes no new work.
        self._waiting: dict[str, str] = {}
        self.waiting_since: float | None = None
        #: called when the stage stops or resumes waiting (the consumer starts queued work again)
        self.on_resume: Callable[[], None] = lambda: None
        telemetry.declare_stage(self.name)

    @property
    def waiting(self) -> bool:
        """A dependency of the stage is down: a document is waiting for it, no new work starts."""
        return bool(self._waiting)

    def waiting_for(self) -> str:
        return next(iter(self._waiting.values()), "")

    async def run_stage(self, item: ppb.WorkItem) -> ppb.WorkItem:
        """The stage on `item`, with a blob-referenced source made a local file meanwhile."""
        ref = item.source_uri if is_blob_ref(item.source_uri) else None
        if ref is None:
            if item.source_uri:   # a path or URL: never opened, whoever sent it (the answer must not tell)
                raise DocumentError("a work item's source must be a blob reference", reason="bad-source")
            return await self._process(item)
        with self.bus.blobs.local_file(ref, name=item.document.file_name or "document") as path:
            item.source_uri = str(path)
            try:
                out = await self._process(item)
            finally:
                item.source_uri = ref
        out.source_uri = ref
        return out

    async def _process(self, item: ppb.WorkItem) -> ppb.WorkItem:
        # document_scope: the cache entries used for this document are marked for its erasure
        with stage_span(self.name), document_scope(item.tenant, item.document.doc_id):
            if self._lock is None:
                return await self._deadline(self.stage.process(item))
            async with self._lock:
                return await self._deadline(self.stage.process(item))

    async def _deadline(self, call: Awaitable[ppb.WorkItem]) -> ppb.WorkItem:
        try:
            return await asyncio.wait_for(call, self.retry.stage_timeout_s)
        except TimeoutError as exc:
            raise StageTimeoutError(f"{self.name} took longer than its {self.retry.stage_timeout_s:g} s "
                                    "deadline (OSMOSE_STAGE_TIMEOUT_S)") from exc

    async def handle(self, delivery: Delivery) -> None:
        # The message's span and metrics (osmose.telemetry.stages); the steps are in _handle.
        with telemetry.message_scope(self.name, consumer_group(self.bus.config.prefix, self.name),
                                     delivery) as scope:
            await self._handle(delivery, scope)

    async def _handle(self, delivery: Delivery, scope: telemetry.MessageScope) -> None:
        trace = child_of(from_headers(delivery.headers))
        ledger = self.bus.ledger
        try:                                                               # 1.
            envelope = decode(delivery.value)
        except EnvelopeError as exc:
            logger.error("%s: undecodable message at %s[%d]@%d: %s", self.name, delivery.topic,
                         delivery.partition, delivery.offset, exc)
            raw = epb.Envelope(stage=self.name, payload=delivery.value or b"")
            scope.outcome = "failed"
            await self._dead_letter(raw, exc, attempts=1, retryable=False, trace=trace)
            return
        scope.bind(envelope, produced_ms=delivery.timestamp_ms)
        log = {"job_id": envelope.job_id, "tenant": envelope.tenant, "doc_id": envelope.doc_id,
               "trace_id": trace.trace_id}
        if envelope.lookahead:   # a warm-up: run for the caches, output discarded (module docstring)
            scope.mark_lookahead()
            await self._warm_up(envelope, log)
            return
        if ledger.ended(envelope):                                         # 2.
            logger.info("%s: skipping job %s, it already ended", self.name, envelope.job_id, extra=log)
            scope.outcome = "skipped"
            return
        item = ppb.WorkItem()
        try:
            await self._work(envelope, item, scope, trace, log)
        except (asyncio.CancelledError, BusUnavailableError):
            # Shutdown, or the broker gone for longer than the publish bound: nothing can be
            # published, so the message stays uncommitted and is redelivered.
            raise
        except Exception as exc:   # outside the stage call: a snapshot, packing, a blob put, a bug
            scope.outcome = "failed"
            logger.exception("%s: job %s failed outside the stage: %s", self.name, envelope.job_id, exc, extra=log)
            await self._fail(envelope, item, exc, attempts=envelope.attempt + 1,
                             retryable=isinstance(exc, RetryableError), trace=trace)
        finally:
            self._stop_waiting(envelope.job_id)

    async def _work(self, envelope: epb.Envelope, item: ppb.WorkItem, scope: telemetry.MessageScope,
                    trace: TraceContext, log: dict[str, str]) -> None:
        ledger = self.bus.ledger
        try:                                                               # 3.
            if envelope.stage != self.name:
                raise EnvelopeError(f"message for stage {envelope.stage!r} on {envelope.job_id}")
            if len(envelope.file) > MAX_FILE_CHARS:
                raise DocumentError(f"the file is named with {len(envelope.file)} characters, over the "
                                    f"{MAX_FILE_CHARS} a job may carry", reason="header-too-large")
            deliveries = ledger.deliveries(envelope, self.name) + 1
            if deliveries > self.retry.max_deliveries:
                raise DeliveryLimitError(f"{self.name} took this message {deliveries - 1} times and the process "
                                         "holding it died each time (OSMOSE_MAX_DELIVERIES)")
            item.CopyFrom(await self._outlast_outages(envelope, log, lambda: self._unpack(envelope)))
        except OsmoseError as exc:
            scope.outcome = "failed"
            logger.warning("%s: job %s refused: %s", self.name, envelope.job_id, exc, extra=log)
            await self._fail(envelope, item, exc, attempts=envelope.attempt + 1,
                             retryable=isinstance(exc, RetryableError), trace=trace)
            return
        await ledger.entered(envelope, self.name, item, trace, deliveries=deliveries)

        async def before_sleep(state: RetryCallState) -> None:             # 6. a retry is coming
            exc = state.outcome.exception() if state.outcome else None
            envelope.attempt += 1
            logger.warning("%s: job %s attempt %d failed (%s), retrying", self.name, envelope.job_id,
                           envelope.attempt, exc, extra=log)
            telemetry.observe_retry(self.name)
            await ledger.retrying(envelope, self.name, item, exc or RetryableError("retry"), trace)

        started = time.perf_counter()
        ahead = _Lookaheads(self, envelope, item, trace) if self.lookahead else None

        async def attempt_all() -> ppb.WorkItem | None:
            nonlocal started
            async for attempt in self.retry.retrying(before_sleep=before_sleep):
                with attempt:
                    if ledger.cancelled(envelope):
                        return None
                    work = ppb.WorkItem()
                    work.CopyFrom(item)
                    started = time.perf_counter()
                    with bind_call_order(call_order(envelope)), bind_segment_listener(ahead):
                        return await self.run_stage(work)
            raise AssertionError("unreachable: tenacity reraises")

        try:                                                               # 4.
            out = await self._outlast_outages(envelope, log, attempt_all, item=item, trace=trace)
            if ahead is not None:   # published before the next stage's envelope: it comes first
                await ahead.settle()
        except asyncio.CancelledError:
            if ahead is not None:
                ahead.cancel()
            raise
        except RetryableError as exc:                                      # 6. out of attempts
            scope.outcome = "failed"
            telemetry.observe_stage_time(self.name, tier=envelope.tier, outcome="failed",
                                         seconds=time.perf_counter() - started)
            attempts = envelope.attempt + 1
            logger.error("%s: job %s gave up after %d attempts: %s", self.name, envelope.job_id, attempts, exc,
                         extra=log)
            await self._fail(envelope, item, exc, attempts=attempts, retryable=True, trace=trace)
            return
        except Exception as exc:                                           # 6. permanent, config, or a bug
            scope.outcome = "failed"
            telemetry.observe_stage_time(self.name, tier=envelope.tier, outcome="failed",
                                         seconds=time.perf_counter() - started)
            if isinstance(exc, OsmoseError):
                logger.warning("%s: job %s failed: %s", self.name, envelope.job_id, exc, extra=log)
            else:
                logger.exception("%s: internal error on job %s", self.name, envelope.job_id, extra=log)
            await self._fail(envelope, item, exc, attempts=envelope.attempt + 1, retryable=False, trace=trace)
            return
        if out is None:
            scope.outcome = "skipped"
            return
        out.timings.add(stage=self.name, seconds=round(time.perf_counter() - started, 3))
        telemetry.observe_stage_time(self.name, tier=out.plan.tier or envelope.tier, outcome="ok",
                                     seconds=time.perf_counter() - started)
        if ledger.cancelled(envelope):
            scope.outcome = "skipped"
            logger.info("%s: job %s was cancelled; not forwarding it", self.name, envelope.job_id, extra=log)
            return
        following = self.bus.pipeline.next_stage(self.name, out.plan.tier)  # 5.
        searchable = following is None and bool(out.plan.enrich_tier)
        if searchable:   # a preview pass persisted: searchable; the same job goes on with its enrichment
            following = begin_enrichment(out, self.bus.pipeline)
        logger.info("%s: job %s (%s) processed in %.2f s, next: %s", self.name, envelope.job_id,
                    out.document.file_name, out.timings[-1].seconds, following.name if following else "done",
                    extra=log)
        if searchable:
            out.timings.add(stage="searchable", seconds=round(max(0, now_ms() - envelope.created_at_ms) / 1000, 3))
        if following is None:
            await ledger.done(envelope, self.name, out, trace)
            logger.info("job %s done: %s", envelope.job_id, envelope.file, extra=log)
            return
        following_envelope = forward(envelope, stage=following.name, tier=out.plan.tier)
        # Checked before "finished" is published, so a message that cannot be sent fails the job cleanly.
        if len(encode(following_envelope)) + min(out.ByteSize(), self.bus.claim_check_bytes) > MAX_MESSAGE_BYTES:
            raise DocumentError(f"the message for {following.name} would not fit in a Kafka message "
                                f"({MAX_MESSAGE_BYTES} bytes)", reason="message-too-large")
        if searchable:
            await ledger.searchable(envelope, self.name, out, trace)
        else:
            await ledger.finished(envelope, self.name, out, trace)
        await self._outlast_outages(envelope, log, lambda: self.bus.publish_work(following_envelope, out, trace))

    async def _warm_up(self, envelope: epb.Envelope, log: dict[str, str]) -> None:
        """A look-ahead: the stage on its item, for the model answers it leaves in the caches; the
        result is discarded and nothing is published (no job event, no dead letter)."""
        decl = next((s for s in self.bus.pipeline.stages if s.name == self.name), None)
        if decl is None or decl.role != "worker":
            logger.warning("%s: dropping a look-ahead for job %s: a %s takes none", self.name, envelope.job_id,
                           decl.role if decl else "stage outside the pipeline", extra=log)
            telemetry.observe_lookahead(self.name, "dropped")
            return
        if self.bus.ledger.ended(envelope) or self.bus.ledger.cancelled(envelope):
            telemetry.observe_lookahead(self.name, "dropped")
            return
        started = time.perf_counter()
        try:
            item = await self._unpack(envelope)
            with bind_call_order(call_order(envelope)):
                await self.run_stage(item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:   # a warm-up that fails costs its calls, nothing else
            logger.info("%s: look-ahead for job %s failed (the real message will do the work): %s: %s", self.name,
                        envelope.job_id, type(exc).__name__, exc, extra=log)
            telemetry.observe_lookahead(self.name, "failed")
            return
        telemetry.observe_lookahead(self.name, "ok")
        logger.info("%s: look-ahead for job %s run in %.2f s", self.name, envelope.job_id,
                    time.perf_counter() - started, extra=log)

    async def _unpack(self, envelope: epb.Envelope) -> ppb.WorkItem:
        return await asyncio.to_thread(unpack, envelope, self.bus.blobs)   # a blob read + parse: off the loop

    async def _outlast_outages(self, envelope: epb.Envelope, log: dict[str, str],
                               call: Callable[[], Awaitable[T]], *, item: ppb.WorkItem | None = None,
                               trace: TraceContext | None = None) -> T:
        """`call()`; while it fails because a dependency is down (a BackendUnavailableError that
        outlasted its retries, other than the broker's: publishes have their own bound), the stage
        is *waiting* and the call is tried again after a growing pause of at most ``outage_cap_s``,
        for up to ``outage_max_s``."""
        since: float | None = None
        tries = 0
        while True:
            try:
                result = await call()
            except BusUnavailableError:
                raise
            except BackendUnavailableError as exc:
                now = time.monotonic()
                if since is None:
                    since = now
                    logger.warning("%s: job %s waits, a dependency is down: %s", self.name, envelope.job_id, exc,
                                   extra=log)
                    self._start_waiting(envelope.job_id, str(exc))
                    if item is not None and trace is not None:
                        await self.bus.ledger.retrying(envelope, self.name, item, exc, trace)
                if now - since > self.retry.outage_max_s:
                    raise DependencyUnavailableError(
                        f"still down after {now - since:.0f} s (OSMOSE_OUTAGE_MAX_S): {exc}") from exc
                tries += 1
                pause = random.uniform(0.5, 1.0) * min(self.retry.outage_cap_s, self.retry.base_s * 2 ** min(tries, 16))
                await self.retry.sleep(pause)
                continue
            if since is not None:
                logger.warning("%s: job %s carries on after a %.1f s outage", self.name, envelope.job_id,
                               time.monotonic() - since, extra=log)
                self._stop_waiting(envelope.job_id)
            return result

    def _start_waiting(self, job_id: str, what: str) -> None:
        if not self._waiting:
            self.waiting_since = time.monotonic()
            telemetry_waiting(self.name, True)
        self._waiting[job_id] = what

    def _stop_waiting(self, job_id: str) -> None:
        if self._waiting.pop(job_id, None) is not None and not self._waiting:
            self.waiting_since = None
            telemetry_waiting(self.name, False)
            self.on_resume()

    async def _fail(self, envelope: epb.Envelope, item: ppb.WorkItem, exc: BaseException, *, attempts: int,
                    retryable: bool, trace: TraceContext) -> None:
        await self._dead_letter(envelope, exc, attempts=attempts, retryable=retryable, trace=trace)
        await self.bus.ledger.failed(envelope, self.name, item, exc, attempts=attempts, retryable=retryable,
                                     trace=trace)

    async def _dead_letter(self, envelope: epb.Envelope, exc: BaseException, *, attempts: int, retryable: bool,
                           trace: TraceContext) -> None:
        reason, _ = describe_error(exc)
        if isinstance(exc, DependencyUnavailableError):
            reason = exc.reason
        elif retryable:
            reason = "retries-exhausted"
        telemetry.observe_dead_letter(self.name, reason)
        letter = epb.DeadLetter(stage=self.name, error_class=type(exc).__name__,
                                reason=reason, message=str(exc),
                                attempts=attempts, retryable=retryable, failed_at_ms=now_ms(), host=self.bus.host,
                                trace_id=trace.trace_id)
        letter.envelope.CopyFrom(envelope)
        letter.envelope.attempt = attempts
        await self.bus.publish_dead_letter(letter, trace)


class _Lookaheads:
    """The look-aheads one message of a stage sends (module docstring): to its side stage when it
    starts, and, from the extractor of a DEEP job, to the miner when :class:`RelationTrigger` fires
    (bound as the segment listener of the stage's calls). Publishing runs in the background;
    :meth:`settle` waits for it before the real next envelope is published, so on the job's
    partition a look-ahead always comes before the real message."""

    def __init__(self, worker: StageWorker, envelope: epb.Envelope, item: ppb.WorkItem,
                 trace: TraceContext) -> None:
        self.worker = worker
        self.envelope = envelope
        self.trace = trace
        self.base = side_copy(item)   # the stage's input, accumulators cleared
        self.tasks: list[asyncio.Task[None]] = []
        pipeline = worker.bus.pipeline
        models = worker.models
        side = side_stage_of(pipeline, worker.name, item.plan.tier)
        if side is not None and side_lookahead_wanted(side.name, models):
            self._start(self._send(side.name, self.base))
        ahead = extraction_ahead_of_vision(pipeline, models, worker.name, item)
        if ahead is not None:   # the segments vision does not touch, to the extractor now
            self._start(self._send("extractor", ahead))
        self.relations = (RelationTrigger(models) if worker.name == "extractor" and models is not None
                          and relation_lookahead_wanted(pipeline, models, item) else None)

    def __call__(self, task: str, answers: Mapping[str, Sequence[Mapping[str, Any]]], pending: int) -> None:
        snapshot = self.relations.fire(task, answers, pending) if self.relations is not None else None
        if snapshot is not None:
            self._start(self._send_miner(snapshot))

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.append(task)
        self.worker._background.add(task)   # referenced until done, whatever happens to this message
        task.add_done_callback(self.worker._background.discard)

    async def _send_miner(self, answers: dict[str, list[Mapping[str, Any]]]) -> None:
        base = ppb.WorkItem()
        base.CopyFrom(self.base)
        await self._send("miner", miner_item(base, answers, self.worker.stage))

    async def _send(self, stage: str, item: ppb.WorkItem) -> None:
        envelope = forward(self.envelope, stage=stage, tier=item.plan.tier or self.envelope.tier)
        envelope.lookahead = True
        try:
            await self.worker.bus.publish_work(envelope, item, self.trace)
        except asyncio.CancelledError:
            raise
        except Exception as exc:   # BusUnavailableError included: the real message carries the work
            logger.warning("%s: look-ahead to %s for job %s not sent: %s", self.worker.name, stage,
                           self.envelope.job_id, exc)
            telemetry.observe_lookahead(self.worker.name, "publish-failed")
            return
        telemetry.observe_lookahead(self.worker.name, "published")

    async def settle(self) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()


def telemetry_waiting(stage: str, waiting: bool) -> None:
    """Logged (and exported where the telemetry module offers a gauge)."""
    logger.warning("stage %s %s", stage, "waits for a dependency: no new work" if waiting else "takes work again")
