"""The Cypher statements of :class:`osmose.stores.neo4j_graph.Neo4jGraphStore`.

Every statement names the tenant ($t) on every node and relationship it
matches or creates. Needs Neo4j 5.23 or newer (``CALL (x) { ... }`` scope
clauses; 5.26 is the LTS). Batched statements take ``$rows`` (a chunk of at most
``batch_size`` maps) and UNWIND it: one round trip per chunk, one transaction
per document. A relation's ``sources`` are ``"<doc_id><SEP><evidence id>"``
strings (SEP = U+001F, which neither contains): the documents' evidence, from
which ``evidence`` (the distinct ids) and ``weight`` (their number) are
derived on every change.
"""

from __future__ import annotations

SEP = "\u001f"

# Constraints (each backed by an index) and indexes; idempotent.
SCHEMA = [
    "CREATE CONSTRAINT osmose_document IF NOT EXISTS FOR (n:Document) REQUIRE (n.tenant, n.doc_id) IS UNIQUE",
    "CREATE CONSTRAINT osmose_slide IF NOT EXISTS FOR (n:Slide) REQUIRE (n.tenant, n.doc_id, n.number) IS UNIQUE",
    "CREATE CONSTRAINT osmose_segment IF NOT EXISTS FOR (n:Segment) REQUIRE (n.tenant, n.doc_id, n.segment_id) IS UNIQUE",
    "CREATE CONSTRAINT osmose_concept IF NOT EXISTS FOR (n:Concept) REQUIRE (n.tenant, n.canonical_key) IS UNIQUE",
    "CREATE CONSTRAINT osmose_alias IF NOT EXISTS FOR (n:Alias) REQUIRE (n.tenant, n.key) IS UNIQUE",
    "CREATE CONSTRAINT osmose_merge IF NOT EXISTS FOR (n:Merge) "
    "REQUIRE (n.tenant, n.doc_id, n.from_key, n.into_key) IS UNIQUE",
    "CREATE CONSTRAINT osmose_write_lock IF NOT EXISTS FOR (n:WriteLock) REQUIRE n.tenant IS UNIQUE",
]

# -- commit markers and the tenant's write lock ----------------------------------------------

# Written first by a write that resolves concepts: the node's write lock is held until the
# transaction ends, so the tenant's resolving writers run one at a time (see neo4j_graph).
TAKE_WRITE_LOCK = "MERGE (l:WriteLock {tenant: $t}) SET l.taken = coalesce(l.taken, 0) + 1"

# Erasure leaves nothing of a tenant: its lock goes with its last document.
DROP_IDLE_WRITE_LOCK = """
MATCH (l:WriteLock {tenant: $t})
WHERE NOT EXISTS { MATCH (d:Document) WHERE d.tenant = $t AND d.doc_id IS NOT NULL }
DELETE l
"""

# A Document without the property (written before markers existed) counts as committed.
COMMIT_DOCUMENT = """
MATCH (d:Document {tenant: $t, doc_id: $d})
SET d.committed = true
RETURN count(d) AS n
"""

VISIBLE_DOCUMENTS = """
UNWIND $ids AS id
MATCH (d:Document {tenant: $t, doc_id: id})
WHERE coalesce(d.committed, true)
RETURN d.doc_id AS doc_id
"""

PENDING_TENANT = """
MATCH (d:Document) WHERE d.tenant = $t AND d.doc_id IS NOT NULL AND d.committed = false
RETURN d.tenant AS tenant, d.doc_id AS doc_id ORDER BY doc_id
"""

PENDING_ALL = """
MATCH (d:Document) WHERE d.committed = false
RETURN d.tenant AS tenant, d.doc_id AS doc_id ORDER BY tenant, doc_id
"""

# -- one document's write ----------------------------------------------------------------

# Upserts the Document and clears what the document wrote before and will
# write anew (its mentions, merges) or has no more (slides, segments); returns
# the concepts it mentioned before.
RESET = """
MERGE (d:Document {tenant: $t, doc_id: $d})
SET d += $props
WITH d
CALL (d) {
  OPTIONAL MATCH (d)-[:MENTIONS {tenant: $t}]->(c:Concept {tenant: $t})
  RETURN collect(c.canonical_key) AS old_keys
}
CALL (d) {
  MATCH (d)-[:HAS_SLIDE {tenant: $t}]->(:Slide {tenant: $t})<-[m:MENTIONED_IN {tenant: $t}]-(:Concept {tenant: $t})
  DELETE m
}
CALL (d) {
  MATCH (d)-[m:MENTIONS {tenant: $t}]->(:Concept {tenant: $t})
  DELETE m
}
CALL (d) {
  MATCH (d)-[:HAS_SLIDE {tenant: $t}]->(s:Slide {tenant: $t}) WHERE NOT s.number IN $slides
  DETACH DELETE s
}
CALL (d) {
  MATCH (d)-[:HAS_SEGMENT {tenant: $t}]->(s:Segment {tenant: $t}) WHERE NOT s.segment_id IN $segments
  DETACH DELETE s
}
CALL (d) {
  MATCH (d)-[:RECORDED {tenant: $t}]->(m:Merge {tenant: $t})
  DETACH DELETE m
}
RETURN old_keys
"""

