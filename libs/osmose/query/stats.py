"""Per-tenant counts: the graph's documents, slides, segments, concepts and relations plus
the chunks in the vector index, as one :class:`osmose.v1.services_pb2.StatsResponse` on
every path (in-process, the Stats RPC, the CLI)."""

from __future__ import annotations

from osmose.stores.graph import GraphStore
from osmose.stores.vectors import VectorStore
from osmose.v1 import services_pb2 as spb

__all__ = ["COLUMNS", "stats_as_table", "tenant_stats"]

#: the counts of one tenant, in the order they are shown
COLUMNS: tuple[str, ...] = ("documents", "slides", "segments", "concepts", "relations", "chunks")


async def tenant_stats(*, graph: GraphStore, vectors: VectorStore, tenant: str | None) -> spb.StatsResponse:
    """Counts of `tenant` (every tenant when None), tenants sorted by name."""
    counts = await graph.stats(tenant)
    chunks = dict(await vectors.count(tenant))
    # The vectors of a document not committed yet (written, marker pending) are not counted,
    # as the graph does not count its document: visible in both stores or in neither.
    for name, doc_ids in (await graph.pending_documents(tenant)).items():
        for doc_id in doc_ids:
            chunks[name] = chunks.get(name, 0) - len(await vectors.document_payloads(name, doc_id))
    response = spb.StatsResponse()
    for name in sorted(set(counts) | {t for t, n in chunks.items() if n > 0}):
        c = counts.get(name)
        response.tenants.add(
            tenant=name, documents=c.documents if c else 0, slides=c.slides if c else 0,
            segments=c.segments if c else 0, concepts=c.concepts if c else 0,
            relations=c.relations if c else 0, chunks=chunks.get(name, 0))
    return response


def stats_as_table(response: spb.StatsResponse) -> dict[str, dict[str, int]]:
    """``{tenant: {column: count}}``, what `osmose stats --json` prints."""
    return {t.tenant: {c: int(getattr(t, c)) for c in COLUMNS} for t in response.tenants}
