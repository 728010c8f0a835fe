"""The vector store on Qdrant: local mode (a folder, the embedded default) or a server.

A point is one chunk with two vectors, ``dense`` (cosine) and ``text``, a
sparse lexical vector (:mod:`osmose.text.sparse`) whose IDF Qdrant applies
(``Modifier.IDF``), and a payload naming at least its ``tenant`` and ``doc_id``.

Layout per mode, both giving each tenant its own IDF statistics:

- **Server**: one collection for every tenant, the layout Qdrant recommends for
  many tenants: a keyword index on ``tenant`` with ``is_tenant`` (points stored
  per tenant), every read and delete filtered on it, and the sparse IDF scoped
  to the tenant's points (``IdfCorpusParams``, Qdrant >= 1.19).
- **Local**: one collection per tenant (``<collection>-t<hash of tenant>``).
  Local mode scores every point of a collection and filters payloads in pure
  Python (~20 µs a point and condition, three times per hybrid query): with
  5000 chunks in two tenants a filtered search cost 0.7 s of CPU, against
  0.12 s for a tenant's own collection. The tenant stays in the payload.

Threading: qdrant-client's local mode is synchronous, not thread-safe, and its
SQLite connections belong to the thread that opened them, so in local mode one
dedicated thread owns the client and runs every call (the event loop stays
free while it searches or writes). Against a server a few threads share the
(thread-safe) HTTP client, so the batches of one upsert are in flight together.

Local mode holds an exclusive lock on its folder: a second process opening it
gets :class:`DataDirInUseError`, at construction rather than mid-ingest.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import sqlite3
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from osmose.errors import (
    BackendUnavailableError,
    ConfigurationError,
    OsmoseError,
    PermanentError,
    RetryableError,
)
from osmose.stores.vectors import SparseVector, VectorHit, VectorPoint

__all__ = ["DENSE_VECTOR", "SPARSE_VECTOR", "DataDirInUseError", "QdrantVectorStore"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DENSE_VECTOR = "dense"
SPARSE_VECTOR = "text"
# Points per upsert request: big enough to amortise a round trip, small enough
# to stay far below the server's request size limit with 384-d vectors and text.
UPSERT_BATCH = 256
SCROLL_PAGE = 2048
# Candidates each retriever hands to the fusion, per requested hit.
PREFETCH_FACTOR = 4
MIN_PREFETCH = 20
SERVER_THREADS = 4
# Distinct tenants `count()` can report (one facet request).
MAX_TENANTS = 100_000
# Oldest server with per-tenant IDF statistics.
MIN_SERVER_VERSION = (1, 19)


class DataDirInUseError(ConfigurationError):
    """Another process holds the local vector store's folder (Qdrant local mode is single-process)."""


