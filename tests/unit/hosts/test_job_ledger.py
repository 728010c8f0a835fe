"""The job ledger owns job status: every transition is one complete snapshot, published, then
applied; the worker's retries (tenacity) and dead letters go through it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from osmose.bus.blobs import LocalBlobStore
from osmose.bus.consumer import Delivery
from osmose.bus.envelope import encode, now_ms, pack
from osmose.bus.jobs import PROGRESS_DONE, JobTable
from osmose.bus.kafka_client import BusConfig
from osmose.bus.trace import TraceContext
from osmose.errors import RetryableError
from osmose.hosts.job_ledger import JobLedger, event_name, transition
from osmose.hosts.service_worker import RetryPolicy, ServiceBus, StageWorker
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb

pytestmark = pytest.mark.anyio


class Recorder:
    """Publishes nowhere; remembers what the ledger published, in order."""

    def __init__(self) -> None:
        self.jobs: list[epb.Job] = []

    async def __call__(self, job: epb.Job, trace: TraceContext | None) -> None:
        self.jobs.append(job)


def _envelope(stage: str = "embedder") -> epb.Envelope:
    return epb.Envelope(job_id="job-1", doc_id="d" * 32, tenant="acme", tier=pb.TIER_FAST, stage=stage,
                        created_at_ms=now_ms(), file="decks/deck.pptx")


async def test_a_run_publishes_each_transition_once_in_order() -> None:
    recorder = Recorder()
    ledger = JobLedger(table=JobTable(), publish=recorder)
    envelope, item, trace = _envelope(), ppb.WorkItem(job_id="job-1", tenant="acme"), TraceContext.new()
    await ledger.queued(envelope, item, trace)
    await ledger.entered(envelope, "triage", item, trace)
    await ledger.retrying(envelope, "triage", item, RetryableError("broker slow"), trace)
    await ledger.finished(envelope, "triage", item, trace)
    await ledger.entered(envelope, "triage", item, trace)     # a redelivery: older than what is known
    await ledger.done(envelope, "persister", item, trace)
    await ledger.cancel(ledger.get("job-1"), trace)           # ended: a cancel snapshot is not news
    assert [event_name(j.event) for j in recorder.jobs] == ["queued", "entered", "retrying", "finished", "done"]
    assert [j.progress for j in recorder.jobs] == [0, 10, 10, 15, PROGRESS_DONE]
    assert recorder.jobs[2].error == "retryable: broker slow" and recorder.jobs[2].reason == "retryable"
    final = ledger.get("job-1")
    assert final.state == epb.JOB_STATE_SUCCEEDED and json.loads(final.report_json)["status"] == "ok"
    assert ledger.ended(envelope) and not ledger.cancelled(envelope)


async def test_a_preview_job_shows_searchable_then_its_enrichment_then_done() -> None:
    """Progress stays monotone across both passes (the enrichment counts on from "searchable"),
    and the job carries both milestones; a late redelivery of the preview pass is not news."""
    from osmose.pipeline import begin_enrichment

    recorder = Recorder()
    ledger = JobLedger(table=JobTable(), publish=recorder)
    envelope, trace = _envelope("triage"), TraceContext.new()
    item = ppb.WorkItem(job_id="job-1", tenant="acme")
    item.plan.preview, item.plan.tier = True, pb.TIER_DEEP
    await ledger.queued(envelope, item, trace)
    await ledger.entered(envelope, "triage", item, trace)
    item.plan.tier, item.plan.enrich_tier = pb.TIER_FAST, pb.TIER_DEEP          # triage planned the preview
    for stage in ("triage", "embedder", "persister"):
        if stage != "triage":
            await ledger.entered(envelope, stage, item, trace)
        if stage != "persister":
            await ledger.finished(envelope, stage, item, trace)
    preview = ppb.WorkItem()
    preview.CopyFrom(item)
    assert begin_enrichment(item) is not None and item.plan.tier == pb.TIER_DEEP
    await ledger.searchable(envelope, "persister", item, trace)
    await ledger.entered(envelope, "persister", preview, trace)   # the preview pass redelivered late
    for stage in ("vision", "extractor", "embedder", "miner", "persister"):
        await ledger.entered(envelope, stage, item, trace)
        if stage != "persister":
            await ledger.finished(envelope, stage, item, trace)
    await ledger.done(envelope, "persister", item, trace)
    events = [(event_name(j.event), j.stage) for j in recorder.jobs]
    assert events[:8] == [("queued", ""), ("entered", "triage"), ("finished", "triage"), ("entered", "embedder"),
                          ("finished", "embedder"), ("entered", "persister"), ("searchable", "persister"),
                          ("entered", "vision")]
    progress = [j.progress for j in recorder.jobs]
    assert progress == sorted(progress) and progress[6] == 100 and progress[7] == 120
    assert len(recorder.jobs) == 17 and events[-1] == ("done", "persister")
    searchable = recorder.jobs[6]
    assert searchable.searchable_at_ms > 0 and searchable.enriched_at_ms == 0
    assert searchable.state == epb.JOB_STATE_RUNNING
    final = ledger.get("job-1")
    assert final.searchable_at_ms == searchable.searchable_at_ms <= final.enriched_at_ms


async def test_a_job_without_preview_is_searchable_and_enriched_when_done() -> None:
    ledger = JobLedger(table=JobTable(), publish=Recorder())
    envelope, item, trace = _envelope(), ppb.WorkItem(job_id="job-1", tenant="acme"), TraceContext.new()
    await ledger.queued(envelope, item, trace)
    assert ledger.get("job-1").searchable_at_ms == 0
    await ledger.done(envelope, "persister", item, trace)
    final = ledger.get("job-1")
    assert final.searchable_at_ms == final.enriched_at_ms > 0


async def test_cancel_and_replay_transitions() -> None:
    recorder = Recorder()
    ledger = JobLedger(table=JobTable(), publish=recorder)
    envelope, trace = _envelope(), TraceContext.new()
    await ledger.queued(envelope, ppb.WorkItem(), trace)
    cancelled = await ledger.cancel(ledger.get("job-1"), trace)
    assert cancelled.state == epb.JOB_STATE_CANCELLED and cancelled.reason == "cancelled"
    assert ledger.cancelled(envelope)
    replay = epb.Envelope()
    replay.CopyFrom(envelope)
    replay.replay = 1
    again = transition(cancelled, replay, epb.JOB_EVENT_REPLAYED, stage="embedder")
    assert (again.state, again.progress, again.error, again.report_json) == (epb.JOB_STATE_QUEUED, 0, "", "")
    assert JobTable().apply(again) and not ledger.cancelled(replay)


class Buggy:
    name = "embedder"

    def __init__(self, error: Exception) -> None:
        self.error, self.calls = error, 0

    async def process(self, item: ppb.WorkItem) -> ppb.WorkItem:
        self.calls += 1
        raise self.error


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]] | None = None,
                      timeout_s: float | None = None) -> None:
        self.sent.append((topic, value))


def _worker(tmp_path: Path, error: Exception, delays: list[float]) -> tuple[StageWorker, Buggy, FakeProducer, Delivery]:
    async def no_sleep(seconds: float) -> None:
        delays.append(seconds)

    producer = FakeProducer()
    bus = ServiceBus(config=BusConfig(prefix="p"), producer=producer, blobs=LocalBlobStore(tmp_path),  # type: ignore[arg-type]
                     jobs=JobTable(), host="test:1")
    stage = Buggy(error)
    worker = StageWorker(stage=stage, bus=bus, retry=RetryPolicy(max_attempts=4, base_s=1.0, cap_s=4.0, sleep=no_sleep))
    item = ppb.WorkItem(job_id="job-1", tenant="acme")
    env = pack(_envelope(), item, bus.blobs)
    delivery = Delivery(topic="p.embedder.bulk", partition=0, offset=1, key=b"k", value=encode(env), headers=[],
                        priority="bulk")
    return worker, stage, producer, delivery


async def test_a_bug_is_dead_lettered_at_once_as_internal(tmp_path: Path) -> None:
    delays: list[float] = []
    worker, stage, producer, delivery = _worker(tmp_path, KeyError("slide"), delays)
    await worker.handle(delivery)
    assert stage.calls == 1 and delays == []
    [letter] = [epb.DeadLetter.FromString(v) for t, v in producer.sent if t.endswith(".dlq")]
    assert (letter.reason, letter.retryable, letter.attempts, letter.error_class) == ("internal", False, 1, "KeyError")
    failed = epb.Job.FromString([v for t, v in producer.sent if t.endswith(".jobs")][-1])
    assert failed.state == epb.JOB_STATE_FAILED and failed.reason == "internal"
    assert failed.error.startswith("internal error (KeyError)")


async def test_retries_back_off_with_jitter_under_the_cap_without_the_real_clock(tmp_path: Path) -> None:
    delays: list[float] = []
    worker, stage, producer, delivery = _worker(tmp_path, RetryableError("TEI down"), delays)
    await worker.handle(delivery)
    assert stage.calls == 4 and len(delays) == 3
    assert all(0 <= d <= 4.0 for d in delays)
    events = [event_name(epb.Job.FromString(v).event) for t, v in producer.sent if t.endswith(".jobs")]
    assert events == ["entered", "retrying", "retrying", "retrying", "failed"]
