"""A tenant's whole graph as plain data, read from each store's own storage.

Both dumps have the same shape, so `dump(sqlite) == dump(neo4j)` says the two
stores hold the same graph for the same writes. The Neo4j dump also checks
the model's invariants: the tenant is on every node and edge of the tenant,
and no edge leaves the tenant.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from osmose.stores.neo4j_graph import Neo4jGraphStore
from osmose.stores.sqlite_graph import SqliteGraphStore

Dump = dict[str, Any]


async def dump(store: Any, tenant: str) -> Dump:
    if isinstance(store, SqliteGraphStore):
        return await store._call(_sqlite_dump, store, tenant)
    if isinstance(store, Neo4jGraphStore):
        return await _neo4j_dump(store, tenant)
    raise TypeError(f"no dump for {type(store).__name__}")


def _sqlite_dump(store: SqliteGraphStore, tenant: str) -> Dump:
    conn = store._conn

    def rows(sql: str) -> list[tuple]:
        return conn.execute(sql, (tenant,)).fetchall()

    concepts = {k: (n, t, tuple(json.loads(a))) for k, n, t, a in rows(
        "SELECT canonical_key, name, type, aliases FROM concepts WHERE tenant = ?")}
    evidence: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for s, t, kind, ev in rows("SELECT source_key, target_key, kind, evidence_id FROM relation_evidence WHERE tenant = ?"):
        if s in concepts and t in concepts:
            evidence[(s, t, kind)].add(ev)
    return {
        "documents": {r[0]: r[1:] for r in rows(
            "SELECT doc_id, file_name, title, format, language, tier, slides, sha256 FROM documents WHERE tenant = ?")},
        "slides": {(d, n): (i, ti, sg) for d, n, i, ti, sg in rows(
            "SELECT doc_id, number, slide_id, title, segment_id FROM slides WHERE tenant = ?")},
        "segments": {(d, s): (i, ti, tuple(json.loads(n))) for d, s, i, ti, n in rows(
            "SELECT doc_id, segment_id, idx, title, slide_numbers FROM segments WHERE tenant = ?")},
        "concepts": concepts,
        "sources": {(k, d): (n, t, tuple(json.loads(a))) for k, d, n, t, a in rows(
            "SELECT canonical_key, doc_id, name, type, aliases FROM concept_sources WHERE tenant = ?")},
        "mentions": {(d, n, k): c for d, n, k, c in rows(
            "SELECT doc_id, slide_number, concept_key, count FROM mentions WHERE tenant = ?")},
        "relations": {key: (len(ev), tuple(sorted(ev))) for key, ev in evidence.items()},
        "merges": {(d, f, i): (r, s) for d, f, i, r, s in rows(
            "SELECT doc_id, from_key, into_key, reason, similarity FROM merges WHERE tenant = ?")},
        "lookup": set(rows("SELECT lookup_key, canonical_key FROM concept_lookup WHERE tenant = ?")),
    }


async def _neo4j_dump(store: Neo4jGraphStore, tenant: str) -> Dump:
    async def rows(query: str) -> list[dict[str, Any]]:
        return [r.data() for r in await store._read(query, t=tenant)]

    # Invariants: every edge touching the tenant's nodes carries the tenant and ends in it.
    leaks = await rows(
        "MATCH (n {tenant: $t})-[r]-(m) WHERE r.tenant IS NULL OR r.tenant <> $t OR m.tenant IS NULL OR m.tenant <> $t "
        "RETURN labels(n) AS n, type(r) AS r, labels(m) AS m, m.tenant AS other LIMIT 5"
    )
    assert not leaks, f"edges leaving tenant {tenant} or without a tenant: {leaks}"

    documents = {r["doc_id"]: (r["file_name"], r["title"], r["format"], r["language"], r["tier"], r["slides"], r["sha256"])
                 for r in await rows("MATCH (d:Document {tenant: $t}) RETURN d {.*} AS d") for r in [r["d"]]}
    slides = {(r["doc_id"], r["number"]): (r["slide_id"], r["title"], r["segment_id"]) for r in await rows(
        "MATCH (d:Document {tenant: $t})-[:HAS_SLIDE {tenant: $t}]->(s:Slide {tenant: $t}) "
        "WHERE s.doc_id = d.doc_id RETURN s.doc_id AS doc_id, s.number AS number, s.slide_id AS slide_id, "
        "s.title AS title, s.segment_id AS segment_id")}
    assert len(slides) == (await rows("MATCH (s:Slide {tenant: $t}) RETURN count(s) AS n"))[0]["n"], "orphan slides"
    segments = {(r["doc_id"], r["segment_id"]): (r["index"], r["title"], tuple(r["slide_numbers"])) for r in await rows(
        "MATCH (d:Document {tenant: $t})-[:HAS_SEGMENT {tenant: $t}]->(s:Segment {tenant: $t}) "
        "WHERE s.doc_id = d.doc_id RETURN s.doc_id AS doc_id, s.segment_id AS segment_id, s.`index` AS index, "
        "s.title AS title, s.slide_numbers AS slide_numbers")}
    assert len(segments) == (await rows("MATCH (s:Segment {tenant: $t}) RETURN count(s) AS n"))[0]["n"], "orphan segments"
    concepts = {r["key"]: (r["name"], r["type"], tuple(r["aliases"])) for r in await rows(
        "MATCH (c:Concept {tenant: $t}) RETURN c.canonical_key AS key, c.name AS name, c.type AS type, "
        "c.aliases AS aliases")}
    sources = {(r["key"], r["doc_id"]): (r["name"], r["type"], tuple(r["aliases"])) for r in await rows(
        "MATCH (d:Document {tenant: $t})-[m:MENTIONS {tenant: $t}]->(c:Concept {tenant: $t}) WHERE m.name IS NOT NULL "
        "RETURN c.canonical_key AS key, d.doc_id AS doc_id, m.name AS name, m.type AS type, m.aliases AS aliases")}
    mentions = {(r["doc_id"], r["number"], r["key"]): r["count"] for r in await rows(
        "MATCH (c:Concept {tenant: $t})-[m:MENTIONED_IN {tenant: $t}]->(s:Slide {tenant: $t}) "
        "RETURN s.doc_id AS doc_id, s.number AS number, c.canonical_key AS key, m.count AS count")}
    # MENTIONS (per document) must agree with MENTIONED_IN (per slide).
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for (doc_id, _, key), count in mentions.items():
        totals[(key, doc_id)] += count
    provenance = {(r["key"], r["doc_id"]): r["count"] for r in await rows(
        "MATCH (d:Document {tenant: $t})-[m:MENTIONS {tenant: $t}]->(c:Concept {tenant: $t}) "
        "RETURN c.canonical_key AS key, d.doc_id AS doc_id, m.count AS count")}
    assert provenance == dict(totals), "MENTIONS counts disagree with MENTIONED_IN"
    relations = {}
    for r in await rows(
        "MATCH (a:Concept {tenant: $t})-[r:RELATED_TO {tenant: $t}]->(b:Concept {tenant: $t}) "
        "RETURN a.canonical_key AS s, b.canonical_key AS t, r.kind AS kind, r.weight AS weight, r.evidence AS evidence"
    ):
        assert (r["s"], r["t"], r["kind"]) not in relations, "two RELATED_TO edges for one (source, target, kind)"
        relations[(r["s"], r["t"], r["kind"])] = (r["weight"], tuple(sorted(r["evidence"])))
    merges = {(r["doc_id"], r["from_key"], r["into_key"]): (r["reason"], r["similarity"]) for r in await rows(
        "MATCH (d:Document {tenant: $t})-[:RECORDED {tenant: $t}]->(m:Merge {tenant: $t}) "
        "RETURN m.doc_id AS doc_id, m.from_key AS from_key, m.into_key AS into_key, m.reason AS reason, "
        "m.similarity AS similarity")}
    lookup = {(r["key"], r["canonical_key"]) for r in await rows(
        "MATCH (c:Concept {tenant: $t})-[:KNOWN_AS {tenant: $t}]->(a:Alias {tenant: $t}) "
        "RETURN a.key AS key, c.canonical_key AS canonical_key")}
    orphan_aliases = await rows("MATCH (a:Alias {tenant: $t}) WHERE NOT EXISTS { (a)<-[:KNOWN_AS]-() } RETURN a.key AS k")
    assert not orphan_aliases, f"Alias nodes without a concept: {orphan_aliases}"
    return {
        "documents": documents, "slides": slides, "segments": segments, "concepts": concepts, "sources": sources,
        "mentions": mentions, "relations": relations, "merges": merges, "lookup": lookup,
    }


async def purge(store: Any, tenants: list[str]) -> None:
    """Delete these tenants' data from a shared server (the contract tests' clean-up)."""
    if not isinstance(store, Neo4jGraphStore) or store._closed or not tenants:
        return
    for label, key in (("Document", "doc_id"), ("Slide", "doc_id"), ("Segment", "doc_id"),
                       ("Concept", "canonical_key"), ("Alias", "key"), ("Merge", "doc_id"), ("WriteLock", "tenant")):
        await store._driver.execute_query(
            f"MATCH (n:{label}) WHERE n.tenant IN $tenants AND n.{key} IS NOT NULL DETACH DELETE n",
            tenants=tenants,
        )
