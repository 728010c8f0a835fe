"""The graph store interface and the rows one document writes.

Graph model (tenant id on every node and edge; every query filters on it)::

    (:Document {tenant, doc_id, file_name, title, format, language, tier, slides, sha256})
    (:Document)-[:HAS_SLIDE]->(:Slide {tenant, slide_id, doc_id, number, title, segment_id})
    (:Document)-[:HAS_SEGMENT]->(:Segment {tenant, segment_id, doc_id, index, title, slide_numbers})
    (:Concept {tenant, canonical_key, name, type, aliases})-[:MENTIONED_IN {count}]->(:Slide)
    (:Document)-[:MENTIONS {count, name, type, aliases}]->(:Concept)      provenance
    (:Concept)-[:RELATED_TO {kind, weight, evidence}]->(:Concept)
    (:Document)-[:RECORDED]->(:Merge {from_key, into_key, reason, similarity})-[:INTO]->(:Concept)
    (:Concept)-[:KNOWN_AS]->(:Alias {key})                                 lookup keys (find_concepts)

A concept node is shared by every document of a tenant that mentions it (same
canonical key) and exists exactly while one does; its name and type are the
ones most of those documents use, its aliases the union. A relation's weight is
the number of distinct evidence ids across documents, derived from the set,
never incremented, so replays cannot double-count. What a document may
contribute and how shared nodes are resolved is in :mod:`osmose.stores.graph_rules`,
applied identically by every implementation (the contract tests compare them).
The Neo4j layout, with a diagram, is in docs/graph-model.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "ConceptMention",
    "ConceptResolver",
    "ConceptRow",
    "DocumentGraph",
    "DocumentRow",
    "GraphStore",
    "MentionRow",
    "MergeRow",
    "RelatedConcept",
    "RelationRow",
    "SegmentRow",
    "SlideMention",
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


@dataclass(frozen=True)
class ConceptMention:
    """A concept as mentioned on one slide."""

    canonical_key: str
    name: str
    count: int


@dataclass(frozen=True)
class SlideMention:
    """A slide mentioning a concept."""

    doc_id: str
    file_name: str
    number: int
    title: str
    count: int


class ConceptResolver(Protocol):
    """Maps a document's concepts onto the tenant's existing ones, inside the store's write
    transaction (:mod:`osmose.services.persister.resolve`): what it reads and what it decides
    are one atomic step, so two writers cannot both miss each other's concepts."""

    def lookup_keys(self, graph: DocumentGraph) -> list[str]:
        """The keys to look up (:meth:`GraphStore.find_concepts`) before deciding."""
        ...

    def apply(self, graph: DocumentGraph, found: dict[str, list[ConceptRow]]) -> DocumentGraph:
        """`graph` with its concepts mapped, given what the lookup found. Pure: the store
        may call it again when it retries the transaction."""
        ...


class GraphStore(Protocol):
    async def write_document(self, graph: DocumentGraph, *, committed: bool = True,
                             resolver: ConceptResolver | None = None) -> None:
        """Make the tenant's graph hold exactly this document's contribution:
        upsert its nodes and edges and remove what an earlier version of the same
        document wrote and this one does not (stale mentions/relations/evidence).
        Concepts left with no mention in the tenant are removed. Idempotent.
        Rows the document may not contribute are dropped (:func:`osmose.stores.graph_rules.prepare`).

        ``committed=False`` writes the document hidden: every read below except
        :meth:`get_document`, :meth:`document_ids` and :meth:`find_concepts` ignores it (its
        document, slides, segments, mentions and relation evidence; concepts only it mentions)
        until :meth:`commit_document` sets its marker. The persister writes hidden, then the
        vectors, then the marker: a document is visible in both stores or in neither.

        ``resolver``: the document's concepts are resolved against the tenant's inside the
        write transaction, which writers of the same tenant take one at a time."""
        ...

    async def commit_document(self, tenant: str, doc_id: str) -> bool:
        """Set the document's commit marker (written last): it becomes visible. False if the
        document is not in the graph. Idempotent."""
        ...

    async def visible_documents(self, tenant: str, doc_ids: list[str]) -> set[str]:
        """Those of `doc_ids` that are in the graph with their commit marker set."""
        ...

    async def pending_documents(self, tenant: str | None = None) -> dict[str, list[str]]:
        """Documents written without their commit marker yet, per tenant (sorted)."""
        ...

    async def delete_document(self, tenant: str, doc_id: str) -> bool:
        """Remove the document and everything only it contributed. True if it existed."""
        ...

    async def get_document(self, tenant: str, doc_id: str) -> DocumentRow | None: ...

    async def document_ids(self, tenant: str) -> list[str]:
        """Every document of `tenant`, sorted (what erasing the tenant goes through)."""
        ...

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

    async def mentions_on_slides(
        self, tenant: str, slides: list[tuple[str, int]]
    ) -> dict[tuple[str, int], list[ConceptMention]]:
        """The concepts mentioned on each (doc_id, slide number): most mentioned first, then
        name, then key (the order of :meth:`concepts_for_slides`, with keys and counts)."""
        ...

    async def slides_mentioning(
        self, tenant: str, canonical_keys: list[str], limit: int = 3
    ) -> dict[str, list[SlideMention]]:
        """Up to `limit` slides mentioning each concept: most mentions first, then doc_id, number."""
        ...

    async def find_concepts(self, tenant: str, keys: list[str]) -> dict[str, list[ConceptRow]]:
        """For each key, the tenant's concepts found under it: by canonical key, or by one of
        their lookup keys (:func:`osmose.stores.graph_rules.lookup_keys`: keys of the names
        and aliases documents gave them, the canonical key without spaces). Each list is
        sorted by canonical key; a key nothing is found under maps to []."""
        ...

    async def close(self) -> None: ...
