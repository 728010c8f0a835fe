"""Graph + vectors as one: a document is visible to search and stats in both stores or in
neither, and cross-document concept resolution does not depend on two persisters' timing.

Run against every graph store of the contract suite (embedded SQLite; Neo4j at
OSMOSE_TEST_GRAPH_URI) with the embedded Qdrant and the local embedding model. The
vector-write fault is injected by a wrapper around the real vector store that fails one
call (as a Qdrant outage or a crash would), before or after the points are written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from osmose import ids
from osmose.cache import SqliteCache
from osmose.embeddings.cached import CachedEmbeddings
from osmose.embeddings.minilm import MiniLMEmbeddings
from osmose.errors import BackendUnavailableError
from osmose.query import Searcher, stats_as_table, tenant_stats
from osmose.query.erase import erase_tenant
from osmose.services.persister import PersisterStage
from osmose.services.persister.rows import document_graph
from osmose.stores.graph import GraphStore, TenantCounts
from osmose.stores.neo4j_graph import Neo4jGraphStore
from osmose.stores.qdrant_store import QdrantVectorStore
from osmose.stores.vectors import VectorPoint, VectorStore
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb
from tests.contract.test_graph_store import IMPLEMENTATIONS, new_tenant, opened

pytestmark = pytest.mark.anyio

TEXTS = ["Zero trust network access replaces the VPN for contractors.",
         "Multi-factor authentication is enforced for every administrator.",
         "Quarterly access reviews close dormant accounts."]


@pytest.fixture(scope="module")
def model() -> MiniLMEmbeddings:
    return MiniLMEmbeddings()


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
async def stores(request: pytest.FixtureRequest, tmp_path: Path,
                 anyio_backend: str) -> AsyncIterator[tuple[GraphStore, VectorStore]]:
    async for graph in opened(request.param, tmp_path):
        vectors = QdrantVectorStore(path=tmp_path / "qdrant")
        try:
            yield graph, vectors
        finally:
            await vectors.close()


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
async def two_graphs(request: pytest.FixtureRequest, tmp_path: Path,
                     anyio_backend: str) -> AsyncIterator[tuple[GraphStore, GraphStore]]:
    """Two store objects on the same database (two connections), as two persister processes have."""
    async for first in opened(request.param, tmp_path):
        async for second in opened(request.param, tmp_path):
            yield first, second


class FailingOnce:
    """The real vector store, whose next `replace_document` fails once: before writing
    anything (`after_write=False`, a Qdrant outage) or after writing (a crash before the
    commit marker)."""

    def __init__(self, inner: VectorStore, *, after_write: bool) -> None:
        self.inner = inner
        self.after_write = after_write
        self.failed = False

    async def replace_document(self, tenant: str, doc_id: str, points: list[VectorPoint]) -> None:
        if not self.failed:
            self.failed = True
            if self.after_write:
                await self.inner.replace_document(tenant, doc_id, points)
            raise BackendUnavailableError("injected: vector store write failed")
        await self.inner.replace_document(tenant, doc_id, points)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def work_item(tenant: str, doc_id: str, *, model: MiniLMEmbeddings | None = None,
              concepts: dict[str, tuple[str, tuple[str, ...]]] | None = None,
              texts: list[str] = TEXTS) -> ppb.WorkItem:
    """A finished work item: slides with `texts`, one segment, `concepts` (key -> name,
    aliases) mentioned on every slide, one embedded chunk per slide."""
    item = ppb.WorkItem(job_id=f"job-{doc_id}", tenant=tenant)
    doc = item.document
    doc.doc_id, doc.file_name, doc.title = doc_id, f"{doc_id}.pptx", f"Deck {doc_id}"
    doc.format, doc.language, doc.sha256 = pb.SOURCE_FORMAT_PPTX, "en", "0" * 64
    item.plan.tier = pb.TIER_STANDARD
    segment = ids.segment_id(doc_id, 0)
    item.segments.add(segment_id=segment, index=0, title="Access", slide_numbers=list(range(1, len(texts) + 1)))
    vectors = model.embed_sync(texts) if model is not None else [[0.0] * 383 + [1.0]] * len(texts)
    for n, (text, vector) in enumerate(zip(texts, vectors, strict=True), start=1):
        doc.slides.add(number=n, title=f"Slide {n}", slide_id=ids.slide_id(doc_id, n))
        digest = ids.text_hash(text)
        item.chunks.add(chunk_id=ids.chunk_id(tenant, doc_id, n, 0, digest), slide=n, segment_id=segment, index=0,
                        text=text, embed_text=text, text_sha256=digest, vector=list(vector))
    for key, (name, aliases) in (concepts or {}).items():
        item.concepts.add(canonical_key=key, name=name, type=pb.CONCEPT_TYPE_ENTITY, aliases=list(aliases),
                          mentions=[pb.Mention(slide=n, count=1) for n in range(1, len(texts) + 1)])
    return item


async def _counts(graph: GraphStore, vectors: VectorStore, tenant: str) -> dict[str, int]:
    table = stats_as_table(await tenant_stats(graph=graph, vectors=vectors, tenant=tenant))
    return table.get(tenant, {})


CONCEPTS = {"zero trust": ("Zero Trust", ()), "mfa": ("MFA", ())}


@pytest.mark.parametrize("after_write", [False, True], ids=["vectors-not-written", "marker-not-written"])
async def test_a_failed_vector_write_leaves_the_document_invisible_until_replayed(
        stores: tuple[GraphStore, VectorStore], model: MiniLMEmbeddings, tmp_path: Path, after_write: bool) -> None:
    graph, vectors = stores
    tenant = new_tenant("consistency")
    searcher = Searcher(embeddings=CachedEmbeddings(model, SqliteCache(tmp_path / "cache.sqlite")),
                        vectors=vectors, graph=graph)
    item = work_item(tenant, "d" * 32, model=model, concepts=CONCEPTS)

    failing = PersisterStage(graph=graph, vectors=FailingOnce(vectors, after_write=after_write))
    with pytest.raises(BackendUnavailableError):
        await failing.process(ppb.WorkItem.FromString(item.SerializeToString()))
    # The graph holds the document, unmarked: nothing of it is visible, in either store.
    assert await graph.get_document(tenant, item.document.doc_id) is not None
    assert await graph.pending_documents(tenant) == {tenant: [item.document.doc_id]}
    assert await _counts(graph, vectors, tenant) in ({}, dict.fromkeys(
        ("documents", "slides", "segments", "concepts", "relations", "chunks"), 0))
    assert await searcher.search("zero trust network access", tenant=tenant) == []
    assert await graph.slides_mentioning(tenant, ["mfa"]) == {"mfa": []}
    assert (await graph.mentions_on_slides(tenant, [(item.document.doc_id, 1)]))[(item.document.doc_id, 1)] == []

    # The replay (redelivery or `dlq replay`) writes all of it: visible in both stores at once.
    await PersisterStage(graph=graph, vectors=vectors).process(ppb.WorkItem.FromString(item.SerializeToString()))
    assert await graph.pending_documents(tenant) == {}
    assert await _counts(graph, vectors, tenant) == {"documents": 1, "slides": 3, "segments": 1, "concepts": 2,
                                                     "relations": 0, "chunks": 3}
    hits = await searcher.search("zero trust network access", tenant=tenant)
    assert hits and hits[0].doc_id == item.document.doc_id and set(hits[0].concepts) == {"Zero Trust", "MFA"}


@pytest.mark.parametrize("after_write", [False, True], ids=["vectors-not-written", "graph-not-written"])
async def test_enriching_a_visible_document_never_hides_it(
        stores: tuple[GraphStore, VectorStore], model: MiniLMEmbeddings, tmp_path: Path, after_write: bool) -> None:
    """A preview's FAST rows replaced by its enrichment: searchable before, during (a failed
    vector write, as a crash between the two stores) and after; the replay completes it. A
    preview pass of a document already visible writes nothing (never lowers it)."""
    graph, vectors = stores
    tenant = new_tenant("consistency")
    searcher = Searcher(embeddings=CachedEmbeddings(model, SqliteCache(tmp_path / "cache.sqlite")),
                        vectors=vectors, graph=graph)
    doc_id = "e" * 32
    other = new_tenant("consistency")   # the same file, enriched in another tenant: no reason to skip here
    await PersisterStage(graph=graph, vectors=vectors).process(work_item(other, doc_id, concepts=CONCEPTS))
    preview = work_item(tenant, doc_id, model=model)
    preview.plan.tier, preview.plan.enrich_tier = pb.TIER_FAST, pb.TIER_DEEP
    await PersisterStage(graph=graph, vectors=vectors).process(preview)
    assert [h.doc_id for h in await searcher.search("zero trust network access", tenant=tenant)][:1] == [doc_id]
    assert (await graph.get_document(tenant, doc_id)).tier == "fast"  # type: ignore[union-attr]

    enriched = work_item(tenant, doc_id, model=model, concepts=CONCEPTS,
                         texts=[*TEXTS[:2], "Quarterly access reviews close dormant accounts of contractors."])
    enriched.plan.tier = pb.TIER_DEEP
    failing = PersisterStage(graph=graph, vectors=FailingOnce(vectors, after_write=after_write))
    with pytest.raises(BackendUnavailableError):
        await failing.process(ppb.WorkItem.FromString(enriched.SerializeToString()))
    assert await graph.pending_documents(tenant) == {}
    assert await graph.visible_documents(tenant, [doc_id]) == {doc_id}
    hits = await searcher.search("zero trust network access", tenant=tenant)
    assert hits and hits[0].doc_id == doc_id     # still found, with the preview's graph (no concepts yet)

    await PersisterStage(graph=graph, vectors=vectors).process(ppb.WorkItem.FromString(enriched.SerializeToString()))
    hits = await searcher.search("zero trust network access", tenant=tenant)
    assert hits[0].doc_id == doc_id and set(hits[0].concepts) == {"Zero Trust", "MFA"}
    assert (await graph.get_document(tenant, doc_id)).tier == "deep"  # type: ignore[union-attr]
    assert await _counts(graph, vectors, tenant) == {"documents": 1, "slides": 3, "segments": 1, "concepts": 2,
                                                     "relations": 0, "chunks": 3}
    texts = {p["text"] for p in await vectors.document_payloads(tenant, doc_id)}
    assert texts == {*TEXTS[:2], "Quarterly access reviews close dormant accounts of contractors."}

    # the same preview again (a re-ingest with --preview, or a late redelivery): nothing written
    await PersisterStage(graph=graph, vectors=vectors).process(ppb.WorkItem.FromString(preview.SerializeToString()))
    assert (await graph.get_document(tenant, doc_id)).tier == "deep"  # type: ignore[union-attr]
    assert {p["text"] for p in await vectors.document_payloads(tenant, doc_id)} == texts
    assert (await graph.get_document(other, doc_id)).tier == "standard"  # type: ignore[union-attr]


async def test_an_uncommitted_rewrite_hides_the_document_and_its_evidence(stores: tuple[GraphStore, VectorStore]) -> None:
    """Another document's reads stay exact while one is pending: its concepts, relation
    evidence and slides are left out, shared concepts stay (the other document mentions them)."""
    graph, vectors = stores
    tenant = new_tenant("consistency")
    persister = PersisterStage(graph=graph, vectors=vectors)
    shared = {"zero trust": ("Zero Trust", ())}
    await persister.process(work_item(tenant, "a" * 32, concepts=shared))
    hidden = work_item(tenant, "b" * 32, concepts={**shared, "sase": ("SASE", ())})
    hidden.relations.add(source_key="sase", target_key="zero trust", kind=pb.RELATION_KIND_CO_OCCURS,
                         evidence=["seg-b"])
    await graph.write_document(document_graph(hidden), committed=False)
    counts = (await graph.stats(tenant))[tenant]
    assert (counts.documents, counts.slides, counts.concepts, counts.relations) == (1, 3, 1, 0)
    assert await graph.related_concepts(tenant, ["zero trust"]) == {"zero trust": []}
    assert [s.doc_id for s in (await graph.slides_mentioning(tenant, ["zero trust"], limit=10))["zero trust"]] == \
        ["a" * 32] * 3
    assert await graph.visible_documents(tenant, ["a" * 32, "b" * 32, "c" * 32]) == {"a" * 32}
    assert await graph.commit_document(tenant, "b" * 32) is True
    assert await graph.commit_document(tenant, "c" * 32) is False
    counts = (await graph.stats(tenant))[tenant]
    assert (counts.documents, counts.slides, counts.concepts, counts.relations) == (2, 6, 2, 1)
    assert [r.canonical_key for r in (await graph.related_concepts(tenant, ["zero trust"]))["zero trust"]] == ["sase"]
    # every tenant at once (the operators' view) agrees
    assert (await graph.stats())[tenant] == counts


async def test_two_persisters_racing_on_the_same_concepts_share_one_node_each(
        two_graphs: tuple[GraphStore, GraphStore], tmp_path: Path) -> None:
    first, second = two_graphs
    vectors = QdrantVectorStore(path=tmp_path / "race-qdrant")
    try:
        names = {key: (key.title(), ()) for key in ("zero trust", "mfa", "vpn", "sase", "siem")}
        persisters = [PersisterStage(graph=g, vectors=vectors) for g in (first, second)]
        for _ in range(3):
            tenant = new_tenant("race")
            items = [work_item(tenant, c * 32, concepts=names) for c in "ab"]
            await asyncio.gather(*(p.process(i) for p, i in zip(persisters, items, strict=True)))
            counts = (await first.stats(tenant))[tenant]
            assert (counts.documents, counts.concepts) == (2, 5)
            found = await first.find_concepts(tenant, sorted(names))
            assert {k: [c.canonical_key for c in v] for k, v in found.items()} == {k: [k] for k in names}
            slides = await second.slides_mentioning(tenant, sorted(names), limit=10)
            assert all(sorted({s.doc_id for s in v}) == ["a" * 32, "b" * 32] for v in slides.values())
    finally:
        await vectors.close()


async def test_two_persisters_resolve_an_acronym_and_its_expansion_into_one_node(
        two_graphs: tuple[GraphStore, GraphStore], tmp_path: Path) -> None:
    """Resolution runs inside the write transaction: whichever commits second sees the
    first, so the pair always ends as one node (read before the write, both could miss)."""
    first, second = two_graphs
    vectors = QdrantVectorStore(path=tmp_path / "race-qdrant")
    try:
        persisters = [PersisterStage(graph=g, vectors=vectors) for g in (first, second)]
        survivors = set()
        for _ in range(4):
            tenant = new_tenant("kpi")
            acronym = work_item(tenant, "a" * 32, concepts={"kpi": ("KPI", ())})
            expansion = work_item(tenant, "b" * 32,
                                  concepts={"key performance indicator": ("Key Performance Indicator", ("KPI",))})
            await asyncio.gather(persisters[0].process(acronym), persisters[1].process(expansion))
            counts = (await first.stats(tenant))[tenant]
            assert (counts.documents, counts.concepts) == (2, 1)
            found = await second.find_concepts(tenant, ["kpi", "key performance indicator"])
            [node] = {c.canonical_key for cs in found.values() for c in cs}
            survivors.add(node)
            slides = (await first.slides_mentioning(tenant, [node], limit=10))[node]
            assert sorted({s.doc_id for s in slides}) == ["a" * 32, "b" * 32]
        assert survivors <= {"kpi", "key performance indicator"}
    finally:
        await vectors.close()


async def test_erasing_a_tenant_leaves_no_lock_behind(stores: tuple[GraphStore, VectorStore]) -> None:
    graph, vectors = stores
    tenant = new_tenant("erase")
    await PersisterStage(graph=graph, vectors=vectors).process(work_item(tenant, "e" * 32, concepts=CONCEPTS))
    await erase_tenant(graph=graph, vectors=vectors, tenant=tenant)
    assert await graph.stats(tenant) in ({}, {tenant: TenantCounts()})
    if isinstance(graph, Neo4jGraphStore):
        left = await graph._read("MATCH (n) WHERE n.tenant = $t RETURN count(n) AS n", t=tenant)
        assert left[0]["n"] == 0
