"""Canonical concepts across documents: a new document's concepts resolved against the tenant's.

Where this belongs. The miner canonicalises within one document (case,
punctuation, plurals, acronym <-> expansion, near-duplicates by name
embedding; every merge recorded). Across documents the canonical key already
does most of the work: the graph store keeps one node per (tenant, key), so
"Zero Trust" in two decks is one node with both decks' mentions, aliases and
provenance. What the key cannot see is an acronym in one deck and its
expansion in another ("KPI" / "Key Performance Indicator" with alias KPI), or
two spellings whose keys differ only by spaces ("e-mail" / "email"). Only the
persister can settle those: it is the one stage that reads the stores (the
miner has no graph, and stages share nothing), and it writes the document
right after, so it resolves the document's keys against the tenant's existing
concepts (:meth:`GraphStore.find_concepts`) just before the write.

What it decides, for each concept ``c`` of the document whose key the tenant
does not have yet (one candidate in all, or it is ambiguous and nothing moves):

1. **Evidence** (``tenant:acronym`` / ``tenant:alias``, similarity 1.0): a
   concept ``X`` of the tenant that some document named or aliased like ``c``
   (``c``'s key or name is one of ``X``'s names/aliases), or that ``c`` lists
   as an alias (one of ``c``'s aliases is ``X``'s key or name). A document
   declaring the alias is the evidence, so the types may differ (``X`` keeps
   the type most documents give it). Exactly one candidate, or nothing.
2. **Near-duplicate** (``tenant:near-duplicate``, similarity = how alike the
   two keys are): ``X``'s key equals ``c``'s once spaces are removed, and both
   have the same type.

Never: across tenants (lookups are per tenant); into a key the document uses
for another of its concepts (the miner kept them apart on purpose); two of the
document's concepts into one node (ambiguous); across types without evidence.

How it is recorded and undone. ``c``'s rows (description, mentions,
relations, the miner's merges into ``c``) move to ``X``'s key, and a
:class:`MergeRow` (``from_key`` = ``c``'s key, ``into_key`` = ``X``'s key,
reason, similarity) joins the document's merges: a ``(:Merge)`` node linked to
the document that made the decision and ``-[:INTO]->`` the concept, so
``MATCH (m:Merge {tenant: $t}) WHERE m.reason STARTS WITH 'tenant:'`` lists every
cross-document merge. Only the deciding document's rows move, never another
document's, so a wrong merge is undone by re-ingesting that one document with
resolution off (``PersisterStage(resolve=False)``); nothing else needs repair.
A veto list, so that a later re-ingest with resolution on does not redo it, is
not built yet.

Two writers. The persister hands :class:`TenantResolver` to the graph store,
which looks the keys up and decides inside the document's write transaction,
with the tenant's writers taken one at a time (SQLite: its write lock; Neo4j: a
per-tenant lock node written first). Two persisters writing "KPI" and its
expansion at the same moment therefore always end with one node: the second
to commit sees the first. Which key survives depends on which commits first
(as with one persister and the documents in that order); only the deciding
document's rows ever move.

Limits. Near-duplicates by name
embedding across documents (not just spacing) need the tenant's concept
vectors (a vector index on Concept); not done yet.
"""

from __future__ import annotations

import difflib
import logging
from collections import defaultdict
from dataclasses import dataclass, replace

from osmose.stores.graph import ConceptRow, DocumentGraph, GraphStore, MentionRow, MergeRow, RelationRow
from osmose.stores.graph_rules import compact_key
from osmose.text.names import canonical_key