# Slides and segments, chunk by chunk (each list may be empty).
OWNED = """
MATCH (d:Document {tenant: $t, doc_id: $d})
CALL (d) {
  UNWIND $slides AS row
  MERGE (s:Slide {tenant: $t, doc_id: $d, number: row.number})
  SET s.slide_id = row.slide_id, s.title = row.title, s.segment_id = row.segment_id
  MERGE (d)-[:HAS_SLIDE {tenant: $t}]->(s)
}
CALL (d) {
  UNWIND $segments AS row
  MERGE (s:Segment {tenant: $t, doc_id: $d, segment_id: row.segment_id})
  SET s.`index` = row.index, s.title = row.title, s.slide_numbers = row.slide_numbers
  MERGE (d)-[:HAS_SEGMENT {tenant: $t}]->(s)
}
"""

# Concept nodes are shared: MERGE on the canonical key; their name, type and
# aliases are resolved afterwards from every document's MENTIONS (RESOLVE_*).
CONCEPTS = """
MATCH (d:Document {tenant: $t, doc_id: $d})
UNWIND $rows AS row
MERGE (c:Concept {tenant: $t, canonical_key: row.key})
  ON CREATE SET c.name = row.key, c.type = '', c.aliases = [], c.lookup = []
CREATE (d)-[:MENTIONS {tenant: $t, count: row.count, name: row.name, type: row.type, aliases: row.aliases}]->(c)
"""

# Rows grouped by slide: one slide lookup per slide, one concept lookup per mention.
MENTIONS = """
UNWIND $rows AS row
MATCH (s:Slide {tenant: $t, doc_id: $d, number: row.slide})
UNWIND row.mentions AS m
MATCH (c:Concept {tenant: $t, canonical_key: m.key})
CREATE (c)-[:MENTIONED_IN {tenant: $t, count: m.count}]->(s)
"""

# The distinct evidence ids of a list of sources (a few per edge: a fold is cheaper than a subquery).
_EVIDENCE = (
    f"reduce(acc = [], p IN sources | CASE WHEN split(p, '{SEP}')[1] IN acc THEN acc "
    f"ELSE acc + split(p, '{SEP}')[1] END)"
)

# The document's sources replace its earlier ones on each edge it relates;
# `stamp` marks the edges this write touched. An edge only this document
# supports takes the row's evidence as is (the common case: no fold).
RELATIONS = f"""
UNWIND $rows AS row
MATCH (a:Concept {{tenant: $t, canonical_key: row.s}})
MATCH (b:Concept {{tenant: $t, canonical_key: row.t}})
MERGE (a)-[r:RELATED_TO {{tenant: $t, kind: row.kind}}]->(b)
  ON CREATE SET r.sources = row.sources, r.label = row.label
  ON MATCH SET r.sources = [p IN r.sources WHERE NOT p STARTS WITH $prefix] + row.sources,
               r.label = CASE WHEN row.label <> '' THEN row.label ELSE coalesce(r.label, '') END
WITH r, row, r.sources AS sources
WITH r, CASE WHEN sources = row.sources THEN row.evidence ELSE {_EVIDENCE} END AS evidence
SET r.stamp = $stamp, r.evidence = evidence, r.weight = size(evidence)
"""

# Edges the document related before and not any more lose its sources; an edge
# left without sources is deleted. Every edge of the document starts at a
# concept it mentioned ($keys), since a document relates only what it mentions.
STRIP_RELATIONS = f"""
UNWIND $keys AS key
MATCH (:Concept {{tenant: $t, canonical_key: key}})-[r:RELATED_TO {{tenant: $t}}]->(:Concept {{tenant: $t}})
WHERE r.stamp <> $stamp AND any(p IN r.sources WHERE p STARTS WITH $prefix)
WITH r, [p IN r.sources WHERE NOT p STARTS WITH $prefix] AS sources
WITH r, sources, {_EVIDENCE} AS evidence
SET r.sources = sources, r.evidence = evidence, r.weight = size(evidence)
WITH r WHERE size(r.sources) = 0
DELETE r
"""

