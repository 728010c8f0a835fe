"""The streamed in-process run (embedder alongside the extractor, documents ordered on the backends)
writes exactly what the staged run writes: same graph, same vectors."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.fakeservers import ChatServer, LatencyModel, TeiServer
from osmose.config import Settings
from osmose.hosts.inprocess import InProcessPipeline
from osmose.samples import build_large_deck
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb
from tests.unit.models.backends import write_router

pytestmark = pytest.mark.anyio


async def _written(settings: Settings, deck: Path, *, streaming: bool) -> tuple[ppb.WorkItem, dict[str, float]]:
    """The work item the persister wrote, and the stage seconds."""
    seen: list[ppb.WorkItem] = []
    async with InProcessPipeline(settings, streaming=streaming) as pipeline:
        persister = pipeline.stages["persister"]
        write = persister.process

        async def capture(item: ppb.WorkItem) -> ppb.WorkItem:
            copy = ppb.WorkItem()
            copy.CopyFrom(item)
            seen.append(copy)
            return await write(item)

        persister.process = capture  # type: ignore[method-assign]
        report = await pipeline.ingest_one(deck, tenant="acme", tier=pb.TIER_DEEP)
    assert report.status == "ok", report.error
    assert len(seen) == 1
    return seen[0], report.seconds


async def test_streamed_run_writes_the_staged_runs_graph_and_vectors(tmp_path: Path) -> None:
    deck = build_large_deck(tmp_path / "deck.pptx", 40)
    with ChatServer(latency=LatencyModel(time_scale=0)) as llm, TeiServer(latency=LatencyModel(time_scale=0)) as tei:
        def settings(name: str) -> Settings:
            return Settings(data_dir=tmp_path / name, llm_url=llm.openai_url, vision_url=llm.openai_url,
                            tei_url=tei.url, router_config=write_router(tmp_path / f"{name}.yaml", llm="${llm_url}", packing="load",
                                                                         vision="${vision_url}", tei="${tei_url}"))

        staged, staged_seconds = await _written(settings("staged"), deck, streaming=False)
        staged_requests = llm.chat_requests + tei.embed_requests
        streamed, streamed_seconds = await _written(settings("streamed"), deck, streaming=True)
        streamed_requests = llm.chat_requests + tei.embed_requests - staged_requests

    assert staged.concepts and staged.chunks and any(r.kind == pb.RELATION_KIND_TYPED for r in staged.relations)
    for field in ("concepts", "relations", "merges", "chunks", "segments", "counters", "warnings"):
        assert getattr(streamed, field) == getattr(staged, field), field
    assert [c.vector for c in streamed.chunks] == [c.vector for c in staged.chunks]
    # Same extraction work; the miner's look-ahead may have asked a relation question (or embedded
    # a concept name) that the final concepts changed: a call, never a result. Every request is
    # accounted for.
    a, b = staged.model_usage.by_task["concept_extraction"], streamed.model_usage.by_task["concept_extraction"]
    assert (a.calls, a.prompt_tokens, a.output_tokens) == (b.calls, b.prompt_tokens, b.output_tokens)
    for task in ("relation_typing", "embedding"):
        assert streamed.model_usage.by_task[task].calls >= staged.model_usage.by_task[task].calls, task
    assert (staged.model_usage.total.calls, streamed.model_usage.total.calls) == (staged_requests, streamed_requests)
    assert set(streamed_seconds) == set(staged_seconds)  # the embedder ran (alongside) and is timed


async def test_documents_in_flight_follow_the_backends_slots(tmp_path: Path) -> None:
    offline = InProcessPipeline(Settings(data_dir=tmp_path / "offline"))
    assert offline.max_in_flight == 2
    await offline.close()
    router = write_router(tmp_path / "r.yaml", llm="http://127.0.0.1:9", vision="", tei="")
    online = InProcessPipeline(Settings(data_dir=tmp_path / "online", llm_url="http://127.0.0.1:9",
                                        router_config=router))
    slots = online.resources.models.config.chat_slots  # type: ignore[union-attr]
    assert slots >= 4 and online.max_in_flight == max(2, -(-slots // 2))  # documents_per_slot 0.5
    assert InProcessPipeline(Settings(data_dir=tmp_path / "fixed"), max_in_flight=5).max_in_flight == 5
    await online.close()


async def test_parsed_documents_are_admitted_by_the_most_model_work_first() -> None:
    """The in-process backlog's gate: PriorityGate keyed by (-model work, start rank)."""
    import asyncio

    from osmose.models.limits import PriorityGate

    gate = PriorityGate(1)
    await gate.acquire((-5, 0))   # a free slot: taken at once
    admitted: list[str] = []

    async def document(name: str, work: int, rank: int) -> None:
        await gate.acquire((-work, rank))
        admitted.append(name)
        gate.release()

    waiting = [asyncio.create_task(document(name, work, rank)) for name, work, rank in
               [("light", 2, 1), ("heavy", 40, 3), ("medium", 10, 2), ("medium-later", 10, 4)]]
    cancelled = asyncio.create_task(document("gone", 99, 5))
    for _ in range(5):
        await asyncio.sleep(0)
    cancelled.cancel()   # a document that failed while waiting gives its turn away
    gate.release()
    await asyncio.gather(*waiting)
    assert admitted == ["heavy", "medium", "medium-later", "light"]
    assert (gate.held, gate.waiting) == (0, 0)


