"""The job ledger: the one owner of job status in the service host.

Every transition of a job (:class:`osmose.v1.envelope_pb2.JobEventKind`: queued,
entered, finished, retrying, searchable, done, failed, cancelled, replayed) is built here as a
complete snapshot and published to the compacted job topic, keyed by job id; the
ledger's :class:`~osmose.bus.jobs.JobTable` (rebuilt from that topic at start) is
what GetJob/WatchJob read and what stages check for cancelled or ended jobs.

The final report is built with :func:`osmose.hosts.report.fill_report`, exactly as
the in-process host builds it, and travels as JSON in the job's ``report_json``:
``osmose submit --wait --json`` prints that string, so its line is the one
``osmose ingest --json`` prints for the same file (same keys, order and values;
``seconds`` holds the stages' own times plus ``total``, which here is the time
from Submit to the end, queueing included).

:func:`transition` is pure (no I/O): `osmose dlq replay`, a process without the
ledger's event loop, builds its ``replayed`` snapshot with it too.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from osmose.bus.envelope import now_ms
from osmose.bus.jobs import PROGRESS_DONE, JobTable, is_terminal
from osmose.bus.trace import TraceContext
from osmose.hosts.report import IngestReport, describe_error, fill_report
from osmose.pipeline import PIPELINE, Pipeline
from osmose.telemetry.documents import observe_transition
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb
from osmose.v1 import services_pb2 as spb

__all__ = ["ERASURE_COUNTS", "JobLedger", "Publish", "build_report", "erasure_job", "event_kind", "event_name",
           "progress_of", "report_from_job", "transition"]

logger = logging.getLogger(__name__)

#: sends one snapshot to the job topic and waits for the broker's acknowledgement
Publish = Callable[[epb.Job, TraceContext | None], Awaitable[None]]

_STATE = {
    epb.JOB_EVENT_QUEUED: epb.JOB_STATE_QUEUED, epb.JOB_EVENT_REPLAYED: epb.JOB_STATE_QUEUED,
    epb.JOB_EVENT_ENTERED: epb.JOB_STATE_RUNNING, epb.JOB_EVENT_FINISHED: epb.JOB_STATE_RUNNING,
    epb.JOB_EVENT_RETRYING: epb.JOB_STATE_RUNNING, epb.JOB_EVENT_DONE: epb.JOB_STATE_SUCCEEDED,
    epb.JOB_EVENT_FAILED: epb.JOB_STATE_FAILED, epb.JOB_EVENT_CANCELLED: epb.JOB_STATE_CANCELLED,
    epb.JOB_EVENT_SEARCHABLE: epb.JOB_STATE_RUNNING,
}
_COUNTS = ("slides", "segments", "concepts", "relations", "chunks", "embedded")
#: progress of a preview's "searchable" event; its enrichment pass counts from here (monotone)
PROGRESS_SEARCHABLE = 100


def event_name(kind: int) -> str:
    """``JOB_EVENT_ENTERED`` -> ``"entered"`` (logs, CLI output)."""
    return epb.JobEventKind.Name(kind).removeprefix("JOB_EVENT_").lower()


def event_kind(name: str) -> int:
    """``"entered"`` -> ``JOB_EVENT_ENTERED``."""
    return epb.JobEventKind.Value(f"JOB_EVENT_{name.upper()}")


def progress_of(kind: int, stage: str, pipeline: Pipeline = PIPELINE, *, enrichment: bool = False) -> int:
    """Monotone progress within one run: 0 queued, 10*(i+1) entered stage i, +5 finished, 1000 ended;
    a preview's "searchable" is 100 and its `enrichment` pass counts on from there (100 + 10*(i+1) ...)."""
    if kind in (epb.JOB_EVENT_DONE, epb.JOB_EVENT_FAILED, epb.JOB_EVENT_CANCELLED):
        return PROGRESS_DONE
    if kind == epb.JOB_EVENT_SEARCHABLE:
        return PROGRESS_SEARCHABLE
    if kind in (epb.JOB_EVENT_QUEUED, epb.JOB_EVENT_REPLAYED) or not stage:
        return 0
    base = 10 * (pipeline.position(stage) + 1) + (PROGRESS_SEARCHABLE if enrichment else 0)
    return base + 5 if kind == epb.JOB_EVENT_FINISHED else base