MERGES = """
MATCH (d:Document {tenant: $t, doc_id: $d})
UNWIND $rows AS row
CREATE (m:Merge {tenant: $t, doc_id: $d, from_key: row.from_key, into_key: row.into_key,
                 reason: row.reason, similarity: row.similarity})
CREATE (d)-[:RECORDED {tenant: $t}]->(m)
WITH m, row
OPTIONAL MATCH (c:Concept {tenant: $t, canonical_key: row.into_key})
FOREACH (_ IN CASE WHEN c IS NULL THEN [] ELSE [1] END | CREATE (m)-[:INTO {tenant: $t}]->(c))
"""

# -- shared concept nodes, for the keys a write or delete touched --------------------------

# Every document's description of each concept (name null: mentioned, not described);
# a concept without any is an orphan.
CONCEPT_SOURCES = """
UNWIND $keys AS key
MATCH (c:Concept {tenant: $t, canonical_key: key})
OPTIONAL MATCH (c)<-[m:MENTIONS {tenant: $t}]-(:Document {tenant: $t})
RETURN key, c.name AS name, c.type AS type, c.aliases AS aliases, c.lookup AS lookup,
       collect(m {.name, .type, .aliases}) AS sources
"""

DROP_CONCEPTS = """
UNWIND $keys AS key
MATCH (c:Concept {tenant: $t, canonical_key: key})
DETACH DELETE c
"""

RESOLVE_CONCEPTS = """
UNWIND $rows AS row
MATCH (c:Concept {tenant: $t, canonical_key: row.key})
SET c.name = row.name, c.type = row.type, c.aliases = row.aliases
"""

RESOLVE_LOOKUP = """
UNWIND $rows AS row
MATCH (c:Concept {tenant: $t, canonical_key: row.key})
SET c.lookup = row.lookup
WITH c, row
CALL (c) {
  MATCH (c)-[k:KNOWN_AS {tenant: $t}]->(:Alias {tenant: $t})
  DELETE k
}
WITH c, row
UNWIND row.lookup AS key
MERGE (a:Alias {tenant: $t, key: key})
CREATE (c)-[:KNOWN_AS {tenant: $t}]->(a)
"""

DROP_ORPHAN_ALIASES = """
UNWIND $keys AS key
MATCH (a:Alias {tenant: $t, key: key})
WHERE NOT EXISTS { MATCH (a)<-[:KNOWN_AS {tenant: $t}]-(:Concept {tenant: $t}) }
DELETE a
"""

# -- deleting a document -----------------------------------------------------------------------

DOCUMENT_EXISTS = "MATCH (d:Document {tenant: $t, doc_id: $d}) RETURN count(d) AS n"

OLD_KEYS = """
MATCH (:Document {tenant: $t, doc_id: $d})-[:MENTIONS {tenant: $t}]->(c:Concept {tenant: $t})
RETURN c.canonical_key AS key
"""

# Owned nodes first, then the document once (not once per owned node: each
# DETACH DELETE walks the node's relationships).
DROP_DOCUMENT = """
MATCH (d:Document {tenant: $t, doc_id: $d})
CALL (d) {
  MATCH (d)-[:HAS_SLIDE|HAS_SEGMENT|RECORDED {tenant: $t}]->(owned)
  WHERE owned.tenant = $t
  DETACH DELETE owned
}
DETACH DELETE d
"""

# -- reads ---------------------------------------------------------------------------------------

GET_DOCUMENT = "MATCH (d:Document {tenant: $t, doc_id: $d}) RETURN d {.*} AS doc"

DOCUMENT_IDS = "MATCH (d:Document {tenant: $t}) RETURN d.doc_id AS doc_id ORDER BY doc_id"

GET_CONCEPT = """
MATCH (c:Concept {tenant: $t, canonical_key: $key})
RETURN c.canonical_key AS key, c.name AS name, c.type AS type, c.aliases AS aliases
"""

# The IS NOT NULL predicates let the planner count from the composite
# uniqueness indexes (tenant prefix) instead of scanning the label.
# Reads below take $hidden: the doc_ids of the tenant's documents written but not committed
# (PENDING_TENANT, read first; usually empty). Their rows are left out.

