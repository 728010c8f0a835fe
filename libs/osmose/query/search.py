"""Hybrid search: dense vectors + keyword (sparse, BM25-like) candidates fused by
reciprocal rank, then an exact-phrase boost, then the graph around each hit.
Only committed documents are searched (:meth:`GraphStore.visible_documents`; the graph
reads leave uncommitted documents out by themselves).

The keyword side is what finds an exact sentence in Japanese or Hebrew where the
English embedding model is weak; the phrase boost makes a verbatim match win
over a merely similar chunk.

The graph side (three batched reads for the whole result page, whatever the
number of hits): the concepts mentioned on each hit's slide, their 1-hop
RELATED_TO neighbours, and for each neighbour the slides that mention it most
(other than the hit's own), i.e. where to read on.

Hits are :class:`osmose.v1.services_pb2.SearchHit` messages, the one type a hit has
on every path: the in-process host returns them, the persister's Search RPC sends
them as they are, and the CLI prints them (:func:`osmose.query.hits_as_json`).
"""

from __future__ import annotations

from osmose.embeddings.cached import CachedEmbeddings
from osmose.stores.graph import GraphStore
from osmose.stores.vectors import VectorStore
from osmose.text.names import surface_key
from osmose.text.sparse import sparse_query
from osmose.v1 import services_pb2 as spb

__all__ = ["Searcher"]

_PHRASE_BOOST = 1.0   # RRF scores are < 0.1, so a verbatim match ranks first
# Graph context per hit: names shown, concepts expanded, neighbours kept, slides per neighbour.
CONCEPTS_SHOWN = 10
CONCEPTS_EXPANDED = 5
RELATED_PER_CONCEPT = 3
RELATED_PER_HIT = 5
SLIDES_PER_RELATED = 3


class Searcher:
    def __init__(self, *, embeddings: CachedEmbeddings, vectors: VectorStore, graph: GraphStore) -> None:
        self.embeddings = embeddings
        self.vectors = vectors
        self.graph = graph

    async def search(self, query: str, *, tenant: str, limit: int = 5) -> list[spb.SearchHit]:
        query = query.strip()
        if not query or limit < 1:
            return []
        dense = (await self.embeddings.embed_texts([query], scope=tenant)).vectors[0]
        candidates = await self.vectors.hybrid_search(tenant, dense.tolist(), sparse_query(query),
                                                      limit=max(limit * 4, 20))
        # Only documents whose graph commit marker is set: the marker is written after the
        # vectors, so a document whose write stopped half-way is invisible, not half visible.
        visible = await self.graph.visible_documents(tenant, list({h.payload["doc_id"] for h in candidates}))
        phrase = surface_key(query)
        best: dict[tuple[str, int], spb.SearchHit] = {}
        for hit in candidates:
            p = hit.payload
            if p["doc_id"] not in visible:
                continue
            score = hit.score + (_PHRASE_BOOST if phrase and phrase in surface_key(p.get("text", "")) else 0.0)
            key = (p["doc_id"], int(p["slide"]))
            if key not in best or score > best[key].score:
                best[key] = spb.SearchHit(doc_id=p["doc_id"], file=p.get("file", ""), slide=int(p["slide"]),
                                      score=round(score, 6), text=p.get("text", ""))
        hits = sorted(best.values(), key=lambda h: (-h.score, h.doc_id, h.slide))[:limit]
        await self._add_graph_context(tenant, hits)
        return hits

    async def _add_graph_context(self, tenant: str, hits: list[spb.SearchHit]) -> None:
        mentions = await self.graph.mentions_on_slides(tenant, [(h.doc_id, h.slide) for h in hits])
        expanded: dict[tuple[str, int], list[tuple[str, str]]] = {}
        for hit in hits:
            found = mentions.get((hit.doc_id, hit.slide), [])
            hit.concepts[:] = list(dict.fromkeys(m.name for m in found))[:CONCEPTS_SHOWN]
            expanded[(hit.doc_id, hit.slide)] = [(m.canonical_key, m.name) for m in found[:CONCEPTS_EXPANDED]]
        keys = list(dict.fromkeys(k for pairs in expanded.values() for k, _ in pairs))
        if not keys:
            return
        neighbours = await self.graph.related_concepts(tenant, keys, limit=RELATED_PER_CONCEPT)
        related_keys = list(dict.fromkeys(r.canonical_key for rs in neighbours.values() for r in rs))
        # One slide more than shown: the hit's own slide is left out.
        slides = await self.graph.slides_mentioning(tenant, related_keys, limit=SLIDES_PER_RELATED + 1)
        for hit in hits:
            own = {m.canonical_key for m in mentions.get((hit.doc_id, hit.slide), [])}
            picked: dict[str, spb.RelatedConcept] = {}
            for key, name in expanded[(hit.doc_id, hit.slide)]:
                for r in neighbours.get(key, []):
                    if r.canonical_key in own or r.canonical_key in picked:
                        continue
                    support = [
                        spb.SupportingSlide(doc_id=s.doc_id, file=s.file_name, slide=s.number, title=s.title)
                        for s in slides.get(r.canonical_key, [])
                        if (s.doc_id, s.number) != (hit.doc_id, hit.slide)
                    ][:SLIDES_PER_RELATED]
                    picked[r.canonical_key] = spb.RelatedConcept(name=r.name, canonical_key=r.canonical_key, kind=r.kind,
                                                                 weight=r.weight, via=name, slides=support)
            hit.related.extend(sorted(picked.values(), key=lambda r: (-r.weight, r.name))[:RELATED_PER_HIT])
