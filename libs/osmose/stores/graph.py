"""The graph store interface and the rows one document writes.

Graph model (tenant id on every node and edge; every query filters on it)::

    (:Document {tenant, doc_id, file_name, title, format, language, tier, slides, sha256})
    (:Document)-[:HAS_SLIDE]->(:Slide {tenant, slide_id, doc_id, number, title, segment_id})
    (:Document)-[:HAS_SEGMENT]->(:Segment {tenant, segment_id, doc_id, index, title, slide_numbers})
    (:Concept {tenant, canonical_key, name, type, aliases})-[:MENTIONED_IN {count}]->(:Slide)
    (:Concept)-[:RELATED_TO {kind, weight, evidence}]->(:Concept)

A concept node is shared by every document of a tenant that mentions it (same
canonical key). A relation's weight is derived from its set of evidence ids
across documents, never incremented, so replays cannot double-count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "ConceptRow",
    "DocumentGraph",
    "DocumentRow",
    "GraphStore",
    "MentionRow",
    "MergeRow",
    "RelatedConcept",
    "RelationRow",
    "SegmentRow",
    "SlideRow",
    "TenantCounts",
]


@dataclass(frozen=True)
class DocumentRow:
    doc_id: str
    file_name: str
    title: str
    format: str       # "pptx" | "pdf" | "ppt"
    language: str
    tier: str         # "fast" | "standard" | "deep"
    slides: int
    sha256: str


@dataclass(frozen=True)
class SlideRow:
    slide_id: str
    number: int
    title: str
    segment_id: str


@dataclass(frozen=True)
class SegmentRow:
    segment_id: str
    index: int
    title: str
    slide_numbers: tuple[int, ...]


@dataclass(frozen=True)
class ConceptRow:
    canonical_key: str
    name: str
    type: str                     # "ENTITY", "PRACTICE", ... (ConceptType without prefix)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class MentionRow:
    canonical_key: str
    slide_number: int
    count: int


@dataclass(frozen=True)
class RelationRow:
    source_key: str
    target_key: str
    kind: str                     # "CO_OCCURS" | "SIMILAR" | "TYPED"
    evidence: tuple[str, ...]     # ids; weight = number of distinct evidence ids across documents
    label: str = ""


@dataclass(frozen=True)
class MergeRow:
    from_key: str
    into_key: str
    reason: str
    similarity: float


@dataclass(frozen=True)
class DocumentGraph:
    """Everything one document contributes to a tenant's graph."""

    tenant: str
    document: DocumentRow
    slides: list[SlideRow] = field(default_factory=list)
    segments: list[SegmentRow] = field(default_factory=list)
    concepts: list[ConceptRow] = field(default_factory=list)
    mentions: list[MentionRow] = field(default_factory=list)
    relations: list[RelationRow] = field(default_factory=list)
    merges: list[MergeRow] = field(default_factory=list)


@dataclass(frozen=True)
class TenantCounts:
    documents: int = 0
    slides: int = 0
    segments: int = 0
    concepts: int = 0
    relations: int = 0


@dataclass(frozen=True)
class RelatedConcept:
    name: str
    canonical_key: str
    kind: str
    weight: float


class GraphStore(Protocol):
    async def write_document(self, graph: DocumentGraph) -> None:
        """Make the tenant's graph hold exactly this document's contribution:
        upsert its nodes and edges and remove what an earlier version of the same
        document wrote and this one does not (stale mentions/relations/evidence).
        Concepts left with no mention in the tenant are removed. Idempotent."""
        ...

    async def delete_document(self, tenant: str, doc_id: str) -> bool:
        """Remove the document and everything only it contributed. True if it existed."""
        ...

    async def get_document(self, tenant: str, doc_id: str) -> DocumentRow | None: ...

    async def get_concept(self, tenant: str, canonical_key: str) -> ConceptRow | None:
        """The tenant's concept node: preferred name, type, aliases across documents."""
        ...

    async def stats(self, tenant: str | None = None) -> dict[str, TenantCounts]:
        """Counts per tenant (only `tenant` when given)."""
        ...

    async def concepts_for_slides(
        self, tenant: str, slides: list[tuple[str, int]]
    ) -> dict[tuple[str, int], list[str]]:
        """Concept names mentioned on each (doc_id, slide number), most mentioned first."""
        ...

    async def related_concepts(self, tenant: str, canonical_keys: list[str], limit: int = 10) -> dict[str, list[RelatedConcept]]:
        """1-hop RELATED_TO neighbours of each key, heaviest first."""
        ...

    async def close(self) -> None: ...
