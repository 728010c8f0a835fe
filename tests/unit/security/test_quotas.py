"""Plan quotas: concurrent jobs and documents per UTC day, counted from job snapshots in any order."""

from __future__ import annotations

import dataclasses

import pytest

from osmose.security.entitlements import PLANS
from osmose.security.quotas import QuotaBook, QuotaExceededError
from osmose.v1 import envelope_pb2 as epb

DAY_MS = 86_400_000
NOON = 20_000 * DAY_MS + DAY_MS // 2          # some day, 12:00 UTC
PLAN = dataclasses.replace(PLANS["starter"], concurrent_jobs=2, documents_per_day=3)


def job(job_id: str, state: int = epb.JOB_STATE_QUEUED, *, tenant: str = "acme", at: int = NOON) -> epb.Job:
    return epb.Job(job_id=job_id, tenant=tenant, state=state, submitted_at_ms=at)  # type: ignore[arg-type]


def test_concurrent_jobs_are_the_tenants_unfinished_ones() -> None:
    book = QuotaBook()
    book.observe(job("a"))
    book.observe(job("b", epb.JOB_STATE_RUNNING))
    book.observe(job("x", tenant="other"))
    with pytest.raises(QuotaExceededError, match="quota-concurrent-jobs: 2 jobs of tenant acme .* allows 2"):
        book.check("acme", PLAN, now_ms=NOON)
    book.check("other", PLAN, now_ms=NOON)                        # another tenant is not counted
    book.observe(job("a", epb.JOB_STATE_SUCCEEDED))
    assert book.usage("acme", now_ms=NOON)[0] == 1    # (fed only snapshots JobTable.apply accepted, in order)
    book.check("acme", PLAN, now_ms=NOON)


def test_documents_per_day_count_each_job_once_and_reset_at_midnight_utc() -> None:
    book = QuotaBook()
    for n in range(3):
        book.observe(job(f"d{n}"))
        book.observe(job(f"d{n}", epb.JOB_STATE_RUNNING))          # more events of one job: one document
        book.observe(job(f"d{n}", epb.JOB_STATE_SUCCEEDED))
    assert book.usage("acme", now_ms=NOON) == (0, 3)
    with pytest.raises(QuotaExceededError, match=r"quota-documents-per-day: .* 3 .* allows 3 per day .* "
                                                 r"resets at .* 00:00 UTC \(in 12 h 0 min\)"):
        book.check("acme", PLAN, now_ms=NOON)
    tomorrow = NOON + DAY_MS
    book.check("acme", PLAN, now_ms=tomorrow)
    book.observe(job("e", at=tomorrow))
    assert book.usage("acme", now_ms=tomorrow) == (1, 1)
    assert not any(day < 20_000 for _, day in book._daily)        # old days are dropped


def test_the_shipped_plans_have_room_for_an_onboarding_burst() -> None:
    assert PLANS["starter"].documents_per_day >= 500 and PLANS["enterprise"].concurrent_jobs >= 100
