"""Erasure: a document, or every document of a tenant, out of the graph (nodes, edges and the
merges it recorded), the vector index, the caches and the claim-check blob store. Idempotent:
erasing again removes nothing more and succeeds (all counts zero). Graph first, then vectors
(the reverse of the write order), then caches and blobs, so a crash half-way is finished by
repeating the call.

What "the caches" of one document are: the tenant-scoped entries (embeddings, model answers)
the document used, read or written, which the caches mark while a host runs a stage on it
(:mod:`osmose.cache`), and its converted deck in the render cache. So after erasing a document,
re-ingesting the same file reports no cache hit from it (another document of the tenant with
the same text recomputes those entries too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from osmose.stores.graph import GraphStore
from osmose.stores.vectors import VectorStore
from osmose.v1 import services_pb2 as spb

__all__ = ["DocumentEraser", "TenantEraser", "erase_document", "erase_tenant"]

#: forgets what one document of a tenant left in a cache or store: (tenant, doc id) -> entries removed
DocumentEraser = Callable[[str, str], int]
#: forgets what a tenant left in a cache or store: tenant -> entries removed
TenantEraser = Callable[[str], int]


async def erase_document(*, graph: GraphStore, vectors: VectorStore, tenant: str, doc_id: str,
                         caches: Sequence[DocumentEraser] = (),
                         blobs: DocumentEraser | None = None) -> spb.DeleteResponse:
    """Document `doc_id` of `tenant` out of the graph and the vectors, then its entries in
    `caches` (:meth:`osmose.embeddings.cached.CachedEmbeddings.erase_document`,
    :meth:`osmose.models.ModelRuntime.erase_document`, the render cache), then the claim-check
    blobs only it used (`blobs`: :meth:`BlobStore.erase_document`)."""
    existed = await graph.delete_document(tenant, doc_id)
    chunks = await vectors.delete_document(tenant, doc_id)
    response = spb.DeleteResponse(tenant=tenant, documents=int(existed), chunks=chunks)
    for erase in caches:
        response.cache_entries += await asyncio.to_thread(erase, tenant, doc_id)
    if blobs is not None:
        response.blobs = await asyncio.to_thread(blobs, tenant, doc_id)
    return response


async def erase_tenant(*, graph: GraphStore, vectors: VectorStore, tenant: str,
                       caches: Sequence[TenantEraser] = (),
                       blobs: TenantEraser | None = None) -> spb.DeleteResponse:
    """Every document of `tenant`, then its entries in `caches` (each called with the tenant:
    :meth:`osmose.embeddings.cached.CachedEmbeddings.erase`, :meth:`osmose.models.ModelRuntime.erase`),
    then the claim-check blobs only it used (`blobs`: :meth:`BlobStore.erase_tenant`)."""
    total = spb.DeleteResponse(tenant=tenant)
    for doc_id in await graph.document_ids(tenant):
        one = await erase_document(graph=graph, vectors=vectors, tenant=tenant, doc_id=doc_id)
        total.documents += one.documents
        total.chunks += one.chunks
    for erase in caches:
        total.cache_entries += await asyncio.to_thread(erase, tenant)
    if blobs is not None:
        total.blobs = await asyncio.to_thread(blobs, tenant)
    return total