STATS_TENANT = """
RETURN
  COUNT { MATCH (n:Document) WHERE n.tenant = $t AND n.doc_id IS NOT NULL AND NOT n.doc_id IN $hidden } AS documents,
  COUNT { MATCH (n:Slide) WHERE n.tenant = $t AND n.doc_id IS NOT NULL AND n.number IS NOT NULL
          AND NOT n.doc_id IN $hidden } AS slides,
  COUNT { MATCH (n:Segment) WHERE n.tenant = $t AND n.doc_id IS NOT NULL AND n.segment_id IS NOT NULL
          AND NOT n.doc_id IN $hidden } AS segments,
  COUNT { MATCH (n:Concept) WHERE n.tenant = $t AND n.canonical_key IS NOT NULL
          AND (size($hidden) = 0 OR EXISTS { MATCH (n)<-[:MENTIONS {tenant: $t}]-(d:Document {tenant: $t})
                                             WHERE NOT d.doc_id IN $hidden }) } AS concepts,
  COUNT { MATCH (n:Concept)-[r:RELATED_TO]->(:Concept {tenant: $t})
          WHERE n.tenant = $t AND n.canonical_key IS NOT NULL AND r.tenant = $t
          AND (size($hidden) = 0 OR any(p IN r.sources WHERE NOT split(p, $sep)[0] IN $hidden)) } AS relations
"""

# Across tenants (operators' view): grouped by tenant; $hidden holds "<tenant><SEP><doc_id>".
STATS_ALL = """
MATCH (n:Document) WHERE NOT n.tenant + $sep + n.doc_id IN $hidden
  RETURN n.tenant AS tenant, 'documents' AS field, count(n) AS n
UNION ALL MATCH (n:Slide) WHERE NOT n.tenant + $sep + n.doc_id IN $hidden
  RETURN n.tenant AS tenant, 'slides' AS field, count(n) AS n
UNION ALL MATCH (n:Segment) WHERE NOT n.tenant + $sep + n.doc_id IN $hidden
  RETURN n.tenant AS tenant, 'segments' AS field, count(n) AS n
UNION ALL MATCH (n:Concept)
  WHERE size($hidden) = 0 OR EXISTS { MATCH (n)<-[m:MENTIONS]-(d:Document)
                                      WHERE d.tenant = n.tenant AND NOT d.tenant + $sep + d.doc_id IN $hidden }
  RETURN n.tenant AS tenant, 'concepts' AS field, count(n) AS n
UNION ALL MATCH (a:Concept)-[r:RELATED_TO]->(b:Concept)
  WHERE r.tenant = a.tenant AND r.tenant = b.tenant
    AND (size($hidden) = 0 OR any(p IN r.sources WHERE NOT r.tenant + $sep + split(p, $sep)[0] IN $hidden))
  RETURN r.tenant AS tenant, 'relations' AS field, count(r) AS n
"""

MENTIONS_ON_SLIDES = """
UNWIND $pairs AS p
MATCH (s:Slide {tenant: $t, doc_id: p.doc_id, number: p.number})<-[m:MENTIONED_IN {tenant: $t}]-(c:Concept {tenant: $t})
RETURN p.doc_id AS doc_id, p.number AS number, c.canonical_key AS key, c.name AS name, m.count AS count
"""

# Both directions; per (neighbour, kind) the heavier one. With hidden documents, an edge
# weighs the distinct evidence ids of the visible documents' sources only.
RELATED = f"""
UNWIND $keys AS key
MATCH (:Concept {{tenant: $t, canonical_key: key}})-[r:RELATED_TO {{tenant: $t}}]-(o:Concept {{tenant: $t}})
WITH key, o, r, CASE WHEN size($hidden) = 0 THEN r.sources
                     ELSE [p IN r.sources WHERE NOT split(p, $sep)[0] IN $hidden] END AS sources
WHERE size(sources) > 0
WITH key, o, r, CASE WHEN size($hidden) = 0 THEN r.weight ELSE size({_EVIDENCE}) END AS weight
RETURN key, o.canonical_key AS other, o.name AS name, r.kind AS kind, max(weight) AS weight
"""

SLIDES_MENTIONING = """
UNWIND $keys AS key
MATCH (:Concept {tenant: $t, canonical_key: key})-[m:MENTIONED_IN {tenant: $t}]->(s:Slide {tenant: $t})
      <-[:HAS_SLIDE {tenant: $t}]-(d:Document {tenant: $t})
WHERE NOT s.doc_id IN $hidden
WITH key, m, s, d ORDER BY m.count DESC, s.doc_id, s.number
WITH key, collect({doc_id: s.doc_id, file_name: d.file_name, number: s.number, title: s.title,
                   count: m.count})[..$limit] AS slides
RETURN key, slides
"""

FIND_CONCEPTS = """
UNWIND $keys AS key
CALL (key) {
  MATCH (c:Concept {tenant: $t, canonical_key: key})
  RETURN c
  UNION
  MATCH (:Alias {tenant: $t, key: key})<-[:KNOWN_AS {tenant: $t}]-(c:Concept {tenant: $t})
  RETURN c
}
RETURN key, c.canonical_key AS canonical_key, c.name AS name, c.type AS type, c.aliases AS aliases
"""
