"""The graph store on a Neo4j 5 server (Bolt), with the official async driver.

Same contract as the embedded :class:`~osmose.stores.sqlite_graph.SqliteGraphStore`
(the contract suite runs against both and compares their graphs); the model is
in :mod:`osmose.stores.graph` and, with a diagram, docs/graph-model.md.

Writes. One document is one managed transaction (``execute_write``: the driver
retries it on transient errors such as deadlocks between two documents sharing
concepts, and on a lost connection), in this order:

1. one statement: upsert the Document node, read the concepts the document
   mentioned before, delete its MENTIONS, MENTIONED_IN and Merge records and
   the slides and segments it no longer has;
2. MERGE its slides and segments;
3. MERGE the concepts it mentions (shared nodes, canonical key) and create
   its MENTIONS and MENTIONED_IN edges;
4. MERGE each RELATED_TO edge it relates, replacing its own sources there;
   strip its sources from the edges it related before and not any more;
5. create its Merge records;
6. for every concept touched in 1-5: delete it when no document mentions it any
   more, else resolve name/type/aliases from all documents' MENTIONS and
   refresh its lookup keys (Alias nodes) when they changed (writes only for
   what changed, so a replay of an unchanged document writes little there).

With a concept resolver (the persister's), the transaction first MERGEs the
tenant's ``(:WriteLock {tenant})`` node, whose write lock it holds to the
commit, then looks the document's keys up and resolves them: resolving writers
of a tenant run one at a time, each seeing the others' commits. The Document's
``committed`` property is the commit marker (:meth:`commit_document`); reads
for search and stats leave out the documents where it is false.

Every batched step is one UNWIND statement per chunk of ``batch_size`` rows.
The transaction function only reads and writes the database, so a retry simply
runs it again. Nothing is ever incremented: a replay writes the same values.

Schema. Uniqueness constraints on each label's key, tenant first (composite
uniqueness constraints are in Neo4j Community; node key constraints are not),
created with IF NOT EXISTS on first use, once per process and server.

Errors. Mapped at this boundary: authentication failures and a missing
database become :class:`ConfigurationError`; an unreachable or busy server
:class:`BackendUnavailableError` (retryable); a rejected statement
:class:`PermanentError`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ClassVar, TypeVar

import neo4j
from neo4j import AsyncGraphDatabase, AsyncManagedTransaction, RoutingControl
from neo4j import exceptions as neo4j_errors

from osmose.errors import (
    BackendUnavailableError,
    ConfigurationError,
    OsmoseError,
    PermanentError,
    RetryableError,
)
from osmose.stores import neo4j_queries as q
from osmose.stores.graph import (
    ConceptMention,
    ConceptResolver,
    ConceptRow,
    DocumentGraph,
    DocumentRow,
    RelatedConcept,
    SlideMention,
    TenantCounts,
)
from osmose.stores.graph_rules import PreparedDocument, lookup_keys, prepare, resolve_concept

__all__ = ["DEFAULT_BATCH_SIZE", "Neo4jGraphStore"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Rows per UNWIND statement: large enough to amortise a round trip and the
# planner, small enough to keep one statement's parameters to a few megabytes.
DEFAULT_BATCH_SIZE = 5000
# Seconds the driver keeps retrying a transaction on transient errors.
MAX_RETRY_TIME_S = 30.0
CONNECTION_TIMEOUT_S = 10.0

_SCHEMES = frozenset({"neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc"})
_DOCUMENT_FIELDS = ("file_name", "title", "format", "language", "tier", "slides", "sha256")


class Neo4jGraphStore:
    """A :class:`~osmose.stores.graph.GraphStore` on a Neo4j server.

    The constructor only validates settings; the server is contacted on first
    use (schema creation, then the call).
    """

    # (uri, database) whose schema this process has already ensured.
    _schema_ready: ClassVar[set[tuple[str, str | None]]] = set()

    def __init__(
        self,
        uri: str,
        *,
        user: str = "neo4j",
        password: str | None,
        database: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_retry_time_s: float = MAX_RETRY_TIME_S,
    ) -> None:
        if not password:
            raise ConfigurationError(
                f"the Neo4j graph store at {uri} needs a password: set OSMOSE_GRAPH_PASSWORD "
                "(and OSMOSE_GRAPH_USER if not neo4j)"
            )
        scheme = uri.partition("://")[0].lower() if "://" in uri else ""
        if scheme not in _SCHEMES:
            raise ConfigurationError(
                f"invalid graph URI {uri!r}: want neo4j://host:port or bolt://host:port (+s/+ssc for TLS)"
            )
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be positive, got {batch_size}")
        self._uri = uri
        self._user = user
        self._database = database
        self._batch = batch_size
        self._closed = False
        try:
            self._driver = AsyncGraphDatabase.driver(
                uri,
                auth=(user, password),
                max_transaction_retry_time=max_retry_time_s,
                connection_timeout=CONNECTION_TIMEOUT_S,
                notifications_min_severity="OFF",
            )
        except (ValueError, neo4j_errors.ConfigurationError) as exc:
            raise ConfigurationError(f"invalid graph URI {uri!r} (want neo4j://host:port or bolt://host:port): {exc}") from exc

    # -- GraphStore: writes -----------------------------------------------------------

    async def write_document(self, graph: DocumentGraph, *, committed: bool = True,
                             resolver: ConceptResolver | None = None) -> None:
        started = time.perf_counter()
        prepared = prepare(graph)
        if q.SEP in prepared.document.doc_id or any(q.SEP in ev for r in prepared.relations for ev in r.evidence):
            raise PermanentError(f"doc_id and evidence ids may not contain U+001F (document {prepared.document.doc_id!r})")
        stamp = uuid.uuid4().hex
        if resolver is not None and graph.concepts:
            prepared = await self._write(self._resolve_and_write_tx, graph, resolver, committed, stamp)
        else:
            await self._write(self._write_tx, prepared, stamp, committed)
        logger.debug(
            "graph write",
            extra={"tenant": prepared.tenant, "doc_id": prepared.document.doc_id,
                   "concepts": len(prepared.concepts), "mentions": len(prepared.mentions),
                   "relations": len(prepared.relations),
                   "ms": round((time.perf_counter() - started) * 1000, 1)},
        )

    async def delete_document(self, tenant: str, doc_id: str) -> bool:
        return await self._write(self._delete_tx, tenant, doc_id)

    async def commit_document(self, tenant: str, doc_id: str) -> bool:
        async def commit(tx: AsyncManagedTransaction) -> bool:
            return bool((await _values(tx, q.COMMIT_DOCUMENT, "n", t=tenant, d=doc_id))[0])

        return await self._write(commit)

    async def visible_documents(self, tenant: str, doc_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for batch in _chunks(list(dict.fromkeys(doc_ids)), self._batch):
            found.update(r["doc_id"] for r in await self._read(q.VISIBLE_DOCUMENTS, t=tenant, ids=batch))
        return found

    async def pending_documents(self, tenant: str | None = None) -> dict[str, list[str]]:
        records = (await self._read(q.PENDING_TENANT, t=tenant) if tenant is not None
                   else await self._read(q.PENDING_ALL))
        pending: dict[str, list[str]] = defaultdict(list)
        for r in records:
            pending[r["tenant"]].append(r["doc_id"])
        return dict(pending)

    async def _hidden(self, tenant: str) -> list[str]:
        """The tenant's documents written without their commit marker (left out of reads)."""
        return (await self.pending_documents(tenant)).get(tenant, [])

    # -- GraphStore: reads -------------------------------------------------------------

    async def get_document(self, tenant: str, doc_id: str) -> DocumentRow | None:
        records = await self._read(q.GET_DOCUMENT, t=tenant, d=doc_id)
        if not records:
            return None
        doc = records[0]["doc"]
        return DocumentRow(doc_id=doc["doc_id"], **{f: doc[f] for f in _DOCUMENT_FIELDS})

    async def document_ids(self, tenant: str) -> list[str]:
        return [r["doc_id"] for r in await self._read(q.DOCUMENT_IDS, t=tenant)]

    async def get_concept(self, tenant: str, canonical_key: str) -> ConceptRow | None:
        records = await self._read(q.GET_CONCEPT, t=tenant, key=canonical_key)
        if not records:
            return None
        r = records[0]
        return ConceptRow(r["key"], r["name"], r["type"], tuple(r["aliases"]))

    async def stats(self, tenant: str | None = None) -> dict[str, TenantCounts]:
        if tenant is not None:
            hidden = await self._hidden(tenant)
            record = (await self._read(q.STATS_TENANT, t=tenant, hidden=hidden, sep=q.SEP))[0]
            return {tenant: TenantCounts(**record.data())}
        hidden_all = [t + q.SEP + d for t, ds in (await self.pending_documents()).items() for d in ds]
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        for r in await self._read(q.STATS_ALL, hidden=hidden_all, sep=q.SEP):
            if r["n"]:
                counts[r["tenant"]][r["field"]] = r["n"]
        return {t: TenantCounts(**c) for t, c in sorted(counts.items())}

    async def concepts_for_slides(
        self, tenant: str, slides: list[tuple[str, int]]
    ) -> dict[tuple[str, int], list[str]]:
        return {
            pair: list(dict.fromkeys(m.name for m in mentions))  # each display name once
            for pair, mentions in (await self.mentions_on_slides(tenant, slides)).items()
        }

    async def mentions_on_slides(
        self, tenant: str, slides: list[tuple[str, int]]
    ) -> dict[tuple[str, int], list[ConceptMention]]:
        wanted = list(dict.fromkeys((doc_id, int(number)) for doc_id, number in slides))
        found: dict[tuple[str, int], list[ConceptMention]] = {pair: [] for pair in wanted}
        hidden = set(await self._hidden(tenant)) if wanted else set()
        for batch in _chunks([pair for pair in wanted if pair[0] not in hidden], self._batch):
            pairs = [{"doc_id": d, "number": n} for d, n in batch]
            for r in await self._read(q.MENTIONS_ON_SLIDES, t=tenant, pairs=pairs):
                found[(r["doc_id"], r["number"])].append(ConceptMention(r["key"], r["name"], r["count"]))
        # Sorted here, not in Cypher, so strings order by code point exactly as in SQLite.
        return {pair: sorted(ms, key=lambda m: (-m.count, m.name, m.canonical_key)) for pair, ms in found.items()}

    async def related_concepts(
        self, tenant: str, canonical_keys: list[str], limit: int = 10
    ) -> dict[str, list[RelatedConcept]]:
        keys = list(dict.fromkeys(canonical_keys))
        found: dict[str, list[RelatedConcept]] = {key: [] for key in keys}
        if limit <= 0:
            return found
        hidden = await self._hidden(tenant)
        for batch in _chunks(keys, self._batch):
            for r in await self._read(q.RELATED, t=tenant, keys=batch, hidden=hidden, sep=q.SEP):
                found[r["key"]].append(RelatedConcept(r["name"], r["other"], r["kind"], float(r["weight"])))
        return {
            key: sorted(related, key=lambda x: (-x.weight, x.name, x.canonical_key, x.kind))[:limit]
            for key, related in found.items()
        }

    async def slides_mentioning(
        self, tenant: str, canonical_keys: list[str], limit: int = 3
    ) -> dict[str, list[SlideMention]]:
        keys = list(dict.fromkeys(canonical_keys))
        found: dict[str, list[SlideMention]] = {key: [] for key in keys}
        if limit <= 0:
            return found
        hidden = await self._hidden(tenant)
        for batch in _chunks(keys, self._batch):
            for r in await self._read(q.SLIDES_MENTIONING, t=tenant, keys=batch, limit=limit, hidden=hidden):
                slides = [SlideMention(s["doc_id"], s["file_name"], s["number"], s["title"], s["count"])
                          for s in r["slides"]]
                found[r["key"]] = sorted(slides, key=lambda s: (-s.count, s.doc_id, s.number))
        return found

    async def find_concepts(self, tenant: str, keys: list[str]) -> dict[str, list[ConceptRow]]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, dict[str, ConceptRow]] = {key: {} for key in wanted}
        for batch in _chunks(wanted, self._batch):
            for r in await self._read(q.FIND_CONCEPTS, t=tenant, keys=batch):
                row = ConceptRow(r["canonical_key"], r["name"], r["type"], tuple(r["aliases"]))
                found[r["key"]][row.canonical_key] = row
        return {key: [rows[k] for k in sorted(rows)] for key, rows in found.items()}

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._driver.close()

    # -- transactions -------------------------------------------------------------------------

    async def _resolve_and_write_tx(self, tx: AsyncManagedTransaction, graph: DocumentGraph,
                                    resolver: ConceptResolver, committed: bool, stamp: str) -> PreparedDocument:
        """Resolution and write as one transaction, behind the tenant's write lock (taken
        first, held to the commit): the lookup sees every resolving writer's commit."""
        await _run(tx, q.TAKE_WRITE_LOCK, t=graph.tenant)
        wanted = list(dict.fromkeys(resolver.lookup_keys(graph)))
        found: dict[str, dict[str, ConceptRow]] = {key: {} for key in wanted}
        for batch in _chunks(wanted, self._batch):
            for r in await _records(tx, q.FIND_CONCEPTS, t=graph.tenant, keys=batch):
                row = ConceptRow(r["canonical_key"], r["name"], r["type"], tuple(r["aliases"]))
                found[r["key"]][row.canonical_key] = row
        resolved = resolver.apply(graph, {key: [rows[k] for k in sorted(rows)] for key, rows in found.items()})
        prepared = prepare(resolved)
        await self._write_tx(tx, prepared, stamp, committed)
        return prepared

    async def _write_tx(self, tx: AsyncManagedTransaction, p: PreparedDocument, stamp: str,
                        committed: bool = True) -> None:
        t, d = p.tenant, p.document.doc_id
        doc = p.document
        [reset] = await _records(
            tx, q.RESET, t=t, d=d, props={**{f: getattr(doc, f) for f in _DOCUMENT_FIELDS}, "committed": committed},
            slides=[s.number for s in p.slides], segments=[s.segment_id for s in p.segments],
        )
        old_keys: list[str] = reset["old_keys"]

        slides = [{"number": s.number, "slide_id": s.slide_id, "title": s.title, "segment_id": s.segment_id}
                  for s in p.slides]
        segments = [{"segment_id": s.segment_id, "index": s.index, "title": s.title,
                     "slide_numbers": list(s.slide_numbers)} for s in p.segments]
        for start in range(0, max(len(slides), len(segments)), self._batch):
            await _run(tx, q.OWNED, t=t, d=d, slides=slides[start : start + self._batch],
                       segments=segments[start : start + self._batch])

        totals = p.mention_totals()
        concept_rows: list[dict[str, Any]] = [
            {"key": key, "count": totals[key], "name": c.name if c else None, "type": c.type if c else None,
             "aliases": list(c.aliases) if c else None}
            for key, c in p.concepts.items()
        ]
        for rows in _chunks(concept_rows, self._batch):
            await _run(tx, q.CONCEPTS, t=t, d=d, rows=rows)
        mention_rows = sorted(p.mentions.items(), key=lambda kv: kv[0][1])
        for chunk in _chunks(mention_rows, self._batch):
            by_slide: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for (key, slide), count in chunk:
                by_slide[slide].append({"key": key, "count": count})
            rows = [{"slide": slide, "mentions": ms} for slide, ms in by_slide.items()]
            await _run(tx, q.MENTIONS, t=t, d=d, rows=rows)

        prefix = d + q.SEP
        relation_rows: list[dict[str, Any]] = [
            {"s": r.source_key, "t": r.target_key, "kind": r.kind, "label": r.label,
             "sources": [prefix + ev for ev in r.evidence], "evidence": list(r.evidence)}
            for r in p.relations
        ]
        for rows in _chunks(relation_rows, self._batch):
            await _run(tx, q.RELATIONS, t=t, rows=rows, prefix=prefix, stamp=stamp)
        for keys in _chunks(old_keys, self._batch):
            await _run(tx, q.STRIP_RELATIONS, t=t, keys=keys, prefix=prefix, stamp=stamp)

        merge_rows: list[dict[str, Any]] = [{"from_key": m.from_key, "into_key": m.into_key, "reason": m.reason,
                       "similarity": float(m.similarity)} for m in p.merges]
        for rows in _chunks(merge_rows, self._batch):
            await _run(tx, q.MERGES, t=t, d=d, rows=rows)

        await self._refresh_concepts(tx, t, set(old_keys) | set(p.concepts))

    async def _delete_tx(self, tx: AsyncManagedTransaction, tenant: str, doc_id: str) -> bool:
        existed = (await _values(tx, q.DOCUMENT_EXISTS, "n", t=tenant, d=doc_id))[0] > 0
        if not existed:
            return False
        old_keys = await _values(tx, q.OLD_KEYS, "key", t=tenant, d=doc_id)
        # A fresh stamp marks no edge: the document's sources go from all of them.
        stamp, prefix = uuid.uuid4().hex, doc_id + q.SEP
        for keys in _chunks(old_keys, self._batch):
            await _run(tx, q.STRIP_RELATIONS, t=tenant, keys=keys, prefix=prefix, stamp=stamp)
        await _run(tx, q.DROP_DOCUMENT, t=tenant, d=doc_id)
        await self._refresh_concepts(tx, tenant, set(old_keys))
        await _run(tx, q.DROP_IDLE_WRITE_LOCK, t=tenant)
        return True

    async def _refresh_concepts(self, tx: AsyncManagedTransaction, tenant: str, keys: set[str]) -> None:
        """Step 6 of a write: orphans deleted, the others resolved from every document."""
        orphans: list[str] = []
        stale_lookups: set[str] = set()
        resolved: list[dict[str, Any]] = []
        relinked: list[dict[str, Any]] = []
        for batch in _chunks(sorted(keys), self._batch):
            for r in await _records(tx, q.CONCEPT_SOURCES, t=tenant, keys=batch):
                old_lookup = sorted(r["lookup"] or ())
                if not r["sources"]:
                    orphans.append(r["key"])
                    stale_lookups.update(old_lookup)
                    continue
                sources = [(s["name"], s["type"], s["aliases"] or ()) for s in r["sources"] if s["name"] is not None]
                name, type_, aliases = resolve_concept(r["key"], sources)
                if (name, type_, list(aliases)) != (r["name"], r["type"], list(r["aliases"] or ())):
                    resolved.append({"key": r["key"], "name": name, "type": type_, "aliases": list(aliases)})
                lookup = sorted(lookup_keys(r["key"], [s[0] for s in sources], aliases))
                if lookup != old_lookup:
                    relinked.append({"key": r["key"], "lookup": lookup})
                    stale_lookups.update(set(old_lookup) - set(lookup))
        for batch in _chunks(orphans, self._batch):
            await _run(tx, q.DROP_CONCEPTS, t=tenant, keys=batch)
        for rows in _chunks(resolved, self._batch):
            await _run(tx, q.RESOLVE_CONCEPTS, t=tenant, rows=rows)
        for rows in _chunks(relinked, self._batch):
            await _run(tx, q.RESOLVE_LOOKUP, t=tenant, rows=rows)
        for batch in _chunks(sorted(stale_lookups), self._batch):
            await _run(tx, q.DROP_ORPHAN_ALIASES, t=tenant, keys=batch)

    # -- plumbing --------------------------------------------------------------------------------

    async def _ensure_schema(self) -> None:
        marker = (self._uri, self._database)
        if marker in self._schema_ready:
            return
        for statement in q.SCHEMA:
            await self._driver.execute_query(statement, database_=self._database)
        self._schema_ready.add(marker)
        logger.info("graph schema ensured", extra={"uri": self._uri, "database": self._database})

    async def _write(self, work: Callable[..., Awaitable[T]], *args: Any) -> T:
        if self._closed:
            raise RuntimeError("Neo4jGraphStore is closed")
        try:
            await self._ensure_schema()
            async with self._driver.session(database=self._database) as session:
                return await session.execute_write(work, *args)
        except Exception as exc:
            translated = self._translate(exc)
            if translated is exc:
                raise
            raise translated from exc

    async def _read(self, query: str, **params: Any) -> list[neo4j.Record]:
        if self._closed:
            raise RuntimeError("Neo4jGraphStore is closed")
        try:
            await self._ensure_schema()
            result = await self._driver.execute_query(
                query, params, database_=self._database, routing_=RoutingControl.READ
            )
        except Exception as exc:
            translated = self._translate(exc)
            if translated is exc:
                raise
            raise translated from exc
        return result.records

    def _translate(self, exc: Exception) -> Exception:
        """Driver and server errors → the platform's tree; anything else is a bug, left as is."""
        where = f"Neo4j graph store at {self._uri}"
        if isinstance(exc, OsmoseError):
            return exc
        if isinstance(exc, neo4j_errors.AuthError):
            return ConfigurationError(
                f"{where} refused the credentials of user {self._user!r} ({exc.message}); "
                "check OSMOSE_GRAPH_USER and OSMOSE_GRAPH_PASSWORD"
            )
        if isinstance(exc, neo4j_errors.Forbidden):
            return ConfigurationError(f"{where}: user {self._user!r} may not do this ({exc.message})")
        if isinstance(exc, neo4j_errors.ServiceUnavailable | neo4j_errors.SessionExpired
                      | neo4j_errors.ConnectionPoolError | ConnectionError | TimeoutError):
            return BackendUnavailableError(
                f"{where} is unreachable ({exc}); is the server running? (`make neo4j-up` starts a local one)"
            )
        if isinstance(exc, neo4j_errors.TransientError):
            return BackendUnavailableError(f"{where} is busy, still failing after retries: {exc.message}")
        if isinstance(exc, neo4j_errors.ClientError):
            if exc.code and "DatabaseNotFound" in exc.code:
                return ConfigurationError(f"{where} has no database {self._database!r}")
            return PermanentError(f"{where} rejected a statement: {exc.code}: {exc.message}")
        if isinstance(exc, neo4j_errors.DatabaseError):
            return RetryableError(f"{where} failed: {exc.code}: {exc.message}")
        if isinstance(exc, neo4j_errors.ConfigurationError):
            return ConfigurationError(f"{where}: {exc}")
        return exc


async def _run(tx: AsyncManagedTransaction, query: str, **params: Any) -> None:
    await (await tx.run(query, params)).consume()


async def _values(tx: AsyncManagedTransaction, query: str, key: str, **params: Any) -> list[Any]:
    return [r[key] for r in await _records(tx, query, **params)]


async def _records(tx: AsyncManagedTransaction, query: str, **params: Any) -> list[neo4j.Record]:
    return [r async for r in await tx.run(query, params)]


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
