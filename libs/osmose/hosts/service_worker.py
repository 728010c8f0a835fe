"""A stage on the bus: consume an envelope, run the stage, publish what comes next.

Per message (the commit protocol around it is in :mod:`osmose.bus.consumer`):

1. decode the envelope; a message that is not one goes to the dead-letter topic;
2. skip it when the job already ended (cancelled, or a redelivery after it finished):
   stages do no work for cancelled jobs;
3. fetch the work item (inline or claim check), publish "entered";
4. run the stage on a copy of the item; the submitted file, a blob reference, is
   made a local file named like the original for the stages that read it;
5. on success: publish "finished" and the envelope for the next stage the job's tier
   runs, or, after the last stage, the job's final report ("done");
6. on a retryable error (or an unexpected one): back off exponentially with jitter and
   retry, up to the budget; then, like a permanent error at once: publish a dead letter
   (error class, reason, attempts) and the job's failed report.

Each publish waits for the broker's acknowledgement, and the status is published
before the next stage's envelope so job events keep their order. Every step is safe
to repeat: ids come from content and stores upsert, so a redelivered message changes
nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

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
from osmose.bus.jobs import JobTable, is_terminal
from osmose.bus.kafka_client import BusConfig, Producer
from osmose.bus.topics import dead_letter_topic, input_topic, job_topic, priority_name
from osmose.bus.trace import HEADER, TraceContext, child_of, from_headers
from osmose.errors import ConfigurationError, OsmoseError, PermanentError
from osmose.hosts.service_jobs import build_report, describe_error, job_snapshot
from osmose.pipeline import PIPELINE, Pipeline
from osmose.stage import PipelineStage
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb

__all__ = ["RetryPolicy", "ServiceBus", "StageWorker"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Retries of retryable errors within one delivery: attempt n waits about
    ``min(cap, base * 2**n)``, half of it random (jitter spreads retries of many
    documents hitting one backend), and the message is dead-lettered after
    ``max_attempts`` attempts."""

    max_attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap_s, self.base_s * 2 ** max(0, attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass
class ServiceBus:
    """What every stage of one process shares: producer, blob store, job table."""

    config: BusConfig
    producer: Producer
    blobs: BlobStore
    jobs: JobTable
    host: str
    claim_check_bytes: int = CLAIM_CHECK_BYTES
    pipeline: Pipeline = PIPELINE

    async def publish_job(self, job: epb.Job, trace: TraceContext | None = None) -> bool:
        """Publish a snapshot unless readers would ignore it (older than what is known)."""
        if not self.jobs.accepts(job):
            return False
        await self.producer.publish(job_topic(self.config.prefix), key=job.job_id.encode(),
                                    value=job.SerializeToString(),
                                    headers=[(HEADER, trace.traceparent.encode())] if trace else None)
        self.jobs.apply(job)   # this process sees its own writes at once
        return True

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

    def cancelled(self, envelope: epb.Envelope) -> bool:
        job = self.jobs.get(envelope.job_id)
        return job is not None and job.state == epb.JOB_STATE_CANCELLED and job.replay >= envelope.replay

    def ended(self, envelope: epb.Envelope) -> bool:
        job = self.jobs.get(envelope.job_id)
        return job is not None and is_terminal(job) and job.replay >= envelope.replay


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

    async def run_stage(self, item: ppb.WorkItem) -> ppb.WorkItem:
        """The stage on `item`, with a blob-referenced source made a local file meanwhile."""
        ref = item.source_uri if is_blob_ref(item.source_uri) else None
        if ref is None:
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
        if self._lock is None:
            return await self.stage.process(item)
        async with self._lock:
            return await self.stage.process(item)

    async def handle(self, delivery: Delivery) -> None:
        trace = child_of(from_headers(delivery.headers))
        try:                                                               # 1.
            envelope = decode(delivery.value)
        except EnvelopeError as exc:
            logger.error("%s: undecodable message at %s[%d]@%d: %s", self.name, delivery.topic,
                         delivery.partition, delivery.offset, exc)
            raw = epb.Envelope(stage=self.name, payload=delivery.value or b"")
            await self._dead_letter(raw, exc, attempts=1, retryable=False, trace=trace)
            return
        log = {"job": envelope.job_id, "tenant": envelope.tenant, "trace": trace.trace_id}
        if self.bus.ended(envelope):                                       # 2.
            logger.info("%s: skipping job %s, it already ended", self.name, envelope.job_id, extra=log)
            return
        try:                                                               # 3.
            if envelope.stage != self.name:
                raise EnvelopeError(f"message for stage {envelope.stage!r} on {delivery.topic}")
            item = unpack(envelope, self.bus.blobs)
        except PermanentError as exc:
            await self._fail(envelope, ppb.WorkItem(), exc, attempts=envelope.attempt + 1, retryable=False,
                             trace=trace)
            return
        await self.bus.publish_job(job_snapshot(envelope, pipeline=self.bus.pipeline, event="entered", stage=self.name, item=item,
                                                trace_id=trace.trace_id, base=self.bus.jobs.get(envelope.job_id)),
                                   trace)
        attempt = envelope.attempt
        while True:                                                        # 4.
            work = ppb.WorkItem()
            work.CopyFrom(item)
            started = time.perf_counter()
            try:
                out = await self.run_stage(work)
                break
            except asyncio.CancelledError:
                raise
            except (PermanentError, ConfigurationError) as exc:            # 6. no retry can help
                logger.warning("%s: job %s failed: %s", self.name, envelope.job_id, exc, extra=log)
                await self._fail(envelope, item, exc, attempts=attempt + 1, retryable=False, trace=trace)
                return
            except Exception as exc:                                       # 6. retryable (or unknown)
                attempt += 1
                if not isinstance(exc, OsmoseError):   # a bug or an unmapped dependency error
                    logger.exception("%s: unexpected error on job %s", self.name, envelope.job_id, extra=log)
                if attempt >= self.retry.max_attempts:
                    logger.error("%s: job %s gave up after %d attempts: %s", self.name, envelope.job_id, attempt,
                                 exc, extra=log)
                    await self._fail(envelope, item, exc, attempts=attempt, retryable=True, trace=trace)
                    return
                if self.bus.cancelled(envelope):
                    return
                envelope.attempt = attempt
                reason, text = describe_error(exc)
                snapshot = job_snapshot(envelope, pipeline=self.bus.pipeline, event="retrying", stage=self.name, item=item, reason=reason,
                                        base=self.bus.jobs.get(envelope.job_id))
                snapshot.error = text
                await self.bus.publish_job(snapshot, trace)
                delay = self.retry.delay(attempt)
                logger.warning("%s: job %s attempt %d failed (%s), retrying in %.1f s", self.name,
                               envelope.job_id, attempt, exc, delay, extra=log)
                await asyncio.sleep(delay)
        out.timings.add(stage=self.name, seconds=round(time.perf_counter() - started, 3))
        if self.bus.cancelled(envelope):
            logger.info("%s: job %s was cancelled; not forwarding it", self.name, envelope.job_id, extra=log)
            return
        following = self.bus.pipeline.next_stage(self.name, out.plan.tier)                   # 5.
        logger.info("%s: job %s (%s) processed in %.2f s, next: %s", self.name, envelope.job_id,
                    out.document.file_name, out.timings[-1].seconds, following.name if following else "done", extra=log)
        base = self.bus.jobs.get(envelope.job_id)
        if following is None:
            report = build_report(envelope, out, pipeline=self.bus.pipeline)
            await self.bus.publish_job(job_snapshot(envelope, pipeline=self.bus.pipeline, event="done", stage=self.name, item=out,
                                                    report=report, base=base), trace)
            logger.info("job %s done: %s", envelope.job_id, report.file, extra=log)
            return
        await self.bus.publish_job(job_snapshot(envelope, pipeline=self.bus.pipeline, event="finished", stage=self.name, item=out, base=base),
                                   trace)
        await self.bus.publish_work(forward(envelope, stage=following.name, tier=out.plan.tier), out, trace)

    async def _fail(self, envelope: epb.Envelope, item: ppb.WorkItem, exc: BaseException, *, attempts: int,
                    retryable: bool, trace: TraceContext) -> None:
        await self._dead_letter(envelope, exc, attempts=attempts, retryable=retryable, trace=trace)
        reason, text = describe_error(exc)
        if retryable:
            text = f"{text} (gave up after {attempts} attempts at {self.name})"
        report = build_report(envelope, item, error=text, pipeline=self.bus.pipeline)
        await self.bus.publish_job(job_snapshot(envelope, pipeline=self.bus.pipeline, event="failed", stage=self.name, item=item, report=report,
                                                reason=reason, base=self.bus.jobs.get(envelope.job_id)), trace)

    async def _dead_letter(self, envelope: epb.Envelope, exc: BaseException, *, attempts: int, retryable: bool,
                           trace: TraceContext) -> None:
        reason, _ = describe_error(exc)
        letter = epb.DeadLetter(stage=self.name, error_class=type(exc).__name__,
                                reason="retries-exhausted" if retryable else reason, message=str(exc),
                                attempts=attempts, retryable=retryable, failed_at_ms=now_ms(), host=self.bus.host,
                                trace_id=trace.trace_id)
        letter.envelope.CopyFrom(envelope)
        letter.envelope.attempt = attempts
        await self.bus.publish_dead_letter(letter, trace)
