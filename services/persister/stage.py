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
        await self.graph.write_document(graph, committed=False, resolver=resolver)
        await self.vectors.replace_document(tenant, doc_id, points)
        await self.graph.commit_document(tenant, doc_id)
        logger.info("persisted %s for tenant %s: %d chunks, %d concepts, %d relations",
                    item.document.file_name, tenant, len(item.chunks), len(item.concepts),
                    len(item.relations))
        return item