class QdrantVectorStore:
    """A :class:`~osmose.stores.vectors.VectorStore` on Qdrant, local (``path``) or server (``url``)."""

    def __init__(
        self,
        *,
        path: Path | None = None,
        url: str | None = None,
        api_key: str | None = None,
        collection: str = "osmose_chunks",
        dim: int = 384,
    ) -> None:
        if (path is None) == (url is None):
            raise ConfigurationError("the vector store needs either a folder (local mode) or a Qdrant url, not both")
        if dim < 1:
            raise ConfigurationError(f"vector dimension must be positive, got {dim}")
        self._path = Path(path) if path is not None else None
        self._url = url
        self._api_key = api_key
        self._collection = collection
        self._dim = dim
        self._local = path is not None
        self._closed = False
        self._client: QdrantClient | None = None
        self._connect_lock = threading.Lock()
        # Local mode: the point ids of each (tenant, doc_id), read at open and kept
        # up to date (this process holds the folder lock; no one else writes), so
        # replace and delete never scan payloads. Invariant: a superset of the
        # stored ids (added before they are written, removed after they are
        # deleted), so a failed call never hides a point. Relies on point ids
        # naming their tenant and document (ids.chunk_id does): a point never
        # moves between documents.
        self._local_docs: dict[tuple[str, str], set[str]] = {}
        self._local_collections: set[str] = set()
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self._local else SERVER_THREADS, thread_name_prefix="osmose-qdrant"
        )
        if self._local:
            # Take the folder lock now; a server is contacted on first use only.
            try:
                self._executor.submit(self._guarded, self._connected).result()
            except BaseException:
                self._executor.shutdown(wait=False)
                raise

    # -- VectorStore -----------------------------------------------------------

    async def replace_document(self, tenant: str, doc_id: str, points: list[VectorPoint]) -> None:
        """1. upsert the new points in batches (the document stays searchable throughout);
        2. list the document's point ids; 3. delete those not among the new points.
        A failure at any step leaves a state that re-running the call repairs."""
        structs = [self._point_struct(tenant, doc_id, p) for p in points]
        keep = {str(s.id) for s in structs}
        batches = [structs[i : i + UPSERT_BATCH] for i in range(0, len(structs), UPSERT_BATCH)]
        if structs:
            await self._call(self._prepare_write, tenant, doc_id, keep)
        await asyncio.gather(*(self._call(self._upsert, tenant, batch) for batch in batches))
        stale = [pid for pid in await self._call(self._point_ids, tenant, doc_id) if pid not in keep]
        if stale:
            await self._call(self._delete_ids, tenant, doc_id, stale)
        logger.debug(
            "vectors replaced",
            extra={"tenant": tenant, "doc_id": doc_id, "points": len(structs), "stale": len(stale)},
        )

    async def delete_document(self, tenant: str, doc_id: str) -> int:
        return await self._call(self._delete_document, tenant, doc_id)

    async def hybrid_search(
        self, tenant: str, dense: list[float], sparse: SparseVector, limit: int
    ) -> list[VectorHit]:
        if limit <= 0:
            return []
        return await self._call(self._hybrid_search, tenant, dense, sparse, limit)

    async def count(self, tenant: str | None = None) -> dict[str, int]:
        return await self._call(self._count, tenant)

    async def document_payloads(self, tenant: str, doc_id: str) -> list[dict[str, Any]]:
        return await self._call(self._document_payloads, tenant, doc_id)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._client is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._client.close)
        self._executor.shutdown(wait=True)

    # -- plumbing ------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise RuntimeError("QdrantVectorStore is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self._guarded, fn, *args))

    def _guarded(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except Exception as exc:
            translated = self._translate(exc)
            if translated is None:
                raise
            raise translated from exc

    def _connected(self) -> QdrantClient:
        with self._connect_lock:
            if self._client is None:
                if self._path is not None:
                    self._path.mkdir(parents=True, exist_ok=True)
                    client = QdrantClient(path=str(self._path))
                else:
                    # Our own version check replaces the client's, which runs in a
                    # background thread and can only warn.
                    client = QdrantClient(url=self._url, api_key=self._api_key, check_compatibility=False)
                try:
                    if self._local:
                        self._open_local(client)
                    else:
                        _require_server_version(client.info().version, self._url)
                        self._ensure_collection(client, self._collection)
                        # is_tenant stores each tenant's points together; both
                        # indexes let the server filter without scanning.
                        client.create_payload_index(
                            self._collection, "tenant",
                            models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
                        )
                        client.create_payload_index(self._collection, "doc_id", models.PayloadSchemaType.KEYWORD)
                except BaseException:
                    client.close()
                    raise
                self._client = client
            return self._client

    def _open_local(self, client: QdrantClient) -> None:
        prefix = f"{self._collection}-t"
        for description in client.get_collections().collections:
            name = description.name
            if name.startswith(prefix):
                self._check_collection(client, name)
                _speed_up_local_writes(client, name)
                self._local_collections.add(name)
                for key, point_ids in _read_local_index(client, name).items():
                    self._local_docs.setdefault(key, set()).update(point_ids)

    def _collection_for(self, tenant: str) -> str:
        if not self._local:
            return self._collection
        # A digest: any tenant string becomes a safe, fixed-length folder name.
        return f"{self._collection}-t{hashlib.blake2b(tenant.encode(), digest_size=8).hexdigest()}"

    def _ensure_collection(self, client: QdrantClient, name: str) -> None:
        if client.collection_exists(name):
            self._check_collection(client, name)
            return
        try:
            client.create_collection(
                name,
                vectors_config={DENSE_VECTOR: models.VectorParams(size=self._dim, distance=models.Distance.COSINE)},
                sparse_vectors_config={SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
            logger.info("created vector collection", extra={"collection": name, "dim": self._dim})
        except UnexpectedResponse as exc:
            if exc.status_code != 409:  # 409: another replica created it first
                raise
            self._check_collection(client, name)

    def _check_collection(self, client: QdrantClient, name: str) -> None:
        params = client.get_collection(name).config.params
        vectors = params.vectors if isinstance(params.vectors, dict) else {}
        dense = vectors.get(DENSE_VECTOR)
        if dense is None or SPARSE_VECTOR not in (params.sparse_vectors or {}):
            raise ConfigurationError(
                f"collection {name!r} exists without the vectors osmose needs "
                f"({DENSE_VECTOR!r} dense, {SPARSE_VECTOR!r} sparse); use another collection name"
            )
        if dense.size != self._dim:
            raise ConfigurationError(
                f"collection {name!r} holds {dense.size}-d vectors but the embedder makes "
                f"{self._dim}-d ones; re-index into a new collection or use the matching model"
            )

    def _translate(self, exc: Exception) -> OsmoseError | None:
        """Dependency errors → the platform's tree; None leaves a bug a bug."""
        where = f"vector store {self._path or self._url}"
        if isinstance(exc, OsmoseError):
            return exc
        if isinstance(exc, RuntimeError) and "already accessed by another instance" in str(exc):
            return DataDirInUseError(
                f"data dir is in use by another osmose process ({self._path} is locked; Qdrant local "
                "mode allows one process per folder: stop the other one, or use a Qdrant server)"
            )
        if isinstance(exc, UnexpectedResponse):
            status = exc.status_code
            if status in (401, 403):
                return ConfigurationError(f"{where} refused the credentials (HTTP {status}); check the API key")
            if status is None or status == 429 or status >= 500:
                return BackendUnavailableError(f"{where} failed (HTTP {status}): {exc.reason_phrase}")
            if status == 404:
                return ConfigurationError(f"{where}: collection {self._collection!r} is missing; restart to recreate it")
            return PermanentError(f"{where} rejected the request (HTTP {status}): {exc.content[:300]!r}")
        if isinstance(exc, ResourceExhaustedResponse | ResponseHandlingException | httpx.TransportError
                      | ConnectionError | TimeoutError):
            return BackendUnavailableError(f"{where} is unreachable: {exc}")
        if isinstance(exc, PermissionError):
            return ConfigurationError(f"{where}: {exc}")
        if isinstance(exc, OSError | sqlite3.OperationalError):
            return RetryableError(f"{where} could not read or write its files: {exc}")
        if isinstance(exc, ValueError):  # local mode's validation (dimension, malformed vectors)
            return PermanentError(f"{where} rejected the request: {exc}")
        return None

    # -- worker-thread operations ---------------------------------------------------------

    def _point_struct(self, tenant: str, doc_id: str, point: VectorPoint) -> models.PointStruct:
        if not tenant or not doc_id:
            raise PermanentError(f"vector points need a tenant and a doc_id (got {tenant!r}, {doc_id!r})")
        if len(point.dense) != self._dim:
            raise PermanentError(f"point {point.id}: dense vector has {len(point.dense)} dimensions, expected {self._dim}")
        try:
            point_id = str(uuid.UUID(point.id))
        except ValueError as exc:
            raise PermanentError(f"point id {point.id!r} is not a UUID") from exc
        payload = dict(point.payload)
        for key, expected in (("tenant", tenant), ("doc_id", doc_id)):
            if payload.setdefault(key, expected) != expected:
                raise PermanentError(f"point {point_id}: payload {key}={payload[key]!r} but written for {expected!r}")
        vector: dict[str, Any] = {DENSE_VECTOR: point.dense}
        if point.sparse.indices:
            vector[SPARSE_VECTOR] = models.SparseVector(indices=point.sparse.indices, values=point.sparse.values)
        return models.PointStruct(id=point_id, vector=vector, payload=payload)

    def _prepare_write(self, tenant: str, doc_id: str, ids: set[str]) -> None:
        client = self._connected()
        if not self._local:
            return
        name = self._collection_for(tenant)
        if name not in self._local_collections:
            self._ensure_collection(client, name)
            _speed_up_local_writes(client, name)
            self._local_collections.add(name)
        self._local_docs.setdefault((tenant, doc_id), set()).update(ids)

    def _upsert(self, tenant: str, batch: list[models.PointStruct]) -> None:
        self._connected().upsert(self._collection_for(tenant), points=batch, wait=True)

    def _point_ids(self, tenant: str, doc_id: str) -> list[str]:
        client = self._connected()
        if self._local:
            return list(self._local_docs.get((tenant, doc_id), ()))
        ids: list[str] = []
        offset: Any = None
        while True:
            records, offset = client.scroll(
                self._collection,
                scroll_filter=_filter(tenant, doc_id),
                limit=SCROLL_PAGE,
                offset=offset,
                with_payload=False,
                with_vectors=False,
            )
            ids.extend(str(r.id) for r in records)
            if offset is None:
                return ids

    def _document_payloads(self, tenant: str, doc_id: str) -> list[dict[str, Any]]:
        name = self._collection_for(tenant)
        if self._local and name not in self._local_collections:
            return []
        client = self._connected()
        payloads: list[dict[str, Any]] = []
        offset: Any = None
        while True:
            records, offset = client.scroll(name, scroll_filter=_filter(tenant, doc_id), limit=SCROLL_PAGE,
                                            offset=offset, with_payload=True, with_vectors=False)
            payloads.extend(dict(r.payload or {}) for r in records)
            if offset is None:
                return sorted(payloads, key=lambda p: (p.get("slide", 0), p.get("chunk_index", 0)))

    def _delete_ids(self, tenant: str, doc_id: str, ids: list[str]) -> None:
        if ids:
            self._connected().delete(
                self._collection_for(tenant), points_selector=models.PointIdsList(points=ids), wait=True
            )
        if self._local:
            known = self._local_docs.get((tenant, doc_id), set())
            known.difference_update(ids)
            if not known:
                self._local_docs.pop((tenant, doc_id), None)

    def _delete_document(self, tenant: str, doc_id: str) -> int:
        client = self._connected()
        if self._local:
            known = self._point_ids(tenant, doc_id)
            if not known:
                return 0
            # The index may name ids a failed write never stored: count the real ones.
            stored = client.retrieve(self._collection_for(tenant), known, with_payload=False)
            self._delete_ids(tenant, doc_id, known)
            return len(stored)
        selector = _filter(tenant, doc_id)
        n = client.count(self._collection, count_filter=selector, exact=True).count
        if n:
            client.delete(self._collection, points_selector=models.FilterSelector(filter=selector), wait=True)
        return n

    def _hybrid_search(self, tenant: str, dense: list[float], sparse: SparseVector, limit: int) -> list[VectorHit]:
        client = self._connected()
        name = self._collection_for(tenant)
        if self._local and name not in self._local_collections:
            return []
        # Local: the tenant's own collection, nothing to filter, its IDF is the tenant's.
        # Server: the filter sits on each retriever (fusion only re-ranks their
        # candidates) and the IDF is computed over the tenant's points only, so
        # another tenant's vocabulary neither skews nor hints at rankings.
        only = None if self._local else _filter(tenant)
        idf = None if only is None else models.SearchParams(idf=models.IdfCorpusParams(corpus=only))
        candidates = max(limit * PREFETCH_FACTOR, MIN_PREFETCH)
        prefetch = [models.Prefetch(query=dense, using=DENSE_VECTOR, limit=candidates, filter=only)]
        if sparse.indices:
            prefetch.append(models.Prefetch(
                query=models.SparseVector(indices=sparse.indices, values=sparse.values),
                using=SPARSE_VECTOR, limit=candidates, filter=only, params=idf,
            ))
        response = client.query_points(
            name,
            prefetch=prefetch,
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=limit,
            with_payload=True,
            with_vectors=False,
        )
        return [VectorHit(id=str(p.id), score=float(p.score), payload=dict(p.payload or {})) for p in response.points]

    def _count(self, tenant: str | None) -> dict[str, int]:
        client = self._connected()
        if self._local:
            tenants = [tenant] if tenant is not None else sorted({t for t, _ in self._local_docs})
            counts = {t: self._local_count(client, t) for t in tenants}
            return counts if tenant is not None else {t: n for t, n in counts.items() if n}
        if tenant is not None:
            return {tenant: client.count(self._collection, count_filter=_filter(tenant), exact=True).count}
        # One facet request counts every tenant (served from the tenant index).
        hits = client.facet(self._collection, key="tenant", limit=MAX_TENANTS, exact=True).hits
        return {str(h.value): h.count for h in sorted(hits, key=lambda h: str(h.value))}

    def _local_count(self, client: QdrantClient, tenant: str) -> int:
        name = self._collection_for(tenant)
        return client.count(name, exact=True).count if name in self._local_collections else 0


def _require_server_version(version: str, url: str | None) -> None:
    """Per-tenant IDF (``IdfCorpusParams``) needs Qdrant 1.19."""
    parts = re.findall(r"\d+", version)[:2]
    found = tuple(int(p) for p in parts) if len(parts) == 2 else (0, 0)
    if found < MIN_SERVER_VERSION:
        wanted = ".".join(map(str, MIN_SERVER_VERSION))
        raise ConfigurationError(f"Qdrant at {url} is version {version}; osmose needs {wanted} or newer")


def _filter(tenant: str, doc_id: str | None = None) -> models.Filter:
    must: list[models.Condition] = [models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant))]
    if doc_id is not None:
        must.append(models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id)))
    return models.Filter(must=must)


