"""The document-level SLI and completeness counters, fed by the job ledger.

:func:`observe_transition` is called by :class:`osmose.hosts.job_ledger.JobLedger` for every
snapshot it publishes *and* the job table accepts (a redelivered message that changes nothing
is not counted twice). Counters reconcile per tenant class and lane::

    accepted + replayed = persisted + failed + cancelled + in flight

A replay (`osmose dlq replay`) starts a new run of a job that already ended (failed), so it
ends again. The CLI that re-drives it is a short-lived process with no /metrics; the replay is
counted instead by the ledger that records the *first* snapshot of the new run: the stage
that takes the replayed message (or the front door, if the job is cancelled before that) --
a snapshot of run ``replay`` recorded on top of the ``replayed`` one (or of an older run, when
its table has not read the ``replayed`` snapshot yet). Later snapshots of the run, and a
redelivery of the replayed message (its table then holds the run's ``entered``), are not.

The SLI histogram ``osmose_document_e2e_seconds`` is observed once per ended document, from
the envelope's ``created_at_ms`` (accepted) to the ledger's "done" (visible in both stores:
the writer stage ends the job only after both stores acknowledged) or "failed"; the outcome
is ``ok``, ``degraded`` (done, but some model work took a fallback or failed) or ``failed``.
The exemplar is the document's trace id.
"""

from __future__ import annotations

import json
import logging

from osmose.bus.envelope import now_ms
from osmose.pipeline import TIER_NAMES
from osmose.telemetry import metrics
from osmose.telemetry.labels import LANES, OTHER, lane_of, tenant_class_of, tier_label
from osmose.telemetry.slo.spec import load_spec
from osmose.v1 import envelope_pb2 as epb

__all__ = ["observe_transition", "outcome_of", "starts_replayed_run"]

logger = logging.getLogger(__name__)


def _declare() -> None:
    """Zero series for every tenant class and lane (and tier): a rate or an alert over a class that
    had no document yet finds a 0, not an absence (the bounded sets make this a few dozen series)."""
    for tenant_class in (*load_spec().tenant_classes, OTHER):
        for lane in LANES:
            metrics.DOCUMENTS_ACCEPTED.labels(tenant_class, lane)
            metrics.DOCUMENTS_CANCELLED.labels(tenant_class, lane)
            metrics.DOCUMENTS_REPLAYED.labels(tenant_class, lane)
            for tier in TIER_NAMES.values():
                metrics.DOCUMENTS_PERSISTED.labels(tier, tenant_class, lane)


_declare()


def outcome_of(job: epb.Job) -> str:
    """``ok``, ``degraded`` or ``failed`` for an ended job (not cancelled)."""
    if job.state == epb.JOB_STATE_FAILED:
        return "failed"
    try:
        model = json.loads(job.report_json).get("model", {}) if job.report_json else {}
    except ValueError:
        model = {}
    return "degraded" if model.get("fallbacks") or model.get("failures") else "ok"


def observe_transition(job: epb.Job, previous: epb.Job | None = None) -> None:
    """Count one published job snapshot; `previous` is what the job table held before it
    (see the module docstring)."""
    try:
        _observe(job, previous)
    except Exception:  # metrics never break the pipeline
        logger.exception("recording metrics of job %s failed", job.job_id)


def starts_replayed_run(job: epb.Job, previous: epb.Job | None) -> bool:
    """`job` is the first snapshot a ledger records of a run re-driven by `osmose dlq replay`."""
    if not job.replay or job.event in (epb.JOB_EVENT_QUEUED, epb.JOB_EVENT_REPLAYED):
        return False
    return (previous is None or previous.replay < job.replay
            or (previous.replay == job.replay and previous.event == epb.JOB_EVENT_REPLAYED))


def _observe(job: epb.Job, previous: epb.Job | None) -> None:
    tenant_class, lane = tenant_class_of(job), lane_of(job.priority)
    if starts_replayed_run(job, previous):
        metrics.DOCUMENTS_REPLAYED.labels(tenant_class, lane).inc()
    if job.event in (epb.JOB_EVENT_QUEUED,):
        metrics.DOCUMENTS_ACCEPTED.labels(tenant_class, lane).inc()
        return
    if job.event == epb.JOB_EVENT_CANCELLED:
        metrics.DOCUMENTS_CANCELLED.labels(tenant_class, lane).inc()
        return
    if job.event not in (epb.JOB_EVENT_DONE, epb.JOB_EVENT_FAILED):
        return
    tier = tier_label(job.tier)
    if job.event == epb.JOB_EVENT_DONE:
        metrics.DOCUMENTS_PERSISTED.labels(tier, tenant_class, lane).inc()
    else:
        metrics.DOCUMENTS_FAILED.labels(tier, tenant_class, lane, job.stage or "unknown").inc()
    if job.submitted_at_ms:
        # the snapshot's own time: the same arithmetic as "late" (osmose.telemetry.overdue.is_late)
        seconds = max(0.0, ((job.updated_at_ms or now_ms()) - job.submitted_at_ms) / 1000)
        exemplar = {"trace_id": job.trace_id} if job.trace_id else None
        metrics.DOCUMENT_E2E.labels(tier, tenant_class, lane, outcome_of(job)).observe(seconds, exemplar=exemplar)
