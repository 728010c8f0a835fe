"""Job snapshots and final reports of the service host.

The final report is built with :func:`osmose.hosts.report.fill_report`, exactly as
the in-process host builds it, and travels as JSON in the job's ``report_json``:
``osmose submit --wait --json`` prints that string, so its line is the one
``osmose ingest --json`` prints for the same file (same keys, order and values;
``seconds`` holds the stages' own times plus ``total``, which here is the time
from Submit to the end, queueing included).
"""

from __future__ import annotations

import json
import time

from osmose.bus.envelope import now_ms
from osmose.bus.jobs import progress_of
from osmose.errors import ConfigurationError, DocumentError, OsmoseError, RetryableError
from osmose.hosts.report import IngestReport, fill_report
from osmose.pipeline import PIPELINE, Pipeline
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb

__all__ = ["build_report", "describe_error", "job_snapshot", "report_from_job"]

_STATE_OF_EVENT = {
    "queued": epb.JOB_STATE_QUEUED, "replayed": epb.JOB_STATE_QUEUED, "entered": epb.JOB_STATE_RUNNING,
    "finished": epb.JOB_STATE_RUNNING, "retrying": epb.JOB_STATE_RUNNING, "done": epb.JOB_STATE_SUCCEEDED,
    "failed": epb.JOB_STATE_FAILED, "cancelled": epb.JOB_STATE_CANCELLED,
}
_COUNTS = ("slides", "segments", "concepts", "relations", "chunks", "embedded")


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(reason code, report text) of an error, worded as the in-process host words it."""
    if isinstance(exc, DocumentError):
        return exc.reason, str(exc)
    if isinstance(exc, ConfigurationError):
        return "configuration", f"configuration: {exc}"
    if isinstance(exc, RetryableError):
        return "retryable", f"retryable: {exc}"
    if isinstance(exc, OsmoseError):
        return getattr(exc, "reason", "failed"), f"failed: {exc}"
    return "internal", f"internal error ({type(exc).__name__}): {exc}"


def build_report(envelope: epb.Envelope, item: ppb.WorkItem, *, error: str | None = None,
                 pipeline: Pipeline = PIPELINE) -> IngestReport:
    report = IngestReport(file=envelope.file or item.document.file_name)
    if error is not None:
        report.status, report.error = "error", error
    order = {s.name: i for i, s in enumerate(pipeline)}
    for timing in sorted(item.timings, key=lambda t: order.get(t.stage, 99)):
        report.seconds[timing.stage] = round(timing.seconds, 3)
    started = envelope.created_at_ms or now_ms()
    report.seconds["total"] = round(max(0.0, time.time() - started / 1000), 3)
    fill_report(report, item)
    return report


def job_snapshot(envelope: epb.Envelope, *, event: str, stage: str, item: ppb.WorkItem | None = None,
                 report: IngestReport | None = None, reason: str = "", trace_id: str = "",
                 base: epb.Job | None = None, pipeline: Pipeline = PIPELINE) -> epb.Job:
    """A complete snapshot of the job the envelope belongs to, after `event` at `stage`."""
    job = epb.Job()
    if base is not None:
        job.CopyFrom(base)
    job.job_id, job.tenant, job.doc_id = envelope.job_id, envelope.tenant, envelope.doc_id
    job.file = envelope.file
    job.priority, job.submitted_at_ms, job.replay = envelope.priority, envelope.created_at_ms, envelope.replay
    job.attempt = envelope.attempt
    job.state = _STATE_OF_EVENT[event]
    job.event, job.stage = event, stage
    job.progress = progress_of(stage, event, pipeline)
    job.updated_at_ms = now_ms()
    job.tier = envelope.tier
    if trace_id:
        job.trace_id = trace_id
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
