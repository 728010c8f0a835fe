"""Hybrid search: dense vectors + keyword (sparse, BM25-like) candidates fused by
reciprocal rank, then an exact-phrase boost, then the concepts of each hit's slide.

The keyword side is what finds an exact sentence in Japanese or Hebrew where the
English embedding model is weak; the phrase boost makes a verbatim match win
over a merely similar chunk.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field

from osmose.embeddings.cached import CachedEmbeddings
from osmose.stores.graph import GraphStore
from osmose.stores.vectors import VectorStore
from osmose.text.sparse import sparse_query

__all__ = ["SearchHit", "Searcher"]

_PHRASE_BOOST = 1.0   # RRF scores are < 0.1, so a verbatim match ranks first
_SPACE = re.compile(r"\s+")


def _normalise(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


@dataclass
class SearchHit:
    doc_id: str
    file: str
    slide: int
    score: float
    text: str
    concepts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class Searcher:
    def __init__(self, *, embeddings: CachedEmbeddings, vectors: VectorStore, graph: GraphStore) -> None:
        self.embeddings = embeddings
        self.vectors = vectors
        self.graph = graph

    async def search(self, query: str, *, tenant: str, limit: int = 5) -> list[SearchHit]:
        query = query.strip()
        if not query or limit < 1:
            return []
        dense = (await self.embeddings.embed_texts([query])).vectors[0]
        candidates = await self.vectors.hybrid_search(tenant, dense.tolist(), sparse_query(query),
                                                      limit=max(limit * 4, 20))
        phrase = _normalise(query)
        best: dict[tuple[str, int], SearchHit] = {}
        for hit in candidates:
            p = hit.payload
            score = hit.score + (_PHRASE_BOOST if phrase and phrase in _normalise(p.get("text", "")) else 0.0)
            key = (p["doc_id"], int(p["slide"]))
            if key not in best or score > best[key].score:
                best[key] = SearchHit(doc_id=p["doc_id"], file=p.get("file", ""), slide=int(p["slide"]),
                                      score=round(score, 6), text=p.get("text", ""))
        hits = sorted(best.values(), key=lambda h: (-h.score, h.doc_id, h.slide))[:limit]
        concepts = await self.graph.concepts_for_slides(tenant, [(h.doc_id, h.slide) for h in hits])
        for hit in hits:
            hit.concepts = concepts.get((hit.doc_id, hit.slide), [])[:10]
        return hits