def build_report(envelope: epb.Envelope, item: ppb.WorkItem, *, error: str | None = None,
                 pipeline: Pipeline = PIPELINE) -> IngestReport:
    report = IngestReport(file=envelope.file or item.document.file_name)
    if error is not None:
        report.status, report.error = "error", error
    order = {s.name: i for i, s in enumerate(pipeline)}
    for timing in sorted(item.timings, key=lambda t: order.get(t.stage, len(order))):
        report.seconds[timing.stage] = round(timing.seconds, 3)
    started = envelope.created_at_ms or now_ms()
    report.seconds["total"] = round(max(0.0, time.time() - started / 1000), 3)
    fill_report(report, item)
    return report


def transition(base: epb.Job | None, envelope: epb.Envelope, kind: epb.JobEventKind, *, stage: str = "",
               item: ppb.WorkItem | None = None, report: IngestReport | None = None, reason: str = "",
               trace_id: str = "", pipeline: Pipeline = PIPELINE) -> epb.Job:
    """The complete snapshot of the envelope's job after event `kind` at `stage` (`base`: the last one known)."""
    job = epb.Job()
    if base is not None:
        job.CopyFrom(base)
    job.job_id, job.tenant, job.doc_id = envelope.job_id, envelope.tenant, envelope.doc_id
    job.file = envelope.file or job.file
    job.plan = envelope.plan or job.plan
    job.priority, job.submitted_at_ms, job.replay = envelope.priority, envelope.created_at_ms, envelope.replay
    job.attempt = envelope.attempt
    job.state, job.event, job.stage = _STATE[kind], kind, stage
    # a preview's enrichment pass: the item asked for a preview and is past its FAST pass (the
    # front door, which plans the FAST pass, never runs in the enrichment pass)
    enrichment = (item is not None and item.plan.preview and not item.plan.enrich_tier
                  and stage != pipeline.front_door.name)
    job.progress = progress_of(kind, stage, pipeline, enrichment=enrichment)
    job.updated_at_ms = now_ms()
    if kind == epb.JOB_EVENT_SEARCHABLE:
        job.searchable_at_ms = job.updated_at_ms
    if kind == epb.JOB_EVENT_DONE:   # persisted at its final tier (searchable then too, without a preview)
        job.enriched_at_ms = job.updated_at_ms
        job.searchable_at_ms = job.searchable_at_ms or job.updated_at_ms
    job.tier = envelope.tier
    if trace_id:
        job.trace_id = trace_id
    if kind in (epb.JOB_EVENT_QUEUED, epb.JOB_EVENT_REPLAYED):   # a new run starts clean
        job.error = job.reason = job.report_json = ""
    if item is not None:
        job.file_name = item.document.file_name or job.file_name
        if item.plan.tier:
            job.tier = item.plan.tier
        del job.timings[:]
        job.timings.extend(item.timings)
    if report is not None:
        job.report_json = json.dumps(report.as_dict(), ensure_ascii=False)
        job.error = report.error or ""
        del job.warnings[:]
        job.warnings.extend(report.warnings)
        for name in _COUNTS:
            job.counts[name] = getattr(report, name)
        if report.doc_id:
            job.doc_id = report.doc_id
        job.language, job.tier_reason, job.vision_slides = report.language, report.tier_reason, report.vision_slides
    if reason:
        job.reason = reason
    return job


