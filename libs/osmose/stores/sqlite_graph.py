"""The embedded graph store: one SQLite file, no server (the offline default).

Nodes and edges of the graph model in :mod:`osmose.stores.graph` become rows,
every table keyed by tenant first:

- ``documents``, ``slides``, ``segments``: one document's own nodes.
- ``concept_sources``: what each document says about a concept it mentions
  (name, type, aliases). ``concepts`` is the resolved, shared node, recomputed
  for the keys a write or delete touches, and present exactly while some
  document of the tenant mentions the key (resolution:
  :func:`osmose.stores.graph_rules.resolve_concept`).
- ``concept_lookup``: the lookup keys of each concept (``find_concepts``),
  recomputed with the concept.
- ``mentions``: (document, slide, concept) with a count.
- ``relation_evidence``: one row per (edge, evidence id, document). An edge's
  weight is the number of distinct evidence ids over all documents, computed
  when read, so a replay cannot double-count. A document relates only concepts
  it mentions (:func:`osmose.stores.graph_rules.prepare`), so both ends of an
  edge exist while any of its evidence does.
- ``merges``: which keys a document's extraction merged into which.

Reads a second implementation must match (the contract tests pin them):
``related_concepts`` follows edges both ways, one entry per (neighbour, kind)
weighing the heavier direction, ordered by weight, then name;
``concepts_for_slides`` orders by mention count, then name, each name once;
``slides_mentioning`` by count, then doc_id, then number.

A write removes the document's previous rows and inserts the new ones in one
transaction: readers see the old version or the new one, never a mix. A
document written with ``committed=False`` has ``documents.committed = 0`` until
:meth:`SqliteGraphStore.commit_document`; the reads join on it (``_HIDDEN``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from osmose.errors import (
    BackendUnavailableError,
    ConfigurationError,
    OsmoseError,
    PermanentError,
    RetryableError,
)
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
from osmose.stores.graph_rules import lookup_keys, prepare, resolve_concept

__all__ = ["SqliteGraphStore"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# 2: concept_lookup (filled from concept_sources when a version-1 file is opened).
# 3: lookup keys are canonical keys (plurals folded): recomputed when an older file is opened.
# 4: documents.committed, the commit marker (documents of older files count as committed).
SCHEMA_VERSION = 4
# Seconds a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_S = 10.0
# Pairs per statement in batched reads; SQLite allows 32766 parameters.
_READ_BATCH = 400

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    tenant TEXT NOT NULL, doc_id TEXT NOT NULL,
    file_name TEXT NOT NULL, title TEXT NOT NULL, format TEXT NOT NULL, language TEXT NOT NULL,
    tier TEXT NOT NULL, slides INTEGER NOT NULL, sha256 TEXT NOT NULL,
    committed INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant, doc_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS slides (
    tenant TEXT NOT NULL, doc_id TEXT NOT NULL, number INTEGER NOT NULL,
    slide_id TEXT NOT NULL, title TEXT NOT NULL, segment_id TEXT NOT NULL,
    PRIMARY KEY (tenant, doc_id, number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segments (
    tenant TEXT NOT NULL, doc_id TEXT NOT NULL, segment_id TEXT NOT NULL,
    idx INTEGER NOT NULL, title TEXT NOT NULL, slide_numbers TEXT NOT NULL,
    PRIMARY KEY (tenant, doc_id, segment_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS concept_sources (
    tenant TEXT NOT NULL, canonical_key TEXT NOT NULL, doc_id TEXT NOT NULL,
    name TEXT NOT NULL, type TEXT NOT NULL, aliases TEXT NOT NULL,
    PRIMARY KEY (tenant, canonical_key, doc_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS concept_sources_by_doc ON concept_sources (tenant, doc_id);
CREATE TABLE IF NOT EXISTS concepts (
    tenant TEXT NOT NULL, canonical_key TEXT NOT NULL,
    name TEXT NOT NULL, type TEXT NOT NULL, aliases TEXT NOT NULL,
    PRIMARY KEY (tenant, canonical_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mentions (
    tenant TEXT NOT NULL, doc_id TEXT NOT NULL, slide_number INTEGER NOT NULL,
    concept_key TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (tenant, doc_id, slide_number, concept_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mentions_by_concept ON mentions (tenant, concept_key);
CREATE TABLE IF NOT EXISTS relation_evidence (
    tenant TEXT NOT NULL, source_key TEXT NOT NULL, target_key TEXT NOT NULL, kind TEXT NOT NULL,
    evidence_id TEXT NOT NULL, doc_id TEXT NOT NULL, label TEXT NOT NULL,
    PRIMARY KEY (tenant, source_key, target_key, kind, evidence_id, doc_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS relation_evidence_by_doc ON relation_evidence (tenant, doc_id);
CREATE INDEX IF NOT EXISTS relation_evidence_by_target ON relation_evidence (tenant, target_key);
CREATE TABLE IF NOT EXISTS concept_lookup (
    tenant TEXT NOT NULL, lookup_key TEXT NOT NULL, canonical_key TEXT NOT NULL,
    PRIMARY KEY (tenant, lookup_key, canonical_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS concept_lookup_by_concept ON concept_lookup (tenant, canonical_key);
CREATE TABLE IF NOT EXISTS merges (
    tenant TEXT NOT NULL, doc_id TEXT NOT NULL, from_key TEXT NOT NULL, into_key TEXT NOT NULL,
    reason TEXT NOT NULL, similarity REAL NOT NULL,
    PRIMARY KEY (tenant, doc_id, from_key, into_key)
) WITHOUT ROWID;
"""