def _read_local_index(client: QdrantClient, collection: str) -> dict[tuple[str, str], set[str]]:
    """(tenant, doc_id) -> point ids, from one unfiltered pass over the payloads."""
    docs: dict[tuple[str, str], set[str]] = defaultdict(set)
    offset: Any = None
    while True:
        records, offset = client.scroll(
            collection,
            limit=SCROLL_PAGE,
            offset=offset,
            with_payload=models.PayloadSelectorInclude(include=["tenant", "doc_id"]),
            with_vectors=False,
        )
        for r in records:
            payload = r.payload or {}
            docs[(str(payload.get("tenant")), str(payload.get("doc_id")))].add(str(r.id))
        if offset is None:
            return dict(docs)


def _speed_up_local_writes(client: QdrantClient, collection: str) -> None:
    """Make local-mode commits cheap.

    qdrant-client's local mode persists each point in its own SQLite
    transaction with the default rollback journal: one fsync per point, about
    20 ms on a VM disk, so a 500-chunk deck took 10 s to write. WAL with
    synchronous=NORMAL turns a commit into an append (fsync at checkpoints):
    an application crash loses nothing, a power cut may lose the last writes,
    which re-ingesting redoes. This reaches into qdrant-client internals
    (stable since 1.1.7); if they move, writes are just slow again, with a warning.
    """
    try:
        conn = client._client.collections[collection].storage.storage  # type: ignore[attr-defined]  # QdrantLocal internals
    except (AttributeError, KeyError):
        conn = None
    if not isinstance(conn, sqlite3.Connection):
        logger.warning("cannot tune qdrant local storage (internals changed); local vector writes will be slow")
        return
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
