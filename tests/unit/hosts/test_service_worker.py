"""A stage on the bus, without a broker: retries with backoff, dead letters, skips, routing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from loadtests.fakeservers import ChatServer, LatencyModel
from osmose.bus.blobs import LocalBlobStore
from osmose.bus.consumer import Delivery
from osmose.bus.envelope import decode, encode, now_ms, pack
from osmose.bus.jobs import JobTable
from osmose.bus.kafka_client import BusConfig
from osmose.errors import CorruptDocumentError, RetryableError
from osmose.hosts.job_ledger import event_name
from osmose.hosts.service_worker import RetryPolicy, ServiceBus, StageWorker
from osmose.models import ModelRuntime, SegmentBlock, ask_segments
from osmose.models.context import PREMIUM_PRIORITY, CallOrder, current_call_order
from osmose.services.extractor.llm_extract import TASK as EXTRACTION
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb
from tests.unit.models.backends import router, runtime

pytestmark = pytest.mark.anyio


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]] | None = None,
                      timeout_s: float | None = None) -> None:
        self.sent.append((topic, value))

    def on(self, suffix: str) -> list[bytes]:
        return [value for topic, value in self.sent if topic.endswith(suffix)]


class FlakyStage:
    def __init__(self, failures: list[Exception], name: str = "embedder") -> None:
        self.name = name
        self.failures = failures
        self.calls = 0

    async def process(self, item: ppb.WorkItem) -> ppb.WorkItem:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        item.counters.embedded = 3
        return item


def _setup(tmp_path: Path, failures: list[Exception], attempts: int = 3, stage: str = "embedder"
           ) -> tuple[StageWorker, FlakyStage, FakeProducer, ServiceBus]:
    producer = FakeProducer()
    bus = ServiceBus(config=BusConfig(prefix="p"), producer=producer, blobs=LocalBlobStore(tmp_path),
                     jobs=JobTable(), host="test:1")
    stage = FlakyStage(failures, stage)
    worker = StageWorker(stage=stage, bus=bus, retry=RetryPolicy(max_attempts=attempts, base_s=0.001, cap_s=0.002))
    return worker, stage, producer, bus


def _delivery(bus: ServiceBus, *, tier: int = pb.TIER_FAST, job_id: str = "job-1", stage: str = "embedder"
              ) -> Delivery:
    item = ppb.WorkItem(job_id=job_id, tenant="acme")
    item.plan.tier = tier
    item.document.doc_id, item.document.file_name = "d" * 32, "deck.pptx"
    env = pack(epb.Envelope(job_id=job_id, doc_id="d" * 32, tenant="acme", tier=tier, stage=stage,
                            created_at_ms=now_ms(), file="decks/deck.pptx"), item, bus.blobs)
    return Delivery(topic=f"p.{stage}.bulk", partition=0, offset=7, key=b"k", value=encode(env), headers=[],
                    priority="bulk")


def _jobs(producer: FakeProducer) -> list[epb.Job]:
    return [epb.Job.FromString(v) for v in producer.on(".jobs")]


async def test_retryable_errors_are_retried_then_the_work_moves_on(tmp_path: Path) -> None:
    worker, stage, producer, bus = _setup(tmp_path, [RetryableError("TEI busy"), RetryableError("TEI busy")])
    await worker.handle(_delivery(bus, tier=pb.TIER_STANDARD))
    assert stage.calls == 3
    assert [event_name(j.event) for j in _jobs(producer)] == ["entered", "retrying", "retrying", "finished"]
    (forwarded,) = producer.on(".miner.bulk")                 # STANDARD: embedder -> miner
    env = decode(forwarded)
    assert (env.stage, env.attempt, env.file) == ("miner", 0, "decks/deck.pptx")
    assert not producer.on(".dlq")


async def test_the_last_stage_of_a_tier_ends_the_job_with_its_report(tmp_path: Path) -> None:
    worker, _, producer, bus = _setup(tmp_path, [], stage="persister")
    await worker.handle(_delivery(bus, stage="persister"))
    done = _jobs(producer)[-1]
    assert done.state == epb.JOB_STATE_SUCCEEDED and done.event == epb.JOB_EVENT_DONE
    assert '"file": "decks/deck.pptx", "status": "ok"' in done.report_json and done.counts["embedded"] == 3


async def test_retries_run_out_into_the_dead_letter_topic(tmp_path: Path) -> None:
    worker, stage, producer, bus = _setup(tmp_path, [RetryableError("down")] * 5, attempts=3)
    await worker.handle(_delivery(bus))
    assert stage.calls == 3
    (raw,) = producer.on("embedder.dlq")
    letter = epb.DeadLetter.FromString(raw)
    assert (letter.reason, letter.retryable, letter.attempts, letter.error_class) == (
        "retries-exhausted", True, 3, "RetryableError")
    failed = _jobs(producer)[-1]
    assert failed.state == epb.JOB_STATE_FAILED and failed.reason == "retryable"
    assert failed.error == "retryable: down (gave up after 3 attempts at embedder)"
    assert not producer.on(".persister.bulk")


async def test_a_permanent_error_is_dead_lettered_at_once(tmp_path: Path) -> None:
    worker, stage, producer, bus = _setup(tmp_path, [CorruptDocumentError("bad zip")])
    await worker.handle(_delivery(bus))
    assert stage.calls == 1
    letter = epb.DeadLetter.FromString(producer.on("embedder.dlq")[0])
    assert (letter.reason, letter.retryable, letter.attempts) == ("corrupt", False, 1)
    assert _jobs(producer)[-1].error == "corrupt: bad zip"


@pytest.mark.parametrize("state", [epb.JOB_STATE_CANCELLED, epb.JOB_STATE_SUCCEEDED])
async def test_work_of_ended_jobs_is_skipped(tmp_path: Path, state: int) -> None:
    worker, stage, producer, bus = _setup(tmp_path, [])
    bus.jobs.apply(epb.Job(job_id="job-1", state=state, progress=1000))
    await worker.handle(_delivery(bus))
    assert stage.calls == 0 and producer.sent == []


async def test_garbage_goes_to_the_dead_letter_topic(tmp_path: Path) -> None:
    worker, stage, producer, bus = _setup(tmp_path, [])
    await worker.handle(Delivery(topic="p.embedder.bulk", partition=0, offset=1, key=None,
                                       value=b"\x00garbage", headers=[], priority="bulk"))
    letter = epb.DeadLetter.FromString(producer.on("embedder.dlq")[0])
    assert letter.reason == "bad-envelope" and letter.envelope.payload == b"\x00garbage"
    assert stage.calls == 0


async def test_a_source_that_is_not_a_blob_reference_is_refused_without_being_opened(tmp_path: Path) -> None:
    worker, stage, producer, bus = _setup(tmp_path, [], stage="triage")
    secret = tmp_path / "server-only.pdf"
    secret.write_bytes(b"%PDF-1.7 not for tenants")
    item = ppb.WorkItem(job_id="job-9", tenant="acme", source_uri=str(secret))
    env = pack(epb.Envelope(job_id="job-9", doc_id="d" * 32, tenant="acme", stage="triage", created_at_ms=now_ms()),
               item, bus.blobs)
    await worker.handle(Delivery(topic="p.triage.bulk", partition=0, offset=1, key=b"k", value=encode(env),
                                 headers=[], priority="bulk"))
    assert stage.calls == 0                                   # the stage never saw it, so nothing opened the path
    letter = epb.DeadLetter.FromString(producer.on("triage.dlq")[0])
    assert (letter.reason, letter.retryable) == ("bad-source", False)
    assert _jobs(producer)[-1].error.startswith("bad-source:")


# -- the job's place in the queues for backend slots ------------------------------------------------

class ModelStage:
    """A stage whose model calls go to the local chat server (one segment per call)."""

    def __init__(self, models: ModelRuntime) -> None:
        self.name = "extractor"
        self.models = models
        self.orders: list[CallOrder] = []

    async def process(self, item: ppb.WorkItem) -> ppb.WorkItem:
        self.orders.append(current_call_order())
        got = await ask_segments(self.models.session(), EXTRACTION, [SegmentBlock(item.job_id, f"[slide 1] {item.job_id} "
                                                                                  "Platform uses Secure Gateway")])
        assert not got.failed
        return item


def _lane_delivery(bus: ServiceBus, job_id: str, priority: int, created_at_ms: int) -> Delivery:
    item = ppb.WorkItem(job_id=job_id, tenant="acme")
    item.plan.tier = pb.TIER_STANDARD
    env = pack(epb.Envelope(job_id=job_id, doc_id=job_id.ljust(32, "0"), tenant="acme", tier=pb.TIER_STANDARD,
                            stage="extractor", priority=priority, created_at_ms=created_at_ms), item, bus.blobs)
    lane = "high" if priority == epb.PRIORITY_HIGH else "bulk"
    return Delivery(topic=f"p.extractor.{lane}", partition=0, offset=1, key=b"k", value=encode(env), headers=[],
                    priority=lane)


async def test_premium_jobs_model_calls_go_first_then_older_jobs(tmp_path: Path) -> None:
    with ChatServer(latency=LatencyModel(time_scale=0)) as chat:
        config = router(llm=chat.openai_url, batch_size=1, concurrency=1)
        config = config.model_copy(update={"endpoints": {
            **config.endpoints, "llm": config.endpoints["llm"].model_copy(update={"priority_scheduling": True})}})
        models = runtime(config, tmp_path / "models")
        try:
            _, _, producer, bus = _setup(tmp_path / "bus", [])
            stage = ModelStage(models)
            worker = StageWorker(stage=stage, bus=bus)  # type: ignore[arg-type]
            deliveries = [_lane_delivery(bus, "bulk-newer", epb.PRIORITY_BULK, 3_000),
                          _lane_delivery(bus, "bulk-older", epb.PRIORITY_BULK, 1_000),
                          _lane_delivery(bus, "premium-newest", epb.PRIORITY_HIGH, 9_000)]
            limits = models.backends["llm"].limits
            async with limits.slot():  # the only slot is busy: the three jobs' calls queue
                handled = [asyncio.create_task(worker.handle(d)) for d in deliveries]
                while limits.waiting < 3:
                    await asyncio.sleep(0.01)
            await asyncio.gather(*handled)
        finally:
            await models.aclose()
    served = [body["messages"][-1]["content"] for body in chat.log]
    assert [next(j for j in ("premium-newest", "bulk-older", "bulk-newer") if j in text) for text in served] == [
        "premium-newest", "bulk-older", "bulk-newer"]
    assert [body.get("priority") for body in chat.log] == [PREMIUM_PRIORITY, None, None]  # vLLM's field
    assert sorted(stage.orders, key=lambda o: o.order) == [
        CallOrder(priority=0, order=1_000), CallOrder(priority=0, order=3_000),
        CallOrder(priority=PREMIUM_PRIORITY, order=9_000)]
    assert len(producer.on(".embedder.bulk")) == 2 and len(producer.on(".embedder.high")) == 1  # lanes travel on