def report_from_job(job: epb.Job) -> IngestReport:
    """The IngestReport of a finished job (for the human output of `osmose submit --wait`)."""
    data = json.loads(job.report_json) if job.report_json else {}
    report = IngestReport(file=data.get("file") or job.file or job.file_name)
    for key, value in data.items():
        if hasattr(report, key):
            setattr(report, key, value)
    if not job.report_json:
        report.status = "ok" if job.state == epb.JOB_STATE_SUCCEEDED else "error"
        report.error = job.error or ("cancelled" if job.state == epb.JOB_STATE_CANCELLED else None)
    report.language, report.tier_reason, report.vision_slides = job.language, job.tier_reason, job.vision_slides
    return report


#: the counts an erasure job reports (the DeleteResponse's)
ERASURE_COUNTS = ("documents", "chunks", "cache_entries", "blobs")


def erasure_job(*, job_id: str, action: str, tenant: str, doc_id: str = "", started_ms: int,
                response: spb.DeleteResponse | None = None, error: BaseException | None = None) -> epb.Job:
    """The one snapshot of an erasure (DeleteDocument/DeleteTenant run synchronously): succeeded
    with the counts removed, or failed with the reason (then erasing again finishes the job)."""
    job = epb.Job(job_id=job_id, tenant=tenant, doc_id=doc_id, action=action, stage="erasure",
                  submitted_at_ms=started_ms, updated_at_ms=now_ms(), progress=PROGRESS_DONE)
    if error is None and response is not None:
        job.state, job.event = epb.JOB_STATE_SUCCEEDED, epb.JOB_EVENT_DONE
        for name in ERASURE_COUNTS:
            job.counts[name] = int(getattr(response, name))
    else:
        job.state, job.event = epb.JOB_STATE_FAILED, epb.JOB_EVENT_FAILED
        job.reason, job.error = describe_error(error) if error is not None else ("failed", "failed: no result")
    return job