# A row `x` (with tenant and doc_id) of a document written but not committed yet.
_HIDDEN = ("EXISTS (SELECT 1 FROM documents h WHERE h.tenant = x.tenant AND h.doc_id = x.doc_id "
           "AND h.committed = 0)")

# Tables holding one document's own rows, all deleted by (tenant, doc_id).
_PER_DOCUMENT = ("slides", "segments", "concept_sources", "mentions", "relation_evidence", "merges")

_RELATED_SQL = """
WITH wanted(key) AS (VALUES {values}),
directed AS (
    SELECT w.key AS key, r.target_key AS other, r.kind AS kind, COUNT(DISTINCT r.evidence_id) AS weight
    FROM wanted w JOIN relation_evidence r ON r.tenant = :tenant AND r.source_key = w.key
    WHERE r.doc_id NOT IN (SELECT doc_id FROM documents WHERE tenant = :tenant AND committed = 0)
    GROUP BY w.key, r.target_key, r.kind
    UNION ALL
    SELECT w.key, r.source_key, r.kind, COUNT(DISTINCT r.evidence_id)
    FROM wanted w JOIN relation_evidence r ON r.tenant = :tenant AND r.target_key = w.key
    WHERE r.doc_id NOT IN (SELECT doc_id FROM documents WHERE tenant = :tenant AND committed = 0)
    GROUP BY w.key, r.source_key, r.kind
),
edges AS (SELECT key, other, kind, MAX(weight) AS weight FROM directed GROUP BY key, other, kind),
ranked AS (
    SELECT e.key, e.other, e.kind, e.weight, o.name,
           ROW_NUMBER() OVER (PARTITION BY e.key ORDER BY e.weight DESC, o.name, e.other, e.kind) AS rank
    FROM edges e
    JOIN concepts k ON k.tenant = :tenant AND k.canonical_key = e.key
    JOIN concepts o ON o.tenant = :tenant AND o.canonical_key = e.other
)
SELECT key, other, kind, weight, name FROM ranked WHERE rank <= :limit ORDER BY key, rank
"""