__all__ = ["Resolution", "TenantResolver", "resolve_across_documents", "resolve_with"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolution:
    from_key: str
    into_key: str
    reason: str
    similarity: float


class TenantResolver:
    """:func:`resolve_across_documents` as a :class:`~osmose.stores.graph.ConceptResolver`,
    which the graph store runs inside its write transaction (see the module doc, Limits)."""

    def lookup_keys(self, graph: DocumentGraph) -> list[str]:
        terms = [_evidence_terms(c) for c in graph.concepts]
        return sorted({t for ts in terms for t in ts} | {compact_key(c.canonical_key) for c in graph.concepts})

    def apply(self, graph: DocumentGraph, found: dict[str, list[ConceptRow]]) -> DocumentGraph:
        return resolve_with(graph, found)[0]


async def resolve_across_documents(store: GraphStore, graph: DocumentGraph) -> tuple[DocumentGraph, list[Resolution]]:
    """`graph` with its new concepts mapped onto the tenant's existing ones (see module doc),
    read before the write (tools, tests); the persister resolves inside the write instead."""
    if not graph.concepts:
        return graph, []
    found = await store.find_concepts(graph.tenant, TenantResolver().lookup_keys(graph))
    return resolve_with(graph, found)


def resolve_with(graph: DocumentGraph, found: dict[str, list[ConceptRow]]) -> tuple[DocumentGraph, list[Resolution]]:
    """The decision itself, given what the lookup of :meth:`TenantResolver.lookup_keys` found."""
    own = {c.canonical_key for c in graph.concepts} | {m.canonical_key for m in graph.mentions}
    if not graph.concepts:
        return graph, []
    terms = {c.canonical_key: _evidence_terms(c) for c in graph.concepts}

    proposals: dict[str, Resolution] = {}
    for concept in graph.concepts:
        key = concept.canonical_key
        if any(x.canonical_key == key for x in found.get(key, [])):
            continue  # the tenant has this concept already: same node
        # Keys equal but for spaces are near-duplicates however they were found (a concept's
        # lookup keys include its key without spaces, which is no evidence).
        candidates = {x.canonical_key: x for term in (*terms[key], compact_key(key)) for x in found.get(term, [])}
        near = {k: x for k, x in candidates.items() if compact_key(k) == compact_key(key)}
        evidence = {x.canonical_key: x for term in terms[key] for x in found.get(term, [])
                    if x.canonical_key not in near}
        decision = _decide(concept, [evidence[k] for k in sorted(evidence)], [near[k] for k in sorted(near)])
        if decision is not None and decision.into_key not in own:
            proposals[key] = decision

    # Two of the document's concepts into one node would merge them on the tenant's account.
    targets: dict[str, list[str]] = defaultdict(list)
    for r in proposals.values():
        targets[r.into_key].append(r.from_key)
    mapping = {k: r for k, r in proposals.items() if len(targets[r.into_key]) == 1}
    for into, sources in targets.items():
        if len(sources) > 1:
            logger.info("not merging %s into %r: ambiguous", ", ".join(sorted(sources)), into,
                        extra={"tenant": graph.tenant, "doc_id": graph.document.doc_id})
    if not mapping:
        return graph, []
    resolutions = [mapping[k] for k in sorted(mapping)]
    logger.info(
        "resolved %d concepts against the tenant's", len(resolutions),
        extra={"tenant": graph.tenant, "doc_id": graph.document.doc_id,
               "merges": [f"{r.from_key} -> {r.into_key} ({r.reason})" for r in resolutions]},
    )
    return _remap(graph, {k: r.into_key for k, r in mapping.items()}, resolutions), resolutions


def _evidence_terms(concept: ConceptRow) -> set[str]:
    """Keys under which a concept found is the same thing on a document's word: c's key,
    name and aliases (the store matches them against X's key, names and aliases)."""
    terms = {concept.canonical_key, canonical_key(concept.name)}
    terms.update(canonical_key(a) for a in concept.aliases)
    terms.discard("")
    return terms


def _decide(concept: ConceptRow, evidence: list[ConceptRow], near: list[ConceptRow]) -> Resolution | None:
    """One candidate or nothing: several (by evidence or by spelling) make it ambiguous."""
    key = concept.canonical_key
    if len(evidence) + len(near) > 1:
        logger.info("concept %r matches several of the tenant's (%s): not merged", key,
                    ", ".join(x.canonical_key for x in (*evidence, *near)))
        return None
    if evidence:
        x = evidence[0]
        names = [concept.name, *concept.aliases, x.name, *x.aliases]
        reason = "tenant:acronym" if any(_is_acronym(n) for n in names) else "tenant:alias"
        return Resolution(key, x.canonical_key, reason, 1.0)
    if near and near[0].type == concept.type:
        x = near[0]
        similarity = difflib.SequenceMatcher(None, key, x.canonical_key).ratio()
        return Resolution(key, x.canonical_key, "tenant:near-duplicate", round(similarity, 4))
    return None


def _is_acronym(name: str) -> bool:
    letters = name.replace(".", "").rstrip("s")
    return " " not in name.strip() and sum(ch.isupper() for ch in letters) >= 2 and not any(
        ch.islower() for ch in letters
    )


def _remap(graph: DocumentGraph, into: dict[str, str], resolutions: list[Resolution]) -> DocumentGraph:
    def k(key: str) -> str:
        return into.get(key, key)

    merges = [replace(m, into_key=k(m.into_key)) for m in graph.merges]
    merges += [MergeRow(r.from_key, r.into_key, r.reason, r.similarity) for r in resolutions]
    return replace(
        graph,
        concepts=[replace(c, canonical_key=k(c.canonical_key)) for c in graph.concepts],
        mentions=[MentionRow(k(m.canonical_key), m.slide_number, m.count) for m in graph.mentions],
        relations=[RelationRow(k(r.source_key), k(r.target_key), r.kind, r.evidence, r.label) for r in graph.relations],
        merges=merges,
    )