class JobLedger:
    """Holds the job table and publishes every transition of every job this process touches."""

    def __init__(self, *, table: JobTable, publish: Publish, pipeline: Pipeline = PIPELINE) -> None:
        self.table = table
        self.pipeline = pipeline
        self._publish = publish

    # -- reads ------------------------------------------------------------------------------------

    def get(self, job_id: str) -> epb.Job | None:
        return self.table.get(job_id)

    def cancelled(self, envelope: epb.Envelope) -> bool:
        """The envelope's job was cancelled during this run (or a later one)."""
        job = self.table.get(envelope.job_id)
        return job is not None and job.state == epb.JOB_STATE_CANCELLED and job.replay >= envelope.replay

    def ended(self, envelope: epb.Envelope) -> bool:
        """The envelope's run already ended (a redelivery after the end, or a cancelled job)."""
        job = self.table.get(envelope.job_id)
        return job is not None and is_terminal(job) and job.replay >= envelope.replay

    # -- transitions ------------------------------------------------------------------------------

    async def _record(self, job: epb.Job, trace: TraceContext | None) -> epb.Job:
        """Publish a snapshot unless readers would ignore it (older than what is known), then apply it
        here at once (this process sees its own writes before the topic's tail brings them back).
        Counted once, here, for the document SLI and completeness (osmose.telemetry.documents)."""
        if self.table.accepts(job):
            previous = self.table.get(job.job_id)
            await self._publish(job, trace)
            self.table.apply(job)
            observe_transition(job, previous)
        return self.table.get(job.job_id) or job

    async def erasure(self, job: epb.Job) -> None:
        """Publish an erasure's snapshot (:func:`erasure_job`). Not a document's ingestion: it is not
        counted in the document SLI."""
        await self._publish(job, None)
        self.table.apply(job)

    async def publish_marker(self, job: epb.Job) -> None:
        """Publish an overdue marker (osmose.telemetry.overdue) as is, without applying it here:
        markers take effect in the topic's order, when the tail brings them back."""
        await self._publish(job, None)

    def _next(self, envelope: epb.Envelope, kind: epb.JobEventKind, **fields: object) -> epb.Job:
        return transition(self.table.get(envelope.job_id), envelope, kind, pipeline=self.pipeline,
                          **fields)  # type: ignore[arg-type]

    async def queued(self, envelope: epb.Envelope, item: ppb.WorkItem, trace: TraceContext) -> epb.Job:
        return await self._record(transition(None, envelope, epb.JOB_EVENT_QUEUED, item=item,
                                             trace_id=trace.trace_id, pipeline=self.pipeline), trace)

    def deliveries(self, envelope: epb.Envelope, stage: str) -> int:
        """How many times `stage` has taken this run's message before (from the job topic, so a
        process killed while holding it counts: the persisted delivery count)."""
        job = self.table.get(envelope.job_id)
        if job is None or job.replay != envelope.replay or job.stage != stage or job.event not in (
                epb.JOB_EVENT_ENTERED, epb.JOB_EVENT_RETRYING):
            return 0
        return job.deliveries

    async def entered(self, envelope: epb.Envelope, stage: str, item: ppb.WorkItem, trace: TraceContext, *,
                      deliveries: int = 1) -> None:
        job = self._next(envelope, epb.JOB_EVENT_ENTERED, stage=stage, item=item, trace_id=trace.trace_id)
        job.deliveries = deliveries
        await self._record(job, trace)

    async def retrying(self, envelope: epb.Envelope, stage: str, item: ppb.WorkItem, exc: BaseException,
                       trace: TraceContext) -> None:
        reason, text = describe_error(exc)
        job = self._next(envelope, epb.JOB_EVENT_RETRYING, stage=stage, item=item, reason=reason)
        job.error = text
        await self._record(job, trace)

    async def finished(self, envelope: epb.Envelope, stage: str, item: ppb.WorkItem, trace: TraceContext) -> None:
        await self._record(self._next(envelope, epb.JOB_EVENT_FINISHED, stage=stage, item=item), trace)

    async def searchable(self, envelope: epb.Envelope, stage: str, item: ppb.WorkItem, trace: TraceContext) -> None:
        """A preview's FAST pass is persisted: the document is searchable; its enrichment is queued next."""
        await self._record(self._next(envelope, epb.JOB_EVENT_SEARCHABLE, stage=stage, item=item), trace)

    async def done(self, envelope: epb.Envelope, stage: str, item: ppb.WorkItem, trace: TraceContext) -> None:
        report = build_report(envelope, item, pipeline=self.pipeline)
        await self._record(self._next(envelope, epb.JOB_EVENT_DONE, stage=stage, item=item, report=report), trace)

    async def failed(self, envelope: epb.Envelope, stage: str, item: ppb.WorkItem, exc: BaseException, *,
                     attempts: int, retryable: bool, trace: TraceContext) -> None:
        reason, text = describe_error(exc)
        if retryable:
            text = f"{text} (gave up after {attempts} attempts at {stage})"
        report = build_report(envelope, item, error=text, pipeline=self.pipeline)
        await self._record(self._next(envelope, epb.JOB_EVENT_FAILED, stage=stage, item=item, report=report,
                                      reason=reason), trace)

    async def cancel(self, job: epb.Job, trace: TraceContext) -> epb.Job:
        """Cancel a job that has not ended (the caller checked); stages stop forwarding it."""
        cancelled = epb.Job()
        cancelled.CopyFrom(job)
        cancelled.state, cancelled.event, cancelled.progress = (epb.JOB_STATE_CANCELLED, epb.JOB_EVENT_CANCELLED,
                                                                PROGRESS_DONE)
        cancelled.updated_at_ms = now_ms()
        report = IngestReport(file=job.file or job.file_name, status="error", error="cancelled: cancelled by request")
        report.seconds["total"] = round(max(0.0, (now_ms() - job.submitted_at_ms) / 1000), 3)
        cancelled.report_json = json.dumps(report.as_dict(), ensure_ascii=False)
        cancelled.error, cancelled.reason = report.error or "", "cancelled"
        return await self._record(cancelled, trace)
