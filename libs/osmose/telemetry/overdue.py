"""Late documents, counted once each, so a stuck backlog burns the freshness budget before it drains.

``osmose_documents_late_total{tier, tenant_class, lane}`` counts every document that missed its
tier's objective (``spec.yaml``) exactly once, at the first moment anyone knows it:

* **in flight**: its age passed the objective (plus :data:`GRACE_S`) while it had not ended --
  queued, waiting in a topic whose consumer is stuck, or held by a stage;
* **at the end**: it ended (done or failed) past the objective without having been seen in
  flight past it (it ended between two scans).

The freshness SLO is then ``good = ended within the objective (not failed)`` and
``bad = failed within the objective + late``: each document is one event, good or bad, and a
document that is late in flight and later completes (late) is not counted again.

**Who counts, and why there.** Only the front door has the whole job table (every process
rebuilds it from the compacted job topic, but only the front door serves it), and a waiting
document has no stage holding it: nobody else could notice a backlog that does not move. The
stages could count the documents they touch, but a stuck consumer touches none.

**Once, across stages, replicas and restarts.** The count is deduplicated by the job state
that already travels on the compacted job topic, not by memory in a process:

1. :meth:`OverdueCounter.due` builds a *marker*: a copy of the job's snapshot with
   ``overdue_at_ms`` and ``overdue_by`` (this process's random token) set;
2. the ledger publishes it to the job topic (keyed by job id, so all snapshots of a job are
   in one partition, in one order) and does *not* apply it locally;
3. every table applies the topic in log order (:meth:`osmose.bus.jobs.JobTable.apply`): the
   first marker of a job sets its flag, later markers (another front-door replica's, a
   re-publication) find it set and change nothing; the flag then sticks to every later
   snapshot (stages copy it, the table keeps it even on a snapshot written before the flag);
4. the process whose token is in the flag that was set first counts it -- and only that
   process, when its table applies it (:meth:`OverdueCounter._flagged`).

A restarted front door has a new token: the flags it reads while rebuilding were counted by
their authors, and the documents they mark are not marked again. A marker that loses the race
with the stage's next snapshot (lower progress) is ignored by everyone and made again from
the newer snapshot at the next scan. What can still go wrong is bounded and one-sided: a
process that dies between publishing a marker and reading it back never counts it (one late
document uncounted), and a document that ends within :data:`GRACE_S` of its objective on a
writer whose clock is behind the front door's by more than that may count good and late.

A replayed document (``osmose dlq replay``) keeps its original acceptance time and its flag:
a document already counted late is not counted again; one that failed within its objective
(bad once, as failed) and is late after its replay counts late too.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from osmose.bus.jobs import JobTable, is_terminal
from osmose.pipeline import TIER_NAMES
from osmose.telemetry import metrics
from osmose.telemetry.labels import LANES, OTHER, lane_of, tenant_class_of, tier_label
from osmose.telemetry.slo.spec import load_spec
from osmose.v1 import envelope_pb2 as epb

__all__ = ["END_HORIZON_S", "GRACE_S", "SCAN_INTERVAL_S", "OverdueCounter", "is_late"]

logger = logging.getLogger(__name__)

#: seconds past the objective before an unfinished document is marked: more than the job
#: topic's lag, so a document that ends just within its objective is not also marked late
GRACE_S = 5.0
#: how often the front door looks for overdue documents
SCAN_INTERVAL_S = 5.0
#: ended documents are marked late after the fact only if they ended this recently (a front
#: door starting on a day of history does not burn a day of budget at once)
END_HORIZON_S = 3600.0

_ENDED_COUNTED = (epb.JOB_EVENT_DONE, epb.JOB_EVENT_FAILED)   # cancelled documents are no SLI event


def _declare() -> None:
    for tenant_class in (*load_spec().tenant_classes, OTHER):
        for lane in LANES:
            for tier in TIER_NAMES.values():
                metrics.DOCUMENTS_LATE.labels(tier, tenant_class, lane)


_declare()


def is_late(job: epb.Job) -> bool:
    """An ended job (done or failed) that ended past its tier's objective; the same arithmetic as
    the SLI histogram (osmose.telemetry.documents), so late and "within the objective" never overlap."""
    objective = load_spec().objective_seconds(tier_label(job.tier))
    if objective is None or not job.submitted_at_ms or not job.updated_at_ms:
        return False
    return (job.updated_at_ms - job.submitted_at_ms) / 1000 > objective


Publish = Callable[[epb.Job], Awaitable[None]]


class OverdueCounter:
    """Marks late documents on the job topic and counts the marks this process made first."""

    def __init__(self, table: JobTable, *, token: str | None = None, grace_s: float = GRACE_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.token = token or uuid.uuid4().hex
        self.grace_s = grace_s
        self._clock = clock
        self._ended: set[str] = set()    # jobs that ended late, unflagged when last seen: mark them
        table.overdue_observers.append(self._flagged)
        table.observers.append(self._observe)

    def close(self) -> None:
        for hooks, hook in ((self.table.overdue_observers, self._flagged), (self.table.observers, self._observe)):
            if hook in hooks:
                hooks.remove(hook)

    # -- reading the table (called by the table, in log order) ---------------------------------

    def _observe(self, job: epb.Job) -> None:
        if job.event in _ENDED_COUNTED and not job.overdue_at_ms and is_late(job):
            self._ended.add(job.job_id)

    def _flagged(self, job: epb.Job) -> None:
        """The table set a job's flag for the first time: count it if this process made the mark."""
        if job.overdue_by != self.token:
            return
        metrics.DOCUMENTS_LATE.labels(tier_label(job.tier), tenant_class_of(job), lane_of(job.priority)).inc()
        logger.info("job %s is late (%s)", job.job_id, "ended" if is_terminal(job) else f"at {job.stage or 'queue'}")

    # -- marking ----------------------------------------------------------------------------------

    def _mark(self, job: epb.Job, now_ms: int) -> epb.Job:
        marker = epb.Job()
        marker.CopyFrom(job)
        marker.overdue_at_ms, marker.overdue_by = now_ms, self.token
        return marker

    def due(self) -> list[epb.Job]:
        """Markers (and re-publications of flags a later snapshot dropped) to publish now."""
        spec = load_spec()
        now = self._clock()
        now_ms = int(now * 1000)
        out: list[epb.Job] = []
        for job in self.table.open_jobs():
            objective = spec.objective_seconds(tier_label(job.tier))
            if (objective is not None and not job.overdue_at_ms and job.submitted_at_ms
                    and now - job.submitted_at_ms / 1000 > objective + self.grace_s):
                out.append(self._mark(job, now_ms))
        ended, self._ended = self._ended, set()
        for job_id in sorted(ended):
            ended_job = self.table.get(job_id)
            if (ended_job is not None and not ended_job.overdue_at_ms and ended_job.event in _ENDED_COUNTED
                    and is_late(ended_job) and ended_job.updated_at_ms / 1000 > now - END_HORIZON_S):
                out.append(self._mark(ended_job, now_ms))
        unflagged, self.table.unflagged = self.table.unflagged, set()
        for job_id in sorted(unflagged):
            flagged = self.table.get(job_id)
            if flagged is not None and flagged.overdue_at_ms:
                again = epb.Job()
                again.CopyFrom(flagged)
                out.append(again)
        return out

    async def run(self, publish: Publish, *, interval_s: float = SCAN_INTERVAL_S) -> None:
        """Scan and publish until cancelled. A failed publish is retried at the next scan (the job
        is still unflagged, so it is marked again)."""
        while True:
            markers = self.due()
            for n, marker in enumerate(markers):
                try:
                    await publish(marker)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    logger.warning("publishing the overdue mark of job %s failed: %s", marker.job_id, exc)
                    for rest in markers[n:]:    # due() checks each again
                        self._ended.add(rest.job_id)
                        self.table.unflagged.add(rest.job_id)
                    break
            await asyncio.sleep(interval_s)
