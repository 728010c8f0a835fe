"""Plan quotas at the front door: documents per day and concurrent jobs, per tenant.

The counts come from the job snapshots every front-door replica reads from the compacted
jobs topic (:class:`osmose.bus.jobs.JobTable` feeds :meth:`QuotaBook.observe`), so they
are cluster-wide, not per replica. They are eventually consistent: two replicas
admitting the same tenant's submissions in the same instant can each let one more
through; the overshoot is bounded by the number of replicas, which is what a quota on
an onboarding backlog needs (it is a fairness and cost bound, not a billing meter).

* **concurrent jobs**: jobs of the tenant that are queued or running (not terminal);
* **documents per day**: jobs the tenant submitted since 00:00 UTC (replays and
  retried Submits of the same job are one job), whatever became of them.

A refused submission is ``QuotaExceededError`` (gRPC ``RESOURCE_EXHAUSTED``), its
message naming the quota, the plan's limit and when the daily one resets.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from osmose.security.entitlements import Plan
from osmose.security.exceptions import SecurityError
from osmose.v1 import envelope_pb2 as epb

__all__ = ["QuotaBook", "QuotaExceededError"]

_TERMINAL = frozenset({epb.JOB_STATE_SUCCEEDED, epb.JOB_STATE_FAILED, epb.JOB_STATE_CANCELLED})
_DAY_MS = 86_400_000


class QuotaExceededError(SecurityError):
    """The tenant's plan allows no more of this now (gRPC RESOURCE_EXHAUSTED)."""


def _day(ms: int) -> int:
    return ms // _DAY_MS


class QuotaBook:
    """What each tenant has in flight and has submitted today. Thread-safe (the job tail's
    thread observes, the event loop checks)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, set[str]] = defaultdict(set)
        #: (tenant, UTC day) -> job ids submitted that day; only today's and yesterday's are kept
        self._daily: dict[tuple[str, int], set[str]] = defaultdict(set)
        self._today = 0

    def observe(self, job: epb.Job) -> None:
        """Account one job snapshot (any event, in any order; repeating one changes nothing)."""
        if not job.tenant or not job.job_id:
            return
        with self._lock:
            if job.state in _TERMINAL:
                self._open[job.tenant].discard(job.job_id)
            else:
                self._open[job.tenant].add(job.job_id)
            if job.submitted_at_ms:
                day = _day(job.submitted_at_ms)
                if day >= self._today - 1:
                    self._daily[(job.tenant, day)].add(job.job_id)
                self._prune(day)

    def _prune(self, day: int) -> None:
        if day <= self._today:
            return
        self._today = day
        for key in [k for k in self._daily if k[1] < day - 1]:
            del self._daily[key]

    def usage(self, tenant: str, *, now_ms: int | None = None) -> tuple[int, int]:
        """(jobs in flight, documents submitted today) for `tenant`."""
        day = _day(int(time.time() * 1000) if now_ms is None else now_ms)
        with self._lock:
            return len(self._open.get(tenant, ())), len(self._daily.get((tenant, day), ()))

    def check(self, tenant: str, plan: Plan, *, now_ms: int | None = None) -> None:
        """Raises :class:`QuotaExceededError` when one more job would exceed the plan's quotas."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        running, today = self.usage(tenant, now_ms=now_ms)
        if running >= plan.concurrent_jobs:
            raise QuotaExceededError(
                f"quota-concurrent-jobs: {running} jobs of tenant {tenant} are queued or running; the "
                f"{plan.name} plan allows {plan.concurrent_jobs} at once — submit again when some have finished")
        if today >= plan.documents_per_day:
            midnight = datetime.fromtimestamp((_day(now_ms) + 1) * _DAY_MS / 1000, tz=UTC)
            raise QuotaExceededError(
                f"quota-documents-per-day: tenant {tenant} submitted {today} documents today; the {plan.name} "
                f"plan allows {plan.documents_per_day} per day — the count resets at "
                f"{midnight:%Y-%m-%d %H:%M} UTC (in {_until(midnight, now_ms)})")


def _until(moment: datetime, now_ms: int) -> str:
    left = moment - datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    minutes = max(1, int(left / timedelta(minutes=1)))
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
