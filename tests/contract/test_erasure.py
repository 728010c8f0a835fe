"""Erasure of one document reaches every store: graph, vectors, the tenant's caches (embeddings,
converted decks) and the claim-check blob store; the tenant's other document and the other
tenant are unchanged; erasing again removes nothing; re-ingesting works and reports no cache
hit from what was erased.

Run on the embedded stores (SQLite graph + local Qdrant) and on Neo4j (OSMOSE_TEST_GRAPH_URI,
`make neo4j-up`), each with the local blob store and the S3 one (OSMOSE_TEST_S3_ENDPOINT,
`make s3-up`). The documents go through the real in-process pipeline; their blobs are stored and
claimed as the services do it (the front door's claim of the submitted file, `pack` of a work
item above the claim-check threshold), since the in-process host uses no blob store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from osmose.bus.blobs import BlobStore, LocalBlobStore, S3BlobStore, digest_of
from osmose.bus.envelope import pack
from osmose.cache import document_prefix, scope_prefix
from osmose.config import Settings
from osmose.documents.rendering import render_cache_path
from osmose.hosts.inprocess import InProcessPipeline
from osmose.query.erase import erase_document, erase_tenant
from osmose.stores.neo4j_graph import Neo4jGraphStore
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb
from tests.conftest import s3_bucket, s3_settings
from tests.contract.graph_dumps import dump
from tests.contract.test_graph_store import graph_uri, neo4j_store, new_tenant, require_server
from tests.fixtures.builders import build_title_body_pptx

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "neo4j"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str) -> AsyncIterator[Settings]:
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path / "data")
        return
    probe = neo4j_store(tmp_path)
    try:
        await require_server(probe)
    finally:
        await probe.close()
    yield Settings(data_dir=tmp_path / "data", graph_uri=graph_uri(),
                   graph_user=os.environ.get("OSMOSE_GRAPH_USER") or "neo4j",
                   graph_password=SecretStr(os.environ.get("OSMOSE_GRAPH_PASSWORD") or "osmose-dev-password"))


@pytest.fixture(params=["local", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[BlobStore, Any]]:
    """The store, and a function listing every key in it (blobs and ownership markers)."""
    if request.param == "local":
        root = tmp_path / "blobs"
        yield LocalBlobStore(root), lambda: sorted(str(p.relative_to(root)) for p in root.rglob("*")
                                                   if p.is_file() and p.parts[len(root.parts)] != "tmp")
        return
    client = request.getfixturevalue("s3_client")
    bucket, prefix = s3_bucket(), f"erasure/{uuid.uuid4().hex}/"

    def listed() -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"][len(prefix):] for page in pages for o in page.get("Contents", []))

    yield S3BlobStore(bucket=bucket, prefix=prefix, **s3_settings()), listed
    for key in listed():
        client.delete_object(Bucket=bucket, Key=prefix + key)


def ship(store: BlobStore, deck: Path, tenant: str, doc_id: str) -> list[str]:
    """Store and claim a document's blobs as the services do: the submitted file (front door) and
    its work item, claim-checked between two stages (`pack`). Their references."""
    submitted = store.put(deck.read_bytes())
    store.claim(submitted, tenant, digest_of(submitted)[:32])
    item = ppb.WorkItem(tenant=tenant, source_uri=submitted,
                        document=pb.Document(doc_id=doc_id, file_name=deck.name))
    envelope = pack(epb.Envelope(job_id=str(uuid.uuid4()), doc_id=doc_id, tenant=tenant), item, store, threshold=0)
    return [submitted, envelope.blob_ref]


async def test_deleting_a_document_leaves_nothing_of_it(settings: Settings, blobs: tuple[BlobStore, Any],
                                                        tmp_path: Path) -> None:
    store, keys = blobs
    alpha, beta = new_tenant("erase-a"), new_tenant("erase-b")
    gone = build_title_body_pptx(tmp_path, name="gone.pptx", title="Orbital Logistics",
                                 body=("Tether maintenance", "Ballast schedule"))
    kept = build_title_body_pptx(tmp_path, name="kept.pptx", title="Harbour Dredging",
                                 body=("Silt volumes", "Tide windows"))
    async with InProcessPipeline(settings) as pipeline:
        async def ingest(deck: Path, tenant: str) -> Any:
            [report] = [r async for r in pipeline.ingest([deck], tenant=tenant)]
            assert report.status == "ok", report.error
            return report

        async def search(query: str, tenant: str) -> list[tuple[str, int, str]]:
            return [(h.doc_id, h.slide, h.text) for h in await pipeline.search(query, tenant=tenant, limit=10)]

        try:
            first, other = await ingest(gone, alpha), await ingest(kept, alpha)
            theirs = await ingest(gone, beta)                          # the same file in another tenant
            doc = first.doc_id
            assert theirs.doc_id == doc and other.doc_id != doc
            shipped = {(t, d): ship(store, deck, t, d) for t, d, deck in (
                (alpha, doc, gone), (alpha, other.doc_id, kept), (beta, doc, gone))}
            rendered = render_cache_path(settings.data_dir, doc, alpha)  # where the renderer keeps a converted deck
            rendered.parent.mkdir(parents=True, exist_ok=True)
            rendered.write_bytes(b"%PDF-1.7 converted deck")
            embeddings = pipeline.resources.embeddings
            assert embeddings.cache.keys_with_prefix(document_prefix(alpha, doc))   # marked while it was ingested
            before_beta = (await dump(pipeline.graph, beta), await search("Orbital Logistics", beta),
                           await pipeline.stats(beta))
            before_kept = await search("Harbour Dredging silt", alpha)
            assert doc in {d for d, _, _ in await search("Orbital Logistics", alpha)}

            erased = await erase_document(graph=pipeline.graph, vectors=pipeline.vectors, tenant=alpha, doc_id=doc,
                                          caches=pipeline.resources.document_cache_erasers(),
                                          blobs=store.erase_document)
            assert (erased.documents, erased.chunks) == (1, first.chunks)
            assert erased.cache_entries >= first.embedded + 1          # its vectors and its converted deck
            assert erased.blobs == 1    # its work item; the file's bytes stay, beta sent them too

            # Nothing of it: graph, vectors (search and stats), caches, render cache, blob store.
            assert await pipeline.graph.document_ids(alpha) == [other.doc_id]
            assert doc not in {d for d, _, _ in await search("Orbital Logistics tether ballast", alpha)}
            assert (await pipeline.stats(alpha))[alpha]["documents"] == 1
            assert (await pipeline.stats(alpha))[alpha]["chunks"] == other.chunks
            assert await pipeline.vectors.delete_document(alpha, doc) == 0
            assert embeddings.cache.keys_with_prefix(document_prefix(alpha, doc)) == []
            assert not rendered.exists()
            work_item = shipped[(alpha, doc)][1]
            assert not store.exists(work_item)
            assert not [k for k in keys() if f"/{alpha}/" in k and (doc in k or digest_of(work_item) in k)]
            assert not [k for k in keys() if k.endswith(f"/{alpha}") and digest_of(work_item) in k]
            # The tenant's other document and the other tenant: unchanged.
            assert await search("Harbour Dredging silt", alpha) == [h for h in before_kept if h[0] != doc]
            assert all(store.exists(ref) for ref in shipped[(alpha, other.doc_id)] + shipped[(beta, doc)])
            assert (await dump(pipeline.graph, beta), await search("Orbital Logistics", beta),
                    await pipeline.stats(beta)) == before_beta
            assert embeddings.cache.keys_with_prefix(document_prefix(beta, doc))
            assert doc not in repr(await dump(pipeline.graph, alpha))  # no node, edge or merge names it
            if isinstance(pipeline.graph, Neo4jGraphStore):
                left = await pipeline.graph._read("MATCH (n) WHERE n.tenant = $t AND n.doc_id = $d RETURN count(n) AS n",
                                                  t=alpha, d=doc)
                assert left[0]["n"] == 0

            again = await erase_document(graph=pipeline.graph, vectors=pipeline.vectors, tenant=alpha, doc_id=doc,
                                         caches=pipeline.resources.document_cache_erasers(),
                                         blobs=store.erase_document)
            assert (again.documents, again.chunks, again.cache_entries, again.blobs) == (0, 0, 0, 0)  # idempotent

            # Re-ingest works, and no cache hit tells the tenant the document was there.
            back = await ingest(gone, alpha)
            assert back.doc_id == doc and back.embedded == first.embedded and back.chunks == first.chunks
            assert doc in {d for d, _, _ in await search("Orbital Logistics tether", alpha)}
            assert (await ingest(gone, beta)).embedded == 0            # beta's own cache was never touched
        finally:
            for tenant in (alpha, beta):
                await erase_tenant(graph=pipeline.graph, vectors=pipeline.vectors, tenant=tenant,
                                   caches=pipeline.resources.cache_erasers(), blobs=store.erase_tenant)
            assert pipeline.resources.embeddings.cache.keys_with_prefix(scope_prefix(alpha)) == []
    assert keys() == []
