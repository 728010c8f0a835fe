"""The persister stage: graph first, then vectors; both writes are idempotent upserts
that also remove what an earlier version of the same document left behind.

Before the graph write, the document's concepts are resolved against the
tenant's existing ones (acronym <-> expansion and near-duplicates across
documents, recorded as merges): :mod:`osmose.services.persister.resolve`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from osmose.config import Settings
from osmose.services.persister.resolve import resolve_across_documents
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
        graph = document_graph(item)
        if self.config.resolve:
            graph, _ = await resolve_across_documents(self.graph, graph)
        await self.graph.write_document(graph)
        await self.vectors.replace_document(item.tenant, item.document.doc_id, vector_points(item))
        logger.info("persisted %s for tenant %s: %d chunks, %d concepts, %d relations",
                    item.document.file_name, item.tenant, len(item.chunks), len(item.concepts),
                    len(item.relations))
        return item
