"""A stage on the bus: consume an envelope, run the stage, publish what comes next.

Per message (the commit protocol around it is in :mod:`osmose.bus.consumer`; every job
transition is published by the job ledger, :mod:`osmose.hosts.job_ledger`):

1. decode the envelope; a message that is not one goes to the dead-letter topic;
2. skip it when the job already ended (cancelled, or a redelivery after it finished):
   stages do no work for cancelled jobs;
3. fetch the work item (inline or claim check), record "entered";
4. run the stage on a copy of the item; the submitted file, a blob reference, is
   made a local file named like the original for the stages that read it;
5. on success: record "finished" and publish the envelope for the next stage of the
   job's plan, or, after the last stage, record "done" with the job's final report;
6. on a retryable error: record "retrying", back off exponentially with jitter
   (tenacity) and retry, up to the budget; then, like a permanent error at once: a dead
   letter (error class, reason, attempts) and "failed". An error that is not one of
   Osmose's (a bug, or a dependency error nobody mapped) is dead-lettered at once as
   ``internal``: retrying a bug only hides it.

Each publish waits for the broker's acknowledgement, and the status is published
before the next stage's envelope so job events keep their order. Every step is safe
to repeat: ids come from content and stores upsert, so a redelivered message changes
nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

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
from osmose.bus.exceptions import EnvelopeError
from osmose.bus.jobs import JobTable
from osmose.bus.kafka_client import BusConfig, Producer
from osmose.bus.topics import consumer_group, dead_letter_topic, input_topic, job_topic, priority_name
from osmose.bus.trace import HEADER, TraceContext, child_of, from_headers
from osmose.errors import DocumentError, OsmoseError, RetryableError
from osmose.hosts.job_ledger import JobLedger
from osmose.hosts.report import describe_error
from osmose.pipeline import PIPELINE, Pipeline
from osmose.stage import PipelineStage
from osmose.telemetry import stages as telemetry
from osmose.telemetry.tracing import stage_span
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb

__all__ = ["RetryPolicy", "ServiceBus", "StageWorker"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Retries of retryable errors within one delivery: attempt n waits a random time up to
    ``min(cap, base * 2**n)`` (full jitter spreads retries of many documents hitting one
    backend), and the message is dead-lettered after ``max_attempts`` attempts."""

    max_attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0
    #: how the worker waits between attempts (tests pass one that records instead of sleeping)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)

    def retrying(self, *, before_sleep: Callable[[RetryCallState], Awaitable[None]]) -> AsyncRetrying:
        return AsyncRetrying(stop=stop_after_attempt(self.max_attempts),
                             wait=wait_random_exponential(multiplier=self.base_s, max=self.cap_s),
                             retry=retry_if_exception_type(RetryableError), sleep=self.sleep,
                             before_sleep=before_sleep, reraise=True)


@dataclass
class ServiceBus:
    """What every stage of one process shares: producer, blob store, the job ledger."""

    config: BusConfig
    producer: Producer
    blobs: BlobStore
    jobs: JobTable
    host: str
    claim_check_bytes: int = CLAIM_CHECK_BYTES
    pipeline: Pipeline = PIPELINE
    ledger: JobLedger = field(init=False)

    def __post_init__(self) -> None:
        self.ledger = JobLedger(table=self.jobs, publish=self._publish_job, pipeline=self.pipeline)

    async def _publish_job(self, job: epb.Job, trace: TraceContext | None) -> None:
        await self.producer.publish(job_topic(self.config.prefix), key=job.job_id.encode(),
                                    value=job.SerializeToString(),
                                    headers=[(HEADER, trace.traceparent.encode())] if trace else None)

    async def publish_work(self, envelope: epb.Envelope, item: ppb.WorkItem, trace: TraceContext) -> None:
        pack(envelope, item, self.blobs, threshold=self.claim_check_bytes)
        topic = input_topic(self.config.prefix, envelope.stage, priority_name(envelope.priority))
        await self.producer.publish(topic, key=message_key(envelope), value=encode(envelope),
                                    headers=headers(envelope, trace))

    async def publish_dead_letter(self, letter: epb.DeadLetter, trace: TraceContext) -> None:
        envelope = letter.envelope
        await self.producer.publish(dead_letter_topic(self.config.prefix, letter.stage),
                                    key=message_key(envelope) if envelope.job_id else b"",
                                    value=letter.SerializeToString(), headers=headers(envelope, trace))


