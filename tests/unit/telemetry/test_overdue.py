"""Late documents are counted once each (osmose.telemetry.overdue): in flight when a backlog is
stuck, at the end when they ended late unseen; never twice across front-door replicas, stages,
races with the stage's next snapshot, restarts, or a late completion after the mark.

The job topic is modelled as a list in log order that every table applies in that order, as
the job tail does (markers are never applied locally by their writer)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from osmose.bus.envelope import now_ms
from osmose.bus.jobs import JobTable
from osmose.bus.trace import TraceContext
from osmose.hosts.job_ledger import JobLedger, transition
from osmose.telemetry.overdue import GRACE_S, OverdueCounter, is_late
from osmose.telemetry.slo.spec import load_spec
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb

pytestmark = pytest.mark.anyio

FAST = load_spec().tiers["fast"].objective_seconds
LABELS = {"tier": "fast", "tenant_class": "enterprise", "lane": "bulk"}


def _late() -> float:
    return REGISTRY.get_sample_value("osmose_documents_late_total", LABELS) or 0.0


def _envelope(job_id: str, *, age_s: float) -> epb.Envelope:
    return epb.Envelope(job_id=job_id, doc_id="d" * 32, tenant="acme", tier=pb.TIER_FAST, stage="triage",
                        priority=epb.PRIORITY_BULK, created_at_ms=now_ms() - int(age_s * 1000), file="deck.pptx",
                        plan="enterprise")


def _item(job_id: str) -> ppb.WorkItem:
    item = ppb.WorkItem(job_id=job_id, tenant="acme")
    item.plan.tier = pb.TIER_FAST
    return item


class Topic:
    """The job topic of one test: an append-only log every table reads in order."""

    def __init__(self) -> None:
        self.log: list[epb.Job] = []
        self.tables: list[JobTable] = []

    def table(self) -> JobTable:
        table = JobTable()
        for job in self.log:
            table.apply(job)
        self.tables.append(table)
        return table

    def append(self, *jobs: epb.Job) -> None:
        for job in jobs:
            self.log.append(job)
            for table in self.tables:
                table.apply(job)

    def compacted(self) -> list[epb.Job]:
        latest: dict[str, epb.Job] = {}
        for job in self.log:
            latest[job.job_id] = job
        return list(latest.values())


def _queued(topic: Topic, job_id: str, *, age_s: float) -> epb.Envelope:
    envelope = _envelope(job_id, age_s=age_s)
    topic.append(transition(None, envelope, epb.JOB_EVENT_QUEUED, item=_item(job_id)))
    return envelope


def test_a_stuck_backlog_is_counted_late_once_across_front_door_replicas() -> None:
    topic = Topic()
    before = _late()
    _queued(topic, "stuck", age_s=FAST + GRACE_S + 1)     # nothing ever takes it
    _queued(topic, "young", age_s=1)
    first, second = OverdueCounter(topic.table()), OverdueCounter(topic.table())
    marks = first.due() + second.due()                    # both replicas notice the same document
    assert [m.job_id for m in marks] == ["stuck", "stuck"]
    topic.append(*marks)
    assert _late() - before == 1                          # the first mark in the log counts, once
    assert all(t.get("stuck").overdue_at_ms and t.get("stuck").overdue_by == first.token for t in topic.tables)
    assert first.due() == [] and second.due() == []       # flagged: never marked again
    assert not topic.tables[0].get("young").overdue_at_ms


def test_within_the_grace_nothing_is_marked() -> None:
    topic = Topic()
    _queued(topic, "edge", age_s=FAST + GRACE_S - 2)
    assert OverdueCounter(topic.table()).due() == []


def test_a_document_counted_in_flight_is_not_counted_again_when_it_completes_late() -> None:
    topic = Topic()
    before = _late()
    envelope = _queued(topic, "slow", age_s=FAST + GRACE_S + 1)
    counter = OverdueCounter(topic.table())
    stage = topic.table()            # a stage process's table
    topic.append(*counter.due())
    assert _late() - before == 1
    # the stages copy the flag into every later snapshot (transition starts from the table's)
    entered = transition(stage.get("slow"), envelope, epb.JOB_EVENT_ENTERED, stage="persister", item=_item("slow"))
    done = transition(entered, envelope, epb.JOB_EVENT_DONE, stage="persister", item=_item("slow"))
    assert done.overdue_at_ms and done.overdue_by == counter.token
    topic.append(entered, done)
    assert is_late(done)
    assert counter.due() == []
    assert _late() - before == 1


def test_a_mark_that_loses_the_race_with_the_stage_is_made_again_from_the_newer_snapshot() -> None:
    topic = Topic()
    before = _late()
    envelope = _queued(topic, "race", age_s=FAST + GRACE_S + 1)
    counter = OverdueCounter(topic.table())
    stale = counter.due()
    # the stage entered the document before the mark reached the log: the mark is older, ignored
    topic.append(transition(topic.tables[0].get("race"), envelope, epb.JOB_EVENT_ENTERED, stage="triage",
                            item=_item("race")))
    topic.append(*stale)
    assert _late() - before == 0 and not topic.tables[0].get("race").overdue_at_ms
    again = counter.due()
    assert [m.event for m in again] == [epb.JOB_EVENT_ENTERED]
    topic.append(*again)
    assert _late() - before == 1


def test_a_snapshot_written_before_its_writer_saw_the_flag_keeps_it_and_compaction_cannot_drop_it() -> None:
    topic = Topic()
    before = _late()
    envelope = _queued(topic, "lost", age_s=FAST + GRACE_S + 1)
    stage_view = epb.Job()
    stage_view.CopyFrom(topic.log[-1])     # what a stage's table held: the queued snapshot, no flag
    counter = OverdueCounter(topic.table())
    topic.append(*counter.due())
    # the stage built its snapshot from a table that had not applied the mark yet
    topic.append(transition(stage_view, envelope, epb.JOB_EVENT_ENTERED, stage="triage", item=_item("lost")))
    table = topic.tables[0]
    assert table.get("lost").overdue_at_ms and "lost" in table.unflagged     # the flag sticks here
    again = counter.due()                 # ... and is published again, not counted again
    assert [(m.overdue_by, m.event) for m in again] == [(counter.token, epb.JOB_EVENT_ENTERED)]
    topic.append(*again)
    assert _late() - before == 1 and not table.unflagged
    # a front door restarting after compaction: a new token, a table with the flag, nothing to mark
    rebuilt = JobTable()
    for job in topic.compacted():
        rebuilt.apply(job)
    assert rebuilt.get("lost").overdue_at_ms
    assert OverdueCounter(rebuilt).due() == []
    assert _late() - before == 1


def test_a_document_that_ended_late_between_two_scans_is_counted_once_at_the_end() -> None:
    topic = Topic()
    before = _late()
    first, second = OverdueCounter(topic.table()), OverdueCounter(topic.table())
    envelope = _queued(topic, "quick", age_s=FAST + 1)    # within the grace: not marked in flight
    assert first.due() == []
    done = transition(topic.tables[0].get("quick"), envelope, epb.JOB_EVENT_DONE, stage="persister",
                      item=_item("quick"))
    assert is_late(done)
    topic.append(done)
    marks = first.due() + second.due()
    assert len(marks) == 2
    topic.append(*marks)
    assert _late() - before == 1
    assert first.due() == [] and second.due() == []
    # on time, or cancelled: no event of this counter
    on_time = _queued(topic, "ok", age_s=2)
    topic.append(transition(topic.tables[0].get("ok"), on_time, epb.JOB_EVENT_DONE, stage="persister",
                            item=_item("ok")))
    assert first.due() == []


def test_a_restarted_front_door_does_not_count_what_was_counted() -> None:
    topic = Topic()
    before = _late()
    _queued(topic, "old", age_s=FAST + GRACE_S + 1)
    topic.append(*OverdueCounter(topic.table()).due())
    assert _late() - before == 1
    restarted = OverdueCounter(topic.table())             # rebuilt from the whole log
    assert restarted.due() == []
    assert _late() - before == 1


async def test_the_counter_publishes_through_the_ledger_and_counts_on_the_way_back() -> None:
    topic = Topic()
    before = _late()
    table = topic.table()
    published: list[epb.Job] = []

    async def publish(job: epb.Job, trace: TraceContext | None) -> None:
        published.append(job)
        topic.append(job)     # what the tail brings back

    ledger = JobLedger(table=table, publish=publish)
    await ledger.queued(_envelope("live", age_s=FAST + GRACE_S + 1), _item("live"), TraceContext.new())
    counter = OverdueCounter(table)
    task = asyncio.ensure_future(counter.run(ledger.publish_marker, interval_s=0.01))
    try:
        for _ in range(200):
            if _late() - before >= 1:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        counter.close()
    assert _late() - before == 1
    assert [j.event for j in published] == [epb.JOB_EVENT_QUEUED, epb.JOB_EVENT_QUEUED]
    assert published[-1].overdue_by == counter.token
