"""Erasure: a document, or every document of a tenant, out of the graph (nodes, edges and the
merges it recorded) and the vector index. Idempotent: erasing again removes nothing more and
succeeds. Graph first, then vectors (the reverse of the write order), so a crash half-way is
finished by repeating the call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from osmose.stores.graph import GraphStore
from osmose.stores.vectors import VectorStore
from osmose.v1 import services_pb2 as spb

__all__ = ["erase_document", "erase_tenant"]


async def erase_document(*, graph: GraphStore, vectors: VectorStore, tenant: str, doc_id: str) -> spb.DeleteResponse:
    existed = await graph.delete_document(tenant, doc_id)
    chunks = await vectors.delete_document(tenant, doc_id)
    return spb.DeleteResponse(tenant=tenant, documents=int(existed), chunks=chunks)


async def erase_tenant(*, graph: GraphStore, vectors: VectorStore, tenant: str,
                       caches: Sequence[Callable[[str], int]] = (),
                       blobs: Callable[[str], int] | None = None) -> spb.DeleteResponse:
    """Every document of `tenant`, then its entries in `caches` (each called with the tenant:
    :meth:`osmose.embeddings.cached.CachedEmbeddings.erase`, :meth:`osmose.models.ModelRuntime.erase`),
    then the claim-check blobs only it used (`blobs`: :meth:`BlobStore.erase_tenant`)."""
    total = spb.DeleteResponse(tenant=tenant)
    for doc_id in await graph.document_ids(tenant):
        one = await erase_document(graph=graph, vectors=vectors, tenant=tenant, doc_id=doc_id)
        total.documents += one.documents
        total.chunks += one.chunks
    for erase in caches:
        total.cache_entries += erase(tenant)
    if blobs is not None:
        total.blobs = await asyncio.to_thread(blobs, tenant)
    return total