class StageWorker:
    """Runs one stage for the messages of its consumer (and for direct Process calls)."""

    def __init__(self, *, stage: PipelineStage, bus: ServiceBus, retry: RetryPolicy = RetryPolicy(),
                 exclusive: bool = False) -> None:
        self.stage = stage
        self.name = stage.name
        self.bus = bus
        self.retry = retry
        # The persister is the stores' only writer; local stores take one write at a time.
        self._lock = asyncio.Lock() if exclusive else None
        telemetry.declare_stage(self.name)

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
        with stage_span(self.name):
            if self._lock is None:
                return await self.stage.process(item)
            async with self._lock:
                return await self.stage.process(item)

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
        if ledger.ended(envelope):                                         # 2.
            logger.info("%s: skipping job %s, it already ended", self.name, envelope.job_id, extra=log)
            scope.outcome = "skipped"
            return
        try:                                                               # 3.
            if envelope.stage != self.name:
                raise EnvelopeError(f"message for stage {envelope.stage!r} on {delivery.topic}")
            item = unpack(envelope, self.bus.blobs)
        except OsmoseError as exc:
            scope.outcome = "failed"
            await self._fail(envelope, ppb.WorkItem(), exc, attempts=envelope.attempt + 1, retryable=False,
                             trace=trace)
            return
        await ledger.entered(envelope, self.name, item, trace)

        async def before_sleep(state: RetryCallState) -> None:             # 6. a retry is coming
            exc = state.outcome.exception() if state.outcome else None
            envelope.attempt += 1
            logger.warning("%s: job %s attempt %d failed (%s), retrying", self.name, envelope.job_id,
                           envelope.attempt, exc, extra=log)
            telemetry.observe_retry(self.name)
            await ledger.retrying(envelope, self.name, item, exc or RetryableError("retry"), trace)

        started = time.perf_counter()
        try:                                                               # 4.
            async for attempt in self.retry.retrying(before_sleep=before_sleep):
                with attempt:
                    if ledger.cancelled(envelope):
                        scope.outcome = "skipped"
                        return
                    work = ppb.WorkItem()
                    work.CopyFrom(item)
                    started = time.perf_counter()
                    out = await self.run_stage(work)
        except asyncio.CancelledError:
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
        out.timings.add(stage=self.name, seconds=round(time.perf_counter() - started, 3))
        telemetry.observe_stage_time(self.name, tier=out.plan.tier or envelope.tier, outcome="ok",
                                     seconds=time.perf_counter() - started)
        if ledger.cancelled(envelope):
            scope.outcome = "skipped"
            logger.info("%s: job %s was cancelled; not forwarding it", self.name, envelope.job_id, extra=log)
            return
        following = self.bus.pipeline.next_stage(self.name, out.plan.tier)  # 5.
        logger.info("%s: job %s (%s) processed in %.2f s, next: %s", self.name, envelope.job_id,
                    out.document.file_name, out.timings[-1].seconds, following.name if following else "done",
                    extra=log)
        if following is None:
            await ledger.done(envelope, self.name, out, trace)
            logger.info("job %s done: %s", envelope.job_id, envelope.file, extra=log)
            return
        await ledger.finished(envelope, self.name, out, trace)
        await self.bus.publish_work(forward(envelope, stage=following.name, tier=out.plan.tier), out, trace)

    async def _fail(self, envelope: epb.Envelope, item: ppb.WorkItem, exc: BaseException, *, attempts: int,
                    retryable: bool, trace: TraceContext) -> None:
        await self._dead_letter(envelope, exc, attempts=attempts, retryable=retryable, trace=trace)
        await self.bus.ledger.failed(envelope, self.name, item, exc, attempts=attempts, retryable=retryable,
                                     trace=trace)

    async def _dead_letter(self, envelope: epb.Envelope, exc: BaseException, *, attempts: int, retryable: bool,
                           trace: TraceContext) -> None:
        reason, _ = describe_error(exc)
        telemetry.observe_dead_letter(self.name, "retries-exhausted" if retryable else reason)
        letter = epb.DeadLetter(stage=self.name, error_class=type(exc).__name__,
                                reason="retries-exhausted" if retryable else reason, message=str(exc),
                                attempts=attempts, retryable=retryable, failed_at_ms=now_ms(), host=self.bus.host,
                                trace_id=trace.trace_id)
        letter.envelope.CopyFrom(envelope)
        letter.envelope.attempt = attempts
        await self.bus.publish_dead_letter(letter, trace)