def test_model_work_is_triages_estimate_of_calls_by_tier() -> None:
    from osmose.hosts.inprocess import model_work

    item = ppb.WorkItem()
    item.segments.add(segment_id="a")
    item.segments.add(segment_id="b")
    item.plan.vision_slides = 3
    for tier, calls in ((pb.TIER_FAST, 0), (pb.TIER_STANDARD, 3 + 2), (pb.TIER_DEEP, 3 + 4)):
        item.plan.tier = tier
        assert model_work(item) == calls, tier
    item.plan.tier, item.plan.enrich_tier = pb.TIER_FAST, pb.TIER_DEEP   # a preview: its enrichment's work
    assert model_work(item) == 7


async def test_segments_vision_does_not_touch_are_extracted_while_vision_runs(tmp_path: Path) -> None:
    import os
    import shutil

    from osmose.services.extractor.llm_extract import SYSTEM as EXTRACTION_SYSTEM
    from tests.unit.models.test_models_pipeline import build_deck

    if shutil.which("soffice") is None and not os.environ.get("CI"):
        pytest.skip("LibreOffice renders the deck's diagram for vision (make setup installs it)")
    deck = build_deck(tmp_path / "deck.pptx")   # 4 segments, one of them with a diagram flagged for vision
    with ChatServer(latency=LatencyModel(time_scale=0)) as llm, TeiServer(latency=LatencyModel(time_scale=0)) as tei:
        def settings(name: str) -> Settings:
            return Settings(data_dir=tmp_path / name, llm_url=llm.openai_url, vision_url=llm.openai_url,
                            tei_url=tei.url, router_config=write_router(tmp_path / f"{name}.yaml", llm="${llm_url}",
                                                                         packing="load", vision="${vision_url}",
                                                                         tei="${tei_url}"))

        def asked() -> list[str]:   # "vision" or the segments of an extraction call, in arrival order
            out = []
            for body in llm.log:
                system = body["messages"][0]["content"]
                if system == EXTRACTION_SYSTEM:
                    out.append(f"extraction x{body['messages'][1]['content'].count('SEGMENT ')}")
                elif any(isinstance(m.get("content"), list) for m in body["messages"]):
                    out.append("vision")
            return out

        staged, _ = await _written(settings("staged"), deck, streaming=False)
        staged_order = asked()
        llm.reset_counters()
        streamed, _ = await _written(settings("streamed"), deck, streaming=True)
        streamed_order = asked()

    assert staged.plan.vision_slides == 1 and len(staged.segments) == 4
    assert staged_order[0] == "vision"                       # staged: extraction waits for vision
    assert streamed_order[0].startswith("extraction")        # streamed: the 3 untouched segments first
    assert sum(int(x.rsplit(" x", 1)[1]) for x in streamed_order if x.startswith("extraction")) == 4  # none asked twice
    for field in ("concepts", "relations", "merges", "chunks", "segments", "counters"):
        assert getattr(streamed, field) == getattr(staged, field), field
    assert (streamed.model_usage.by_task["concept_extraction"].calls
            == sum(1 for x in streamed_order if x.startswith("extraction")))   # the look-ahead's calls are charged