class SqliteGraphStore:
    """A :class:`~osmose.stores.graph.GraphStore` in one SQLite file (WAL mode).

    Threading: every call runs on one dedicated worker thread that owns the
    connection. A document's write takes tens of milliseconds: short, but long
    enough to stall heartbeats and concurrent pages if run on the event loop,
    and a SQLite connection must not be used by two threads at once. One
    thread gives both: a free loop and serialised access (SQLite serialises
    writers anyway).
    """

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="osmose-graph")
        self._closed = False
        try:
            self._conn = self._executor.submit(self._guarded, self._open).result()
        except BaseException:
            self._executor.shutdown(wait=False)
            raise

    # -- GraphStore ---------------------------------------------------------

    async def write_document(self, graph: DocumentGraph, *, committed: bool = True,
                             resolver: ConceptResolver | None = None) -> None:
        await self._call(self._write_document, graph, committed, resolver)

    async def commit_document(self, tenant: str, doc_id: str) -> bool:
        return await self._call(self._commit_document, tenant, doc_id)

    async def visible_documents(self, tenant: str, doc_ids: list[str]) -> set[str]:
        return await self._call(self._visible_documents, tenant, doc_ids)

    async def pending_documents(self, tenant: str | None = None) -> dict[str, list[str]]:
        return await self._call(self._pending_documents, tenant)

    async def delete_document(self, tenant: str, doc_id: str) -> bool:
        return await self._call(self._delete_document, tenant, doc_id)

    async def get_document(self, tenant: str, doc_id: str) -> DocumentRow | None:
        return await self._call(self._get_document, tenant, doc_id)

    async def document_ids(self, tenant: str) -> list[str]:
        return await self._call(self._document_ids, tenant)

    async def get_concept(self, tenant: str, canonical_key: str) -> ConceptRow | None:
        """The shared concept node (resolved name and type, aliases of all documents)."""
        return await self._call(self._get_concept, tenant, canonical_key)

    async def stats(self, tenant: str | None = None) -> dict[str, TenantCounts]:
        return await self._call(self._stats, tenant)

    async def concepts_for_slides(
        self, tenant: str, slides: list[tuple[str, int]]
    ) -> dict[tuple[str, int], list[str]]:
        return await self._call(self._concepts_for_slides, tenant, slides)

    async def related_concepts(
        self, tenant: str, canonical_keys: list[str], limit: int = 10
    ) -> dict[str, list[RelatedConcept]]:
        return await self._call(self._related_concepts, tenant, canonical_keys, limit)

    async def mentions_on_slides(
        self, tenant: str, slides: list[tuple[str, int]]
    ) -> dict[tuple[str, int], list[ConceptMention]]:
        return await self._call(self._mentions_on_slides, tenant, slides)

    async def slides_mentioning(
        self, tenant: str, canonical_keys: list[str], limit: int = 3
    ) -> dict[str, list[SlideMention]]:
        return await self._call(self._slides_mentioning, tenant, canonical_keys, limit)

    async def find_concepts(self, tenant: str, keys: list[str]) -> dict[str, list[ConceptRow]]:
        return await self._call(self._find_concepts, tenant, keys)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)

    # -- plumbing -------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise RuntimeError("SqliteGraphStore is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self._guarded, fn, *args))

    def _guarded(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except sqlite3.Error as exc:
            raise _translate(exc, self._path) from exc

    def _open(self) -> sqlite3.Connection:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create the graph store's folder {self._path.parent}: {exc}") from exc
        # isolation_level=None: no implicit transactions; writes use BEGIN IMMEDIATE.
        conn = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"graph store {self._path} has schema version {version}, newer than this "
                    f"osmose understands ({SCHEMA_VERSION}); upgrade osmose"
                )
            conn.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL never corrupts the file; a power loss may undo the
            # last commits, which replaying the documents redoes (writes are idempotent).
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA temp_store=MEMORY")
            with _transaction(conn):  # not executescript(): it commits on its own
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                columns = {row[1] for row in conn.execute("PRAGMA table_info(documents)")}
                if "committed" not in columns:   # a file of version < 4
                    conn.execute("ALTER TABLE documents ADD COLUMN committed INTEGER NOT NULL DEFAULT 1")
                if 0 < version < 3:  # (re)fill concept_lookup: recompute every concept once
                    self._conn = conn  # _refresh_concepts works on self._conn
                    for (tenant,) in conn.execute("SELECT DISTINCT tenant FROM concepts").fetchall():
                        rows = conn.execute("SELECT canonical_key FROM concepts WHERE tenant = ?", (tenant,))
                        self._refresh_concepts(tenant, {key for (key,) in rows})
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise
        return conn

    # -- writes (worker thread) ---------------------------------------------------

    def _write_document(self, graph: DocumentGraph, committed: bool = True,
                        resolver: ConceptResolver | None = None) -> None:
        started = time.perf_counter()
        conn = self._conn
        # BEGIN IMMEDIATE holds the file's write lock: the lookup and the write below are one
        # step for every writer (other processes included), so resolution sees every commit.
        with _transaction(conn):
            if resolver is not None and graph.concepts:
                graph = resolver.apply(graph, self._find_concepts(graph.tenant, resolver.lookup_keys(graph)))
            prepared = prepare(graph)
            tenant, doc = prepared.tenant, prepared.document
            evidence = [
                (tenant, r.source_key, r.target_key, r.kind, ev, doc.doc_id, r.label)
                for r in prepared.relations
                for ev in r.evidence
            ]
            touched = self._concept_keys_of(tenant, doc.doc_id)
            self._delete_rows(tenant, doc.doc_id)
            conn.execute(
                "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (tenant, doc.doc_id, doc.file_name, doc.title, doc.format, doc.language, doc.tier,
                 doc.slides, doc.sha256, int(committed)),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO slides VALUES (?, ?, ?, ?, ?, ?)",
                [(tenant, doc.doc_id, s.number, s.slide_id, s.title, s.segment_id) for s in prepared.slides],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO segments VALUES (?, ?, ?, ?, ?, ?)",
                [(tenant, doc.doc_id, s.segment_id, s.index, s.title, json.dumps(list(s.slide_numbers)))
                 for s in prepared.segments],
            )
            conn.executemany(
                "INSERT INTO concept_sources VALUES (?, ?, ?, ?, ?, ?)",
                [(tenant, key, doc.doc_id, c.name, c.type, json.dumps(list(c.aliases)))
                 for key, c in prepared.concepts.items() if c is not None],
            )
            conn.executemany(
                "INSERT INTO mentions VALUES (?, ?, ?, ?, ?)",
                [(tenant, doc.doc_id, slide, key, count) for (key, slide), count in prepared.mentions.items()],
            )
            conn.executemany("INSERT OR IGNORE INTO relation_evidence VALUES (?, ?, ?, ?, ?, ?, ?)", evidence)
            conn.executemany(
                "INSERT OR REPLACE INTO merges VALUES (?, ?, ?, ?, ?, ?)",
                [(tenant, doc.doc_id, m.from_key, m.into_key, m.reason, m.similarity) for m in prepared.merges],
            )
            touched.update(prepared.concepts)
            self._refresh_concepts(tenant, touched)
        logger.debug(
            "graph write",
            extra={"tenant": tenant, "doc_id": doc.doc_id, "concepts": len(prepared.concepts),
                   "mentions": len(prepared.mentions), "evidence": len(evidence),
                   "ms": round((time.perf_counter() - started) * 1000, 1)},
        )

    def _commit_document(self, tenant: str, doc_id: str) -> bool:
        with _transaction(self._conn):
            cursor = self._conn.execute(
                "UPDATE documents SET committed = 1 WHERE tenant = ? AND doc_id = ?", (tenant, doc_id))
        return cursor.rowcount > 0

    def _delete_document(self, tenant: str, doc_id: str) -> bool:
        with _transaction(self._conn):
            touched = self._concept_keys_of(tenant, doc_id)
            self._delete_rows(tenant, doc_id)
            cursor = self._conn.execute("DELETE FROM documents WHERE tenant = ? AND doc_id = ?", (tenant, doc_id))
            existed = cursor.rowcount > 0
            self._refresh_concepts(tenant, touched)
        return existed

    def _concept_keys_of(self, tenant: str, doc_id: str) -> set[str]:
        rows = self._conn.execute(
            "SELECT concept_key FROM mentions WHERE tenant = ? AND doc_id = ? "
            "UNION SELECT canonical_key FROM concept_sources WHERE tenant = ? AND doc_id = ?",
            (tenant, doc_id, tenant, doc_id),
        )
        return {key for (key,) in rows}

    def _delete_rows(self, tenant: str, doc_id: str) -> None:
        for table in _PER_DOCUMENT:
            self._conn.execute(f"DELETE FROM {table} WHERE tenant = ? AND doc_id = ?", (tenant, doc_id))

    def _refresh_concepts(self, tenant: str, keys: set[str]) -> None:
        """Recompute the shared nodes of `keys`: dropped when nothing mentions them,
        else name/type/aliases resolved over every document's contribution."""
        if not keys:
            return
        conn = self._conn
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS touched (key TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM temp.touched")
        conn.executemany("INSERT INTO temp.touched VALUES (?)", [(k,) for k in keys])
        for table, column in (("concepts", "canonical_key"), ("concept_lookup", "canonical_key")):
            conn.execute(
                f"DELETE FROM {table} WHERE tenant = ? AND {column} IN (SELECT key FROM temp.touched)", (tenant,)
            )
        mentioned = {
            key for (key,) in conn.execute(
                "SELECT DISTINCT concept_key FROM mentions "
                "WHERE tenant = ? AND concept_key IN (SELECT key FROM temp.touched)",
                (tenant,),
            )
        }
        sources: dict[str, list[tuple[str, str, list[str]]]] = defaultdict(list)
        for key, name, type_, aliases in conn.execute(
            "SELECT canonical_key, name, type, aliases FROM concept_sources "
            "WHERE tenant = ? AND canonical_key IN (SELECT key FROM temp.touched)",
            (tenant,),
        ):
            if key in mentioned:
                sources[key].append((name, type_, json.loads(aliases)))
        rows: list[tuple[str, str, str, str, str]] = []
        lookups: list[tuple[str, str, str]] = []
        for key in mentioned:
            found = sources.get(key, [])
            name, type_, aliases = resolve_concept(key, found)
            rows.append((tenant, key, name, type_, json.dumps(list(aliases))))
            names = [n for n, _, _ in found]
            lookups.extend((tenant, lookup, key) for lookup in lookup_keys(key, names, aliases))
        conn.executemany("INSERT INTO concepts VALUES (?, ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO concept_lookup VALUES (?, ?, ?)", lookups)

    # -- reads (worker thread) ---------------------------------------------------

    def _get_document(self, tenant: str, doc_id: str) -> DocumentRow | None:
        row = self._conn.execute(
            "SELECT doc_id, file_name, title, format, language, tier, slides, sha256 "
            "FROM documents WHERE tenant = ? AND doc_id = ?",
            (tenant, doc_id),
        ).fetchone()
        return DocumentRow(*row) if row else None

    def _document_ids(self, tenant: str) -> list[str]:
        rows = self._conn.execute("SELECT doc_id FROM documents WHERE tenant = ? ORDER BY doc_id", (tenant,))
        return [r[0] for r in rows.fetchall()]

    def _visible_documents(self, tenant: str, doc_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for batch in _batches(list(dict.fromkeys(doc_ids)), _READ_BATCH):
            marks = ", ".join("?" for _ in batch)
            rows = self._conn.execute(
                f"SELECT doc_id FROM documents WHERE tenant = ? AND committed = 1 AND doc_id IN ({marks})",
                [tenant, *batch])
            found.update(doc_id for (doc_id,) in rows)
        return found

    def _pending_documents(self, tenant: str | None) -> dict[str, list[str]]:
        where, params = ("AND tenant = ?", (tenant,)) if tenant is not None else ("", ())
        pending: dict[str, list[str]] = defaultdict(list)
        for row_tenant, doc_id in self._conn.execute(
                f"SELECT tenant, doc_id FROM documents WHERE committed = 0 {where} ORDER BY tenant, doc_id", params):
            pending[row_tenant].append(doc_id)
        return dict(pending)

    def _get_concept(self, tenant: str, canonical_key: str) -> ConceptRow | None:
        row = self._conn.execute(
            "SELECT canonical_key, name, type, aliases FROM concepts WHERE tenant = ? AND canonical_key = ?",
            (tenant, canonical_key),
        ).fetchone()
        return ConceptRow(row[0], row[1], row[2], tuple(json.loads(row[3]))) if row else None

    def _stats(self, tenant: str | None) -> dict[str, TenantCounts]:
        where, params = ("WHERE x.tenant = ?", (tenant,)) if tenant is not None else ("WHERE 1", ())
        visible = f"{where} AND NOT {_HIDDEN}"      # rows of committed documents only
        queries = {
            "documents": f"SELECT tenant, COUNT(*) FROM documents x {where} AND committed = 1 GROUP BY tenant",
            "slides": f"SELECT tenant, COUNT(*) FROM slides x {visible} GROUP BY tenant",
            "segments": f"SELECT tenant, COUNT(*) FROM segments x {visible} GROUP BY tenant",
            "concepts": (
                f"SELECT tenant, COUNT(*) FROM concepts x {where} AND EXISTS ("
                "SELECT 1 FROM mentions m JOIN documents d ON d.tenant = m.tenant AND d.doc_id = m.doc_id "
                "WHERE m.tenant = x.tenant AND m.concept_key = x.canonical_key AND d.committed = 1) GROUP BY tenant"
            ),
            "relations": (
                "SELECT r.tenant, COUNT(*) FROM (SELECT DISTINCT tenant, source_key, target_key, kind "
                f"FROM relation_evidence x {visible}) r "
                "JOIN concepts s ON s.tenant = r.tenant AND s.canonical_key = r.source_key "
                "JOIN concepts t ON t.tenant = r.tenant AND t.canonical_key = r.target_key "
                "GROUP BY r.tenant"
            ),
        }
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        if tenant is not None:
            counts[tenant] = {}
        for field, sql in queries.items():
            for row_tenant, n in self._conn.execute(sql, params):
                counts[row_tenant][field] = n
        return {t: TenantCounts(**c) for t, c in sorted(counts.items())}

    def _concepts_for_slides(
        self, tenant: str, slides: list[tuple[str, int]]
    ) -> dict[tuple[str, int], list[str]]:
        result: dict[tuple[str, int], list[str]] = {}
        for pair, mentions in self._mentions_on_slides(tenant, slides).items():
            # two keys may resolve to one display name: each name once
            result[pair] = list(dict.fromkeys(m.name for m in mentions))
        return result

    def _mentions_on_slides(
        self, tenant: str, slides: list[tuple[str, int]]
    ) -> dict[tuple[str, int], list[ConceptMention]]:
        wanted = list(dict.fromkeys((doc_id, int(number)) for doc_id, number in slides))
        result: dict[tuple[str, int], list[ConceptMention]] = {pair: [] for pair in wanted}
        for batch in _batches(wanted, _READ_BATCH):
            values = ", ".join("(?, ?)" for _ in batch)
            rows = self._conn.execute(
                f"WITH wanted(doc_id, number) AS (VALUES {values}) "
                "SELECT m.doc_id, m.slide_number, c.canonical_key, c.name, m.count FROM wanted w "
                "JOIN mentions m ON m.tenant = ? AND m.doc_id = w.doc_id AND m.slide_number = w.number "
                "JOIN documents d ON d.tenant = m.tenant AND d.doc_id = m.doc_id AND d.committed = 1 "
                "JOIN concepts c ON c.tenant = m.tenant AND c.canonical_key = m.concept_key "
                "ORDER BY m.doc_id, m.slide_number, m.count DESC, c.name, c.canonical_key",
                [*(v for pair in batch for v in pair), tenant],
            )
            for doc_id, number, key, name, count in rows:
                result[(doc_id, number)].append(ConceptMention(key, name, count))
        return result

    def _slides_mentioning(self, tenant: str, canonical_keys: list[str], limit: int) -> dict[str, list[SlideMention]]:
        keys = list(dict.fromkeys(canonical_keys))
        result: dict[str, list[SlideMention]] = {key: [] for key in keys}
        if limit <= 0:
            return result
        for batch in _batches(keys, _READ_BATCH):
            values = ", ".join("(?)" for _ in batch)
            rows = self._conn.execute(
                f"WITH wanted(key) AS (VALUES {values}), ranked AS ("
                "  SELECT m.concept_key AS key, m.doc_id, d.file_name, m.slide_number, s.title, m.count,"
                "         ROW_NUMBER() OVER (PARTITION BY m.concept_key"
                "                            ORDER BY m.count DESC, m.doc_id, m.slide_number) AS rank"
                "  FROM wanted w JOIN mentions m ON m.tenant = ? AND m.concept_key = w.key"
                "  JOIN documents d ON d.tenant = m.tenant AND d.doc_id = m.doc_id AND d.committed = 1"
                "  JOIN slides s ON s.tenant = m.tenant AND s.doc_id = m.doc_id AND s.number = m.slide_number)"
                " SELECT key, doc_id, file_name, slide_number, title, count FROM ranked WHERE rank <= ?"
                " ORDER BY key, rank",
                [*batch, tenant, limit],
            )
            for key, doc_id, file_name, number, title, count in rows:
                result[key].append(SlideMention(doc_id, file_name, number, title, count))
        return result

    def _find_concepts(self, tenant: str, keys: list[str]) -> dict[str, list[ConceptRow]]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, set[str]] = {key: set() for key in wanted}
        for batch in _batches(wanted, _READ_BATCH):
            marks = ", ".join("?" for _ in batch)
            rows = self._conn.execute(
                f"SELECT canonical_key, canonical_key FROM concepts WHERE tenant = ? AND canonical_key IN ({marks}) "
                f"UNION SELECT lookup_key, canonical_key FROM concept_lookup WHERE tenant = ? AND lookup_key IN ({marks})",
                [tenant, *batch, tenant, *batch],
            )
            for key, canonical in rows:
                found[key].add(canonical)
        concepts = {k: self._get_concept(tenant, k) for k in set().union(*found.values())}
        return {
            key: [c for k in sorted(matches) if (c := concepts[k]) is not None] for key, matches in found.items()
        }

    def _related_concepts(
        self, tenant: str, canonical_keys: list[str], limit: int
    ) -> dict[str, list[RelatedConcept]]:
        keys = list(dict.fromkeys(canonical_keys))
        result: dict[str, list[RelatedConcept]] = {key: [] for key in keys}
        if limit <= 0:
            return result
        for batch in _batches(keys, _READ_BATCH):
            params: dict[str, Any] = {f"k{i}": key for i, key in enumerate(batch)}
            params.update(tenant=tenant, limit=limit)
            values = ", ".join(f"(:k{i})" for i in range(len(batch)))
            for key, other, kind, weight, name in self._conn.execute(_RELATED_SQL.format(values=values), params):
                result[key].append(RelatedConcept(name=name, canonical_key=other, kind=kind, weight=float(weight)))
        return result


# -- helpers -----------------------------------------------------------------------


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front, so a concurrent writer waits at
    # BEGIN (busy timeout) instead of failing halfway through with SQLITE_BUSY.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _batches(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _translate(exc: sqlite3.Error, path: Path) -> OsmoseError:
    """Map a SQLite error to the platform's error tree by its result code."""
    code = getattr(exc, "sqlite_errorname", "") or ""
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return BackendUnavailableError(f"graph store {path} is locked by another writer: {exc}")
    if code.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")):
        return ConfigurationError(f"cannot open graph store {path} for writing: {exc}")
    if code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return ConfigurationError(f"{path} is not a readable osmose graph store ({exc}); move it away to start afresh")
    if code.startswith(("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_NOMEM")):
        return RetryableError(f"graph store {path} could not write: {exc}")
    return PermanentError(f"graph store {path}: {exc}")
