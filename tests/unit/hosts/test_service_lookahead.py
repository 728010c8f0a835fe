"""Look-aheads on the bus, without a broker: a stage runs them for the caches and discards the result
(nothing published, no job event, no dead letter); the extractor sends one to the embedder first."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from osmose.bus.consumer import Delivery
from osmose.bus.envelope import decode, encode, now_ms, pack, unpack
from osmose.errors import CorruptDocumentError, RetryableError
from osmose.hosts.service_worker import ServiceBus, StageWorker
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb
from tests.unit.hosts.test_service_worker import FakeProducer, FlakyStage, _jobs
from tests.unit.hosts.test_service_worker import _setup as _worker_setup
from tests.unit.models.backends import router, runtime

pytestmark = pytest.mark.anyio


def _counted(stage: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("osmose_lookahead_items_total", {"stage": stage, "outcome": outcome}) or 0.0


def _item(tier: int, job_id: str = "job-1") -> ppb.WorkItem:
    item = ppb.WorkItem(job_id=job_id, tenant="acme")
    item.plan.tier = tier
    item.document.doc_id, item.document.file_name = "d" * 32, "deck.pptx"
    item.document.slides.add(number=1, title="Zero trust", notes="Never trust, always verify.")
    item.counters.ocr_pages = 1
    item.model_usage.by_task["vision_summary"].calls = 2
    return item


def _delivery(bus: ServiceBus, *, stage: str, tier: int = pb.TIER_STANDARD, lookahead: bool = False,
              job_id: str = "job-1") -> Delivery:
    env = pack(epb.Envelope(job_id=job_id, doc_id="d" * 32, tenant="acme", tier=tier, stage=stage,
                            created_at_ms=now_ms(), file="deck.pptx", lookahead=lookahead), _item(tier, job_id), bus.blobs)
    return Delivery(topic=f"p.{stage}.bulk", partition=0, offset=3, key=b"k", value=encode(env), headers=[],
                    priority="bulk")


def _setup(tmp_path: Path, failures: list[Exception], stage: str = "embedder", lookahead: bool = True
           ) -> tuple[StageWorker, FlakyStage, FakeProducer, ServiceBus]:
    worker, fake, producer, bus = _worker_setup(tmp_path, failures, stage=stage)
    worker.lookahead = lookahead
    return worker, fake, producer, bus


async def test_a_lookahead_runs_the_stage_and_publishes_nothing(tmp_path: Path) -> None:
    worker, stage, producer, bus = _setup(tmp_path, [])
    before = _counted("embedder", "ok")
    await worker.handle(_delivery(bus, stage="embedder", lookahead=True))
    assert stage.calls == 1
    assert producer.sent == []           # no job event, no next stage, no dead letter
    assert bus.jobs.get("job-1") is None
    assert _counted("embedder", "ok") == before + 1


@pytest.mark.parametrize("error", [CorruptDocumentError("bad zip"), RetryableError("TEI busy"), KeyError("bug")])
async def test_a_failed_lookahead_is_logged_not_retried_nor_dead_lettered(
        tmp_path: Path, error: Exception, caplog: pytest.LogCaptureFixture) -> None:
    worker, stage, producer, bus = _setup(tmp_path, [error, error, error])
    before = _counted("embedder", "failed")
    with caplog.at_level(logging.INFO, logger="osmose.hosts.service_worker"):
        await worker.handle(_delivery(bus, stage="embedder", lookahead=True))
    assert stage.calls == 1              # one try: the real message does the work
    assert producer.sent == []
    assert _counted("embedder", "failed") == before + 1
    assert any("look-ahead for job job-1 failed" in r.getMessage() for r in caplog.records)
    # the real message is untouched by it: its delivery count and its outcome are its own
    await worker.handle(_delivery(bus, stage="embedder"))
    assert [j.deliveries for j in _jobs(producer) if j.event == epb.JOB_EVENT_ENTERED] == [1]


async def test_writers_and_ended_jobs_drop_lookaheads(tmp_path: Path) -> None:
    worker, stage, producer, bus = _setup(tmp_path, [], stage="persister")
    await worker.handle(_delivery(bus, stage="persister", lookahead=True))
    assert stage.calls == 0 and producer.sent == []
    worker, stage, producer, bus = _setup(tmp_path / "ended", [])
    bus.jobs.apply(epb.Job(job_id="job-1", state=epb.JOB_STATE_CANCELLED, progress=1000))
    await worker.handle(_delivery(bus, stage="embedder", lookahead=True))
    assert stage.calls == 0 and producer.sent == []


@pytest.mark.parametrize("lookahead", [True, False])
async def test_the_extractor_sends_its_input_ahead_to_the_embedder(tmp_path: Path, lookahead: bool) -> None:
    worker, stage, producer, bus = _setup(tmp_path, [], stage="extractor", lookahead=lookahead)
    models = worker.models = runtime(router(tei="http://127.0.0.1:9"), tmp_path)   # embeddings from TEI: a pool to fill
    sent = _counted("extractor", "published")
    await worker.handle(_delivery(bus, stage="extractor", tier=pb.TIER_STANDARD))
    assert stage.calls == 1
    envelopes = [decode(v) for v in producer.on(".embedder.bulk")]
    assert [e.lookahead for e in envelopes] == ([True, False] if lookahead else [False])   # ahead comes first
    real = unpack(envelopes[-1], bus.blobs)
    assert real.counters.embedded == 3   # what the (fake) extractor wrote
    if lookahead:
        ahead = unpack(envelopes[0], bus.blobs)
        expected = _item(pb.TIER_STANDARD)
        expected.ClearField("counters")
        expected.ClearField("model_usage")
        assert ahead == expected         # the extractor's input, accumulators cleared
        assert (envelopes[0].job_id, envelopes[0].stage, envelopes[0].tier) == ("job-1", "embedder", pb.TIER_STANDARD)
        assert _counted("extractor", "published") == sent + 1
    # FAST has no extractor; the embedder (not a side stage of anything before it) sends nothing ahead
    worker, _, producer, bus = _setup(tmp_path / "fast", [], stage="embedder", lookahead=lookahead)
    await worker.handle(_delivery(bus, stage="embedder", tier=pb.TIER_FAST))
    assert not any(decode(v).lookahead for t, v in producer.sent if not t.endswith(".jobs"))
    await models.aclose()


async def test_with_local_embeddings_the_embedder_gets_no_lookahead(tmp_path: Path) -> None:
    """No TEI: nothing to keep busy, and the job's counters stay the staged run's."""
    for models in (None, runtime(router(llm="http://127.0.0.1:9"), tmp_path)):
        worker, _, producer, bus = _setup(tmp_path, [], stage="extractor")
        worker.models = models
        await worker.handle(_delivery(bus, stage="extractor", tier=pb.TIER_STANDARD))
        assert [decode(v).lookahead for v in producer.on(".embedder.bulk")] == [False]
        if models is not None:
            await models.aclose()


@pytest.mark.parametrize("packing", ["load", "full"])
async def test_vision_sends_the_segments_it_does_not_touch_ahead_to_the_extractor(tmp_path: Path,
                                                                                   packing: str) -> None:
    worker, stage, producer, bus = _setup(tmp_path, [], stage="vision")
    models = worker.models = runtime(router(llm="http://127.0.0.1:9", packing=packing), tmp_path)
    item = _item(pb.TIER_STANDARD)
    item.document.slides.add(number=2, title="Diagram").vision_decision.needed = True
    item.plan.vision_slides = 1
    item.segments.add(segment_id="s1", index=0, slide_numbers=[1])
    item.segments.add(segment_id="s2", index=1, slide_numbers=[2])
    env = pack(epb.Envelope(job_id="job-1", doc_id="d" * 32, tenant="acme", tier=pb.TIER_STANDARD, stage="vision",
                            created_at_ms=now_ms(), file="deck.pptx"), item, bus.blobs)
    await worker.handle(Delivery(topic="p.vision.bulk", partition=0, offset=3, key=b"k", value=encode(env),
                                 headers=[], priority="bulk"))
    assert stage.calls == 1
    envelopes = [decode(v) for v in producer.on(".extractor.bulk")]
    if packing == "full":   # fewest prompt tokens asked for: no extra asking
        assert [e.lookahead for e in envelopes] == [False]
    else:
        assert [e.lookahead for e in envelopes] == [True, False]   # ahead first, on the job's partition
        ahead = unpack(envelopes[0], bus.blobs)
        assert [s.segment_id for s in ahead.segments] == ["s1"]    # only the segment vision leaves alone
        assert len(ahead.document.slides) == 2 and not ahead.HasField("model_usage")
        assert [s.segment_id for s in unpack(envelopes[1], bus.blobs).segments] == ["s1", "s2"]
    await models.aclose()
