"""The VectorStore contract, run against every implementation.

Tests isolate themselves by random tenant names, so a server implementation
can share one collection per session (add its factory to IMPLEMENTATIONS).
The Qdrant server variant runs when OSMOSE_TEST_QDRANT_URL names a server
(1.19+; OSMOSE_QDRANT_API_KEY if it needs one) and skips otherwise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from osmose import ids
from osmose.errors import BackendUnavailableError, ConfigurationError, PermanentError
from osmose.stores.qdrant_store import DataDirInUseError, QdrantVectorStore
from osmose.stores.vectors import VectorPoint, VectorStore
from osmose.text.sparse import sparse_encode, sparse_query

pytestmark = pytest.mark.anyio

DIM = 8

def qdrant_server(_: Path) -> VectorStore:
    url = os.environ.get("OSMOSE_TEST_QDRANT_URL")
    if not url:
        pytest.skip("set OSMOSE_TEST_QDRANT_URL to run the contract against a Qdrant server")
    return QdrantVectorStore(url=url, api_key=os.environ.get("OSMOSE_QDRANT_API_KEY") or None,
                             collection=f"osmose_test_{DIM}", dim=DIM)


IMPLEMENTATIONS: dict[str, Callable[[Path], VectorStore]] = {
    "qdrant-local": lambda folder: QdrantVectorStore(path=folder / "qdrant", dim=DIM),
    "qdrant-server": qdrant_server,
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
async def vector_store(request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str) -> AsyncIterator[VectorStore]:
    store = IMPLEMENTATIONS[request.param](tmp_path)
    yield store
    await store.close()


def new_tenant(label: str = "t") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def axis(i: int) -> list[float]:
    """A unit vector along axis i: orthogonal to every other axis."""
    return [1.0 if j == i else 0.0 for j in range(DIM)]


TEXTS = [
    "The flux capacitor needs 1.21 gigawatts",  # 0: found by keyword
    "Quarterly revenue grew in every region",  # 1: found by its dense vector
    "Hiring plan for the engineering teams",
    "Risks and mitigations for the launch",
    "Customer interviews summary",
]


def chunk(tenant: str, doc_id: str, slide: int, text: str, dense: list[float]) -> VectorPoint:
    return VectorPoint(
        id=ids.chunk_id(tenant, doc_id, slide, 0, ids.text_hash(text)),
        dense=dense,
        sparse=sparse_encode(text),
        payload={"tenant": tenant, "doc_id": doc_id, "file": f"{doc_id}.pptx", "slide": slide,
                 "segment_id": "seg", "chunk_index": 0, "text": text},
    )


def deck(tenant: str, doc_id: str, texts: list[str] = TEXTS) -> list[VectorPoint]:
    return [chunk(tenant, doc_id, slide, text, axis(slide + 1)) for slide, text in enumerate(texts)]


async def ids_of(store: VectorStore, tenant: str) -> set[str]:
    hits = await store.hybrid_search(tenant, axis(0), sparse_query(""), 100)
    return {h.id for h in hits}


async def test_replace_is_idempotent_and_drops_stale_points(vector_store: VectorStore) -> None:
    tenant = new_tenant()
    first = deck(tenant, "doc-1")
    await vector_store.replace_document(tenant, "doc-1", first)
    await vector_store.replace_document(tenant, "doc-1", first)
    assert await vector_store.count(tenant) == {tenant: len(first)}
    assert await ids_of(vector_store, tenant) == {p.id for p in first}

    # v2 keeps two chunks, edits one and drops the rest
    second = [*first[:2], chunk(tenant, "doc-1", 2, "Hiring plan, revised", axis(3))]
    await vector_store.replace_document(tenant, "doc-1", second)
    assert await vector_store.count(tenant) == {tenant: 3}
    assert await ids_of(vector_store, tenant) == {p.id for p in second}

    await vector_store.replace_document(tenant, "doc-1", [])
    assert await vector_store.count(tenant) == {tenant: 0}


async def test_replace_leaves_other_documents_alone(vector_store: VectorStore) -> None:
    tenant = new_tenant()
    await vector_store.replace_document(tenant, "doc-1", deck(tenant, "doc-1"))
    await vector_store.replace_document(tenant, "doc-2", deck(tenant, "doc-2", TEXTS[:2]))
    await vector_store.replace_document(tenant, "doc-1", deck(tenant, "doc-1", TEXTS[:1]))
    assert await vector_store.count(tenant) == {tenant: 3}


async def test_hybrid_search_finds_keyword_and_dense_matches_within_the_tenant(vector_store: VectorStore) -> None:
    acme, globex = new_tenant("acme"), new_tenant("globex")
    for tenant in (acme, globex):  # the same deck in both tenants
        await vector_store.replace_document(tenant, "doc-1", deck(tenant, "doc-1"))

    # keyword only: the dense query points nowhere near any chunk
    hits = await vector_store.hybrid_search(acme, axis(7), sparse_query("capacitor"), 3)
    assert hits[0].payload["text"] == TEXTS[0]
    assert all(h.payload["tenant"] == acme for h in hits)
    assert len(hits) == 3

    # dense only: no query word occurs anywhere
    hits = await vector_store.hybrid_search(globex, axis(2), sparse_query("zzyzx"), 3)
    assert hits[0].payload["text"] == TEXTS[1]
    assert all(h.payload["tenant"] == globex for h in hits)

    # accents and case do not matter to the keyword side
    hits = await vector_store.hybrid_search(acme, axis(7), sparse_query("RÉVENUE"), 1)
    assert hits[0].payload["text"] == TEXTS[1]

    assert await vector_store.hybrid_search(new_tenant(), axis(2), sparse_query("capacitor"), 5) == []
    assert await vector_store.hybrid_search(acme, axis(2), sparse_query("capacitor"), 0) == []


async def test_search_stays_filtered_as_tenants_arrive(vector_store: VectorStore) -> None:
    """A store holding one tenant, then two: neither state may leak."""
    acme, globex = new_tenant("acme"), new_tenant("globex")
    await vector_store.replace_document(acme, "doc-1", deck(acme, "doc-1"))
    assert await vector_store.hybrid_search(globex, axis(2), sparse_query("capacitor"), 5) == []
    await vector_store.replace_document(globex, "doc-9", deck(globex, "doc-9", TEXTS[:1]))
    hits = await vector_store.hybrid_search(globex, axis(2), sparse_query("revenue"), 10)
    assert [h.payload["doc_id"] for h in hits] == ["doc-9"]
    assert len(await vector_store.hybrid_search(acme, axis(2), sparse_query("capacitor"), 10)) == len(TEXTS)


async def test_counts_per_tenant(vector_store: VectorStore) -> None:
    acme, globex = new_tenant("acme"), new_tenant("globex")
    await vector_store.replace_document(acme, "doc-1", deck(acme, "doc-1"))
    await vector_store.replace_document(acme, "doc-2", deck(acme, "doc-2", TEXTS[:2]))
    await vector_store.replace_document(globex, "doc-1", deck(globex, "doc-1", TEXTS[:3]))
    everything = await vector_store.count()
    assert everything[acme] == 7
    assert everything[globex] == 3
    assert await vector_store.count(acme) == {acme: 7}
    nobody = new_tenant()
    assert await vector_store.count(nobody) == {nobody: 0}


async def test_delete_document(vector_store: VectorStore) -> None:
    acme, globex = new_tenant("acme"), new_tenant("globex")
    await vector_store.replace_document(acme, "doc-1", deck(acme, "doc-1"))
    await vector_store.replace_document(acme, "doc-2", deck(acme, "doc-2", TEXTS[:2]))
    await vector_store.replace_document(globex, "doc-1", deck(globex, "doc-1"))

    assert await vector_store.delete_document(acme, "doc-1") == len(TEXTS)
    assert await vector_store.delete_document(acme, "doc-1") == 0
    assert await vector_store.count(acme) == {acme: 2}
    assert await vector_store.count(globex) == {globex: len(TEXTS)}
    assert {h.payload["doc_id"] for h in await vector_store.hybrid_search(acme, axis(1), sparse_query("flux"), 10)} == {"doc-2"}


async def test_rejects_points_of_another_tenant_or_shape(vector_store: VectorStore) -> None:
    acme = new_tenant("acme")
    foreign = chunk(acme, "doc-1", 0, "text", axis(0))
    with pytest.raises(PermanentError):
        await vector_store.replace_document(new_tenant(), "doc-1", [foreign])
    with pytest.raises(PermanentError):
        await vector_store.replace_document(acme, "doc-2", [foreign])
    short = VectorPoint(id=foreign.id, dense=[1.0], sparse=foreign.sparse, payload={})
    with pytest.raises(PermanentError):
        await vector_store.replace_document(acme, "doc-1", [short])
    assert await vector_store.count(acme) == {acme: 0}


# -- local mode specifics --------------------------------------------------------------


async def test_local_folder_is_single_process(tmp_path: Path, anyio_backend: str) -> None:
    store = QdrantVectorStore(path=tmp_path / "qdrant", dim=DIM)
    try:
        with pytest.raises(DataDirInUseError, match="data dir is in use by another osmose process") as caught:
            QdrantVectorStore(path=tmp_path / "qdrant", dim=DIM)
        assert isinstance(caught.value, ConfigurationError)
    finally:
        await store.close()


async def test_local_data_survives_reopening(tmp_path: Path, anyio_backend: str) -> None:
    tenant = new_tenant()
    store = QdrantVectorStore(path=tmp_path / "qdrant", dim=DIM)
    await store.replace_document(tenant, "doc-1", deck(tenant, "doc-1"))
    await store.close()
    store = QdrantVectorStore(path=tmp_path / "qdrant", dim=DIM)
    try:
        assert await store.count() == {tenant: len(TEXTS)}
        assert (await store.hybrid_search(tenant, axis(7), sparse_query("capacitor"), 1))[0].payload["slide"] == 0
        # what a reopened store knows of a document is enough to replace and delete it
        await store.replace_document(tenant, "doc-1", deck(tenant, "doc-1", TEXTS[:2]))
        assert await store.count(tenant) == {tenant: 2}
        assert await store.delete_document(tenant, "doc-1") == 2
        assert await store.count(tenant) == {tenant: 0}
    finally:
        await store.close()


async def test_existing_collection_with_another_dimension_is_a_configuration_error(
    tmp_path: Path, anyio_backend: str
) -> None:
    store = QdrantVectorStore(path=tmp_path / "qdrant", dim=DIM)
    tenant = new_tenant()
    await store.replace_document(tenant, "doc-1", deck(tenant, "doc-1"))
    await store.close()
    with pytest.raises(ConfigurationError, match="8-d vectors"):
        QdrantVectorStore(path=tmp_path / "qdrant", dim=384)


def test_needs_exactly_one_location() -> None:
    with pytest.raises(ConfigurationError):
        QdrantVectorStore()
    with pytest.raises(ConfigurationError):
        QdrantVectorStore(path=Path("x"), url="http://localhost:6333")


async def test_unreachable_server_is_retryable_and_construction_is_offline(anyio_backend: str) -> None:
    store = QdrantVectorStore(url="http://127.0.0.1:9", dim=DIM)  # nothing listens on port 9
    try:
        with pytest.raises(BackendUnavailableError):
            await store.count()
    finally:
        await store.close()


@pytest.mark.parametrize(("version", "ok"), [("1.19.0", True), ("1.20.3-dev", True), ("2.0.0", True),
                                             ("1.18.2", False), ("unknown", False)])
def test_server_version_floor(version: str, ok: bool) -> None:
    from osmose.stores.qdrant_store import _require_server_version

    if ok:
        _require_server_version(version, "http://qdrant:6333")
    else:
        with pytest.raises(ConfigurationError, match="needs 1.19 or newer"):
            _require_server_version(version, "http://qdrant:6333")


async def test_document_payloads_are_the_documents_own_in_slide_order(vector_store: VectorStore) -> None:
    tenant, other = new_tenant(), new_tenant("other")
    await vector_store.replace_document(tenant, "doc-a", list(reversed(deck(tenant, "doc-a"))))
    await vector_store.replace_document(tenant, "doc-b", deck(tenant, "doc-b", TEXTS[:2]))
    await vector_store.replace_document(other, "doc-a", deck(other, "doc-a", TEXTS[:1]))
    payloads = await vector_store.document_payloads(tenant, "doc-a")
    assert [p["text"] for p in payloads] == TEXTS
    assert [p["slide"] for p in payloads] == list(range(len(TEXTS)))
    assert {p["doc_id"] for p in payloads} == {"doc-a"} and {p["tenant"] for p in payloads} == {tenant}
    assert len(await vector_store.document_payloads(other, "doc-a")) == 1
    assert await vector_store.document_payloads(tenant, "missing") == []
    assert await vector_store.document_payloads(new_tenant("nobody"), "doc-a") == []
