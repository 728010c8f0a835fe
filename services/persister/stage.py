"""The persister stage: the graph (hidden), then the vectors, then the graph's commit marker.

1. The graph write, with the document's concepts resolved against the tenant's
   existing ones inside the write transaction (acronym <-> expansion and
   near-duplicates across documents, recorded as merges:
   :mod:`osmose.services.persister.resolve`). The document is written hidden
   (``committed=False``): search and stats do not see it.
2. The vectors: an idempotent upsert that also removes what an earlier version
   of the same document left behind.
3. The commit marker, written last: from here on the document is visible to
   search and stats, in both stores at once.

A failure between 1 and 3 leaves the document invisible (not half visible);
the message's redelivery or a `dlq replay` redoes all three steps.

A document already visible (a preview's FAST rows, or an earlier ingest of the same
file) is replaced in place, never hidden: search must not lose it for a moment. The
vectors first (an upsert, then the stale points removed: the document always has its
points), then the graph in one transaction with its marker set. A failure in between
leaves the document visible with new vectors and its earlier graph; the redelivery
finishes the replacement. The preview pass of a document that is already visible
writes nothing (it is searchable already; its enrichment pass brings it up to date),
so re-ingesting a DEEP document with a preview never lowers it to FAST on the way.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from osmose.config import Settings
from osmose.services.persister.resolve import TenantResolver
from osmose.services.persister.rows import document_graph, vector_points
from osmose.stores.graph import GraphStore
from osmose.stores.vectors import VectorStore
from osmose.v1 import pipeline_pb2 as ppb

__all__ = ["PersisterConfig", "PersisterStage"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PersisterConfig:
    # Resolve a document's concepts against the tenant's existing ones before writing.
    resolve: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> PersisterConfig:
        return cls()


class PersisterStage:
    name = "persister"
    Config = PersisterConfig

    def __init__(self, config: PersisterConfig = PersisterConfig(), *, graph: GraphStore,
                 vectors: VectorStore) -> None:
        self.config = config
        self.graph = graph
        self.vectors = vectors

    async def process(self, item: ppb.WorkItem) -> ppb.WorkItem:
        # Rows and sparse vectors of a large document are CPU work: off the event loop.
        graph, points = await asyncio.to_thread(lambda: (document_graph(item), vector_points(item)))
        tenant, doc_id = item.tenant, item.document.doc_id
        resolver = TenantResolver() if self.config.resolve else None
        visible = doc_id in await self.graph.visible_documents(tenant, [doc_id])
        if visible and item.plan.enrich_tier:
            logger.info("preview of %s for tenant %s: already searchable, nothing written",
                        item.document.file_name, tenant)
            return item
        if visible:   # in place: the document stays searchable throughout
            await self.vectors.replace_document(tenant, doc_id, points)
            await self.graph.write_document(graph, committed=True, resolver=resolver)
        else:
            await self.graph.write_document(graph, committed=False, resolver=resolver)
            await self.vectors.replace_document(tenant, doc_id, points)
            await self.graph.commit_document(tenant, doc_id)
        logger.info("persisted %s for tenant %s: %d chunks, %d concepts, %d relations",
                    item.document.file_name, tenant, len(item.chunks), len(item.concepts),
                    len(item.relations))
        return item
