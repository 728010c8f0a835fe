"""Searchable in seconds, enriched in the background (in-process host): a deck ingested with
``preview=True`` is found by search while its DEEP enrichment still waits on the model server,
and ends with exactly the graph and vectors of a direct DEEP ingest; re-ingesting it calls
no model and never lowers it to FAST on the way.

The order of the milestones is shown without timing: the local vLLM-protocol server holds
every chat request (:meth:`ChatServer.hold`) until the search has succeeded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from loadtests.fakeservers import ChatServer, LatencyModel, TeiServer
from osmose.config import Settings
from osmose.hosts.inprocess import InProcessPipeline
from osmose.hosts.report import IngestReport
from osmose.stores.qdrant_store import QdrantVectorStore, _filter
from osmose.v1 import document_pb2 as pb
from tests.contract.graph_dumps import dump
from tests.unit.models.backends import write_router
from tests.unit.models.test_models_pipeline import build_deck

pytestmark = pytest.mark.anyio

TENANT = "acme"
SENTENCE = "Immutable backups protect against ransomware"   # one slide of the deck says exactly this


def _settings(tmp_path: Path, name: str, llm: ChatServer, tei: TeiServer, **more: Any) -> Settings:
    return Settings(data_dir=tmp_path / name, llm_url=llm.openai_url, vision_url=llm.openai_url, tei_url=tei.url,
                    router_config=write_router(tmp_path / f"{name}.yaml", llm="${llm_url}", vision="${vision_url}",
                                               tei="${tei_url}", timeout_initial=60.0), **more)
    # (a held call must outlast the search on a slow machine: no client timeout before 60 s)


Points = dict[str, tuple[np.ndarray, dict[str, Any]]]


def _vectors(store: QdrantVectorStore, tenant: str) -> Points:
    """Every point of the tenant: id -> (dense vector, payload)."""
    client = store._connected()
    points: Points = {}
    offset: Any = None
    while True:
        records, offset = client.scroll(store._collection_for(tenant), scroll_filter=_filter(tenant), limit=256,
                                        offset=offset, with_payload=True, with_vectors=True)
        for r in records:
            vector = r.vector["dense"] if isinstance(r.vector, dict) else r.vector
            points[str(r.id)] = (np.asarray(vector, dtype=np.float32), dict(r.payload or {}))
        if offset is None:
            return points


def _same_vectors(a: Points, b: Points) -> None:
    """Same point ids and payloads, and the same vectors to float32 precision (a vector read
    back from the embedding cache may differ from the freshly computed one in the last bit)."""
    assert sorted(a) == sorted(b)
    for point_id, (vector, payload) in a.items():
        assert payload == b[point_id][1], point_id
        assert vector.shape == b[point_id][0].shape and np.allclose(vector, b[point_id][0], atol=1e-6), point_id


async def _stores(pipeline: InProcessPipeline) -> tuple[dict[str, Any], dict[str, Any]]:
    vectors = pipeline.vectors
    assert isinstance(vectors, QdrantVectorStore)
    return await dump(pipeline.graph, TENANT), await anyio.to_thread.run_sync(_vectors, vectors, TENANT)


async def test_preview_is_searchable_while_deep_enrichment_runs_and_ends_as_a_direct_deep_ingest(
        tmp_path: Path) -> None:
    deck = build_deck(tmp_path / "deck.pptx")
    with ChatServer(latency=LatencyModel(time_scale=0)) as llm, TeiServer(latency=LatencyModel(time_scale=0)) as tei:
        milestones: list[str] = []
        searchable = anyio.Event()

        def progress(_index: int, stage: str) -> None:
            if stage in ("searchable", "done"):
                milestones.append(stage)
            if stage == "searchable":
                searchable.set()

        llm.hold()   # every model call of the enrichment waits here until the search below has succeeded
        async with InProcessPipeline(_settings(tmp_path, "preview", llm, tei)) as pipeline:
            reports: list[IngestReport] = []
            written: list[set[str]] = []   # the texts each pass embedded and persisted
            persist = pipeline.stages["persister"].process

            async def record(item: Any) -> Any:
                written.append({c.embed_text for c in item.chunks})
                return await persist(item)

            pipeline.stages["persister"].process = record  # type: ignore[method-assign]

            async def ingest() -> None:
                reports.append(await pipeline.ingest_one(deck, tenant=TENANT, tier=pb.TIER_DEEP, preview=True,
                                                         progress=progress))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(ingest)
                with anyio.fail_after(120):
                    await searchable.wait()
                    # the enrichment has started and is held on its first model call
                    assert await anyio.to_thread.run_sync(llm.wait_held, 1, 60.0)
                hits = await pipeline.search(SENTENCE, tenant=TENANT, limit=3)
                milestones.append("search-hit")
                assert not reports and llm.held >= 1   # still enriching: no report, a model call open
                llm.release()
            preview_graph, preview_vectors = await _stores(pipeline)

        assert hits and SENTENCE in hits[0].text and hits[0].file == deck.name
        assert hits[0].concepts == []   # found at FAST: no concepts yet
        assert milestones == ["searchable", "search-hit", "done"]
        report = reports[0]
        assert report.status == "ok", report.error
        assert report.tier == "deep" and report.concepts > 0 and report.relations > 0
        assert 0 < report.seconds["searchable"] <= report.seconds["total"]
        assert "searchable at fast first" in report.tier_reason
        calls_after_preview = llm.chat_requests + tei.embed_requests

        # Re-ingesting the unchanged deck, with a preview again: no model call at all, and the
        # document is never lowered to FAST on the way (its preview pass writes nothing).
        seen_tiers: list[str] = []
        async with InProcessPipeline(_settings(tmp_path, "preview", llm, tei)) as pipeline:
            graph = pipeline.graph

            def watch(_index: int, stage: str) -> None:
                if stage == "searchable":
                    seen_tiers.append("checked")

            write = pipeline.stages["persister"].process

            async def persist(item: Any) -> Any:
                before = await graph.get_document(TENANT, item.document.doc_id)
                seen_tiers.append(before.tier if before else "")
                return await write(item)

            pipeline.stages["persister"].process = persist  # type: ignore[method-assign]
            again = await pipeline.ingest_one(deck, tenant=TENANT, tier=pb.TIER_DEEP, preview=True, progress=watch)
            assert again.status == "ok", again.error
            again_graph, again_vectors = await _stores(pipeline)
        assert llm.chat_requests + tei.embed_requests == calls_after_preview
        assert again.model["calls"] == 0 and again.embedded == 0
        assert seen_tiers == ["deep", "checked", "deep"]
        assert again_graph == preview_graph
        _same_vectors(again_vectors, preview_vectors)

        # A direct DEEP ingest of the same file into other stores: the same graph, the same vectors.
        async with InProcessPipeline(_settings(tmp_path, "direct", llm, tei)) as pipeline:
            direct = await pipeline.ingest_one(deck, tenant=TENANT, tier=pb.TIER_DEEP)
            assert direct.status == "ok", direct.error
            direct_graph, direct_vectors = await _stores(pipeline)

    assert direct_graph["concepts"] and direct_graph["relations"] and direct_vectors
    assert preview_graph == direct_graph
    _same_vectors(preview_vectors, direct_vectors)
    # The enrichment embedded only what the preview had not: a slide whose text grew (OCR/vision).
    fast, deep = written
    assert direct.embedded == len(deep) and report.embedded == len(fast) + len(deep - fast)
    assert len(deep - fast) < len(deep) / 2
    # Every model answer of the enrichment is the direct run's: same questions, same count.
    for task in ("vision_summary", "concept_extraction", "relation_typing"):
        assert report.model["by_task"].get(task, {}).get("calls", 0) == \
            direct.model["by_task"].get(task, {}).get("calls", 0), task


async def test_the_policy_previews_large_rich_documents_only(tmp_path: Path) -> None:
    """OSMOSE_PREVIEW_MIN_PAGES: a rich-tier document of at least that many pages is previewed
    without being asked; a FAST one never is (there is nothing to enrich)."""
    deck = build_deck(tmp_path / "deck.pptx")   # 10 slides
    with ChatServer(latency=LatencyModel(time_scale=0)) as llm, TeiServer(latency=LatencyModel(time_scale=0)) as tei:
        from osmose.config import TriagePolicy

        stages: list[str] = []
        settings = _settings(tmp_path, "policy", llm, tei, triage=TriagePolicy(preview_min_pages=10))
        async with InProcessPipeline(settings) as pipeline:
            deep = await pipeline.ingest_one(deck, tenant=TENANT, tier=pb.TIER_STANDARD,
                                             progress=lambda _i, stage: stages.append(stage))
            fast = await pipeline.ingest_one(deck, tenant="other", tier=pb.TIER_FAST,
                                             progress=lambda _i, stage: stages.append(f"fast:{stage}"))
        small = _settings(tmp_path, "small", llm, tei, triage=TriagePolicy(preview_min_pages=11))
        async with InProcessPipeline(small) as pipeline:
            plain = await pipeline.ingest_one(deck, tenant=TENANT, tier=pb.TIER_STANDARD)
    assert deep.status == fast.status == plain.status == "ok"
    assert stages[:3] == ["triage", "embedder", "persister"] and "searchable" in stages
    enrichment = stages[stages.index("searchable") + 1:stages.index("done")]
    assert enrichment[:2] == ["vision", "extractor"] and enrichment[-1] == "persister"   # no second triage
    assert deep.tier == "standard" and "searchable" in deep.seconds
    assert fast.tier == "fast" and "searchable" not in fast.seconds and "fast:searchable" not in stages
    assert plain.tier == "standard" and "searchable" not in plain.seconds


async def test_a_backlog_is_searchable_before_its_enrichment(tmp_path: Path) -> None:
    """One document slot: the second deck's preview pass runs while the first deck's enrichment
    waits on the model server (held until both are searchable), so the backlog is searchable first."""
    decks = [build_deck(tmp_path / "a.pptx"),
             build_deck(tmp_path / "b.pptx", change="Microsoft Sentinel now also reads Defender for Cloud")]
    with ChatServer(latency=LatencyModel(time_scale=0)) as llm, TeiServer(latency=LatencyModel(time_scale=0)) as tei:
        events: list[tuple[int, str]] = []
        both = anyio.Event()

        def progress(index: int, stage: str) -> None:
            if stage in ("searchable", "done"):
                events.append((index, stage))
            if sum(1 for _, s in events if s == "searchable") == 2:
                both.set()

        llm.hold()
        async with InProcessPipeline(_settings(tmp_path, "backlog", llm, tei), max_in_flight=1) as pipeline:
            reports: list[IngestReport] = []

            async def ingest() -> None:
                async for report in pipeline.ingest(decks, tenant=TENANT, tier=pb.TIER_DEEP, progress=progress,
                                                    preview=True):
                    reports.append(report)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(ingest)
                with anyio.fail_after(120):
                    await both.wait()
                assert not reports and [s for _, s in events] == ["searchable", "searchable"]
                hits = await pipeline.search("Defender for Cloud", tenant=TENANT, limit=1)
                llm.release()
    assert hits and hits[0].file == "b.pptx"
    assert [r.status for r in reports] == ["ok", "ok"] and {r.tier for r in reports} == {"deep"}
    assert sorted(s for _, s in events[2:]) == ["done", "done"]
