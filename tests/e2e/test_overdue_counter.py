"""Late documents counted once on the real broker (osmose.telemetry.overdue): two front doors
(each a job table fed by its own JobTail, as `osmose serve` runs them) both mark a stuck
document; the first mark in the topic's order is counted, by its author, once. A stage snapshot
written without the flag does not lose it, and a front door restarted from the topic marks and
counts nothing already counted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from osmose.bus.envelope import now_ms
from osmose.bus.jobs import JobTable, JobTail
from osmose.bus.kafka_client import BusConfig, Producer, ensure_topics
from osmose.bus.topics import declare_topics, job_topic
from osmose.hosts.job_ledger import transition
from osmose.telemetry.overdue import GRACE_S, OverdueCounter
from osmose.telemetry.slo.spec import load_spec
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb
from tests.e2e.cluster import delete_topics, wait_for_leaders
from tests.support import until

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

LABELS = {"tier": "fast", "tenant_class": "business", "lane": "high"}


def _late() -> float:
    return REGISTRY.get_sample_value("osmose_documents_late_total", LABELS) or 0.0


@contextlib.asynccontextmanager
async def front_door(config: BusConfig, producer: Producer) -> AsyncIterator[tuple[JobTable, OverdueCounter]]:
    table = JobTable()
    counter = OverdueCounter(table)
    tail = JobTail(config, table)
    await tail.start()
    await asyncio.wait_for(tail.ready.wait(), 60)

    async def publish(job: epb.Job) -> None:
        await producer.publish(job_topic(config.prefix), key=job.job_id.encode(), value=job.SerializeToString())

    task = asyncio.ensure_future(counter.run(publish, interval_s=0.2))
    try:
        yield table, counter
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        counter.close()
        await tail.stop()


async def test_a_stuck_document_is_counted_late_once_across_front_doors_and_restarts(
        kafka_bootstrap: str, topic_prefix: str) -> None:
    config = BusConfig(bootstrap=kafka_bootstrap, prefix=f"{topic_prefix}-overdue")
    ensure_topics(config, declare_topics(config.prefix))
    wait_for_leaders(kafka_bootstrap, [job_topic(config.prefix)])
    producer = Producer(config)
    producer.start()
    objective = load_spec().tiers["fast"].objective_seconds
    envelope = epb.Envelope(job_id="stuck-1", doc_id="d" * 32, tenant="acme", tier=pb.TIER_FAST, stage="triage",
                            priority=epb.PRIORITY_HIGH, plan="business", file="deck.pptx",
                            created_at_ms=now_ms() - int((objective + GRACE_S + 5) * 1000))
    item = ppb.WorkItem(job_id="stuck-1", tenant="acme")
    item.plan.tier = pb.TIER_FAST
    queued = transition(None, envelope, epb.JOB_EVENT_QUEUED, item=item)
    topic = job_topic(config.prefix)
    try:
        before = _late()
        await producer.publish(topic, key=b"stuck-1", value=queued.SerializeToString())
        async with front_door(config, producer) as (first, _), front_door(config, producer) as (second, _):
            await until(lambda: all((t.get("stuck-1") or epb.Job()).overdue_at_ms for t in (first, second)),
                         "both front doors to see the flag")
            marked_by = first.get("stuck-1").overdue_by
            assert marked_by == second.get("stuck-1").overdue_by     # both agree on the first mark
            await asyncio.sleep(1.0)      # a few more scans of both: nothing new to mark or count
            assert _late() - before == 1
            # a stage enters the document from a table that had not seen the mark yet
            entered = transition(queued, envelope, epb.JOB_EVENT_ENTERED, stage="triage", item=item)
            assert not entered.overdue_at_ms
            await producer.publish(topic, key=b"stuck-1", value=entered.SerializeToString())
            await until(lambda: all((t.get("stuck-1") or epb.Job()).event == epb.JOB_EVENT_ENTERED
                                     for t in (first, second)), "the stage's snapshot")
            assert all(t.get("stuck-1").overdue_by == marked_by for t in (first, second))
        # a front door starting afresh reads the whole topic: the flag is there, nothing is marked again
        async with front_door(config, producer) as (restarted, counter):
            assert restarted.get("stuck-1").overdue_by == marked_by
            assert counter.due() == []
            await asyncio.sleep(1.0)
        assert _late() - before == 1
    finally:
        producer.close()
        delete_topics(kafka_bootstrap, config.prefix)
