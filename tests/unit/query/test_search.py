"""Search returns each hit's concepts and their 1-hop neighbours with the slides behind them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from osmose import ids
from osmose.query import Searcher, hit_as_dict
from osmose.stores.graph import (
    ConceptRow,
    DocumentGraph,
    DocumentRow,
    MentionRow,
    RelationRow,
    SegmentRow,
    SlideRow,
)
from osmose.stores.sqlite_graph import SqliteGraphStore
from osmose.stores.vectors import VectorHit
from osmose.v1 import services_pb2 as spb

pytestmark = pytest.mark.anyio


class OneVector:
    async def embed_texts(self, texts: list[str], *, scope: str = "") -> Any:
        return SimpleNamespace(vectors=np.ones((len(texts), 4), dtype=np.float32))


class FixedHits:
    """A vector store whose search returns the given (doc_id, slide, text) payloads in order."""

    def __init__(self, hits: list[tuple[str, int, str]]) -> None:
        self.hits = hits

    async def hybrid_search(self, tenant: str, dense: list[float], sparse: Any, limit: int) -> list[VectorHit]:
        return [VectorHit(str(i), 1.0 / (i + 1), {"tenant": tenant, "doc_id": d, "slide": n, "text": t,
                                                  "file": f"{d}.pptx"})
                for i, (d, n, t) in enumerate(self.hits)][:limit]


def deck(doc_id: str, slides: int, mentions: dict[str, dict[int, int]], relations: list[tuple[str, str, int]]) -> DocumentGraph:
    segment = ids.segment_id(doc_id, 0)
    return DocumentGraph(
        tenant="acme",
        document=DocumentRow(doc_id, f"{doc_id}.pptx", doc_id, "pptx", "en", "deep", slides, "0" * 64),
        slides=[SlideRow(ids.slide_id(doc_id, n), n, f"{doc_id} slide {n}", segment) for n in range(1, slides + 1)],
        segments=[SegmentRow(segment, 0, "", tuple(range(1, slides + 1)))],
        concepts=[ConceptRow(k, k.upper(), "ENTITY") for k in mentions],
        mentions=[MentionRow(k, n, c) for k, per in mentions.items() for n, c in per.items()],
        relations=[RelationRow(a, b, "CO_OCCURS", tuple(f"e{i}" for i in range(w))) for a, b, w in relations],
    )


@pytest.fixture
async def graph(tmp_path: Path, anyio_backend: str) -> AsyncIterator[SqliteGraphStore]:
    store = SqliteGraphStore(tmp_path / "graph.sqlite")
    await store.write_document(deck("d1", 3, {"ztna": {1: 3}, "vpn": {1: 1, 2: 4}, "mfa": {3: 2}},
                                    [("ztna", "vpn", 1), ("ztna", "mfa", 2)]))
    await store.write_document(deck("d2", 2, {"mfa": {1: 5}, "sso": {2: 1}}, [("mfa", "sso", 1)]))
    yield store
    await store.close()


async def test_hits_carry_concepts_and_related_concepts_with_their_slides(graph: SqliteGraphStore) -> None:
    searcher = Searcher(embeddings=OneVector(), vectors=FixedHits([("d1", 1, "zero trust"), ("d2", 2, "sso")]),
                        graph=graph)
    hits = await searcher.search("zero trust", tenant="acme", limit=2)

    top = hits[0]
    assert (top.doc_id, top.slide, list(top.concepts)) == ("d1", 1, ["ZTNA", "VPN"])
    # VPN is on the hit's slide already; MFA is one hop from ZTNA, read on where it is mentioned most.
    support = [spb.SupportingSlide(doc_id="d2", file="d2.pptx", slide=1, title="d2 slide 1"),
               spb.SupportingSlide(doc_id="d1", file="d1.pptx", slide=3, title="d1 slide 3")]
    assert list(top.related) == [spb.RelatedConcept(name="MFA", canonical_key="mfa", kind="CO_OCCURS", weight=2.0,
                                                    via="ZTNA", slides=support)]
    assert list(hits[1].related) == [spb.RelatedConcept(name="MFA", canonical_key="mfa", kind="CO_OCCURS",
                                                        weight=1.0, via="SSO", slides=support)]
    as_json = hit_as_dict(top)
    assert list(as_json) == ["doc_id", "file", "slide", "score", "text", "concepts", "related"]
    assert as_json["related"][0]["slides"][0] == {"doc_id": "d2", "file": "d2.pptx", "slide": 1, "title": "d2 slide 1"}


async def test_other_tenants_graph_is_not_searched(graph: SqliteGraphStore) -> None:
    searcher = Searcher(embeddings=OneVector(), vectors=FixedHits([("d1", 1, "zero trust")]), graph=graph)
    # globex's graph has no committed d1: a vector hit for it is not shown at all (nor acme's graph)
    assert await searcher.search("zero trust", tenant="globex", limit=1) == []


async def test_a_hit_ranks_concepts_by_salience_and_never_a_generic_word_above_its_subject(
        tmp_path: Path) -> None:
    """The real extractor and the miner's merges, stored and searched: "team" and "teams" are said
    far more often than "Security Team", yet the hit shows the subject first."""
    from osmose.services.extractor.extract import extract_concepts
    from osmose.services.miner.canonical import merge_acronyms, merge_by_key
    from osmose.v1 import document_pb2 as pb

    slides = [["The Security Team reviews every access request", "Each team owns its service",
               "Teams rotate on call"],
              ["A team lead approves changes", "The Security Team audits the identity provider",
               "Every team writes runbooks"],
              ["Two teams share the pager", "The team meets weekly", "Security Team escalations go to the CISO"],
              ["Which team owns the firewall?", "Teams publish dashboards", "One team per product"]]
    doc = pb.Document(doc_id="d9", title="Access reviews", language="en")
    for n, lines in enumerate(slides, start=1):
        title = ("Access reviews", "Approvals", "Escalations", "Ownership")[n - 1]
        doc.slides.append(pb.Slide(number=n, slide_id=ids.slide_id("d9", n), title=title,
                                   blocks=[pb.TextBlock(text=line) for line in lines]))
    concepts, _ = merge_by_key(extract_concepts(doc, [], language="en"), "en")
    concepts, _ = merge_acronyms(concepts, "en")
    generic = [c.name.lower() for c in concepts if c.name.lower() in {"team", "teams"}]
    assert generic and "security team" in {c.name.lower() for c in concepts}
    graph = DocumentGraph(
        tenant="acme",
        document=DocumentRow("d9", "d9.pptx", "d9", "pptx", "en", "deep", 4, "9" * 64),
        slides=[SlideRow(ids.slide_id("d9", n), n, f"slide {n}", ids.segment_id("d9", 0)) for n in range(1, 5)],
        segments=[SegmentRow(ids.segment_id("d9", 0), 0, "", (1, 2, 3, 4))],
        concepts=[ConceptRow(c.canonical_key, c.name, "TOPIC", tuple(c.aliases), c.score) for c in concepts],
        mentions=[MentionRow(c.canonical_key, m.slide, m.count) for c in concepts for m in c.mentions],
    )
    store = SqliteGraphStore(tmp_path / "graph.sqlite")
    try:
        await store.write_document(graph)
        searcher = Searcher(embeddings=OneVector(), vectors=FixedHits([("d9", 1, "security team")]), graph=store)
        (hit,) = await searcher.search("security team", tenant="acme", limit=1)
    finally:
        await store.close()
    shown = [name.lower() for name in hit.concepts]
    assert any(word in shown for word in generic)
    assert all(shown.index("security team") < shown.index(word) for word in generic if word in shown)
    saliences = {c.name.lower(): c.score for c in concepts}
    assert [saliences[n] for n in shown] == sorted((saliences[n] for n in shown), reverse=True)
