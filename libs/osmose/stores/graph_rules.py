"""Rules every graph store applies the same way, so that the same writes give the same graph.

- :func:`prepare`: what one document may contribute. A document speaks only
  about itself: mentions name its own slides, it describes (name, type,
  aliases) only concepts it mentions, and relates only concepts it mentions.
  Anything else is dropped, with a warning: it can only come from a bug
  upstream, and a document's rows must not keep nodes alive that the document
  does not reach. Rows are merged per key (mention counts per slide add up,
  relation evidence is a set), self-relations are dropped.
- :func:`resolve_concept`: the shared node's name and type are the ones most
  documents use (ties: the smallest), aliases the union, so the node does not
  depend on the order documents arrive in.
- :func:`lookup_keys`: the keys under which :meth:`GraphStore.find_concepts`
  finds a concept besides its canonical key: the canonical keys
  (:func:`osmose.text.names.canonical_key`, plurals folded) of every name and
  alias documents gave it, and its canonical key without spaces (``"e mail"``
  -> ``"email"``), so the persister can resolve a new document's concepts
  against the tenant's existing ones (:mod:`osmose.services.persister.resolve`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from osmose.errors import PermanentError
from osmose.stores.graph import (
    ConceptRow,
    DocumentGraph,
    DocumentRow,
    MergeRow,
    SegmentRow,
    SlideRow,
)
from osmose.text.names import canonical_key

__all__ = [
    "PreparedDocument",
    "PreparedRelation",
    "compact_key",
    "lookup_keys",
    "prepare",
    "resolve_concept",
]

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class PreparedRelation:
    source_key: str
    target_key: str
    kind: str
    evidence: tuple[str, ...]   # distinct, in first-seen order
    label: str


@dataclass(frozen=True)
class PreparedDocument:
    """One document's contribution after :func:`prepare`: every key unique."""

    tenant: str
    document: DocumentRow
    slides: list[SlideRow]
    segments: list[SegmentRow]
    # Every concept the document mentions, with its description (None: mentioned, not described).
    concepts: dict[str, ConceptRow | None]
    # (concept key, slide number) -> count
    mentions: dict[tuple[str, int], int]
    relations: list[PreparedRelation]
    merges: list[MergeRow]

    def mention_totals(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (key, _), count in self.mentions.items():
            totals[key] += count
        return dict(totals)


def prepare(graph: DocumentGraph) -> PreparedDocument:
    """The document's rows, merged per key, without what it may not say (see module doc)."""
    tenant, doc = graph.tenant, graph.document
    if not tenant or not doc.doc_id:
        raise PermanentError(f"a graph write needs a tenant and a doc_id (got {tenant!r}, {doc.doc_id!r})")
    slides = list({s.number: s for s in graph.slides}.values())
    segments = list({s.segment_id: s for s in graph.segments}.values())
    numbers = {s.number for s in slides}

    mentions: Counter[tuple[str, int]] = Counter()
    off_document = 0
    for m in graph.mentions:
        if m.slide_number not in numbers:
            off_document += 1
            continue
        if m.count > 0 and m.canonical_key:
            mentions[(m.canonical_key, m.slide_number)] += m.count
    mentioned = {key for key, _ in mentions}

    described: dict[str, ConceptRow] = {}
    for row in graph.concepts:
        seen = described.get(row.canonical_key)
        if seen is None:
            described[row.canonical_key] = row
        else:  # the first name/type given, the union of aliases
            aliases = tuple(dict.fromkeys(seen.aliases + row.aliases))
            described[row.canonical_key] = ConceptRow(seen.canonical_key, seen.name, seen.type, aliases,
                                                       max(seen.salience, row.salience))
    unmentioned = len(set(described) - mentioned)
    concepts = {key: described.get(key) for key in sorted(mentioned)}

    relations: dict[tuple[str, str, str], tuple[dict[str, None], str]] = {}
    unrelatable = 0
    for r in graph.relations:
        if r.source_key == r.target_key:
            continue  # a concept related to itself says nothing
        if r.source_key not in mentioned or r.target_key not in mentioned:
            unrelatable += 1
            continue
        evidence, label = relations.setdefault((r.source_key, r.target_key, r.kind), ({}, r.label))
        evidence.update(dict.fromkeys(r.evidence))
        if r.label and not label:
            relations[(r.source_key, r.target_key, r.kind)] = (evidence, r.label)
    prepared_relations = [
        PreparedRelation(s, t, kind, tuple(evidence), label)
        for (s, t, kind), (evidence, label) in relations.items()
        if evidence
    ]
    merges = list({(m.from_key, m.into_key): m for m in graph.merges}.values())

    if off_document or unmentioned or unrelatable:
        logger.warning(
            "graph rows dropped: %d mentions of slides the document does not have, %d concepts it "
            "describes but never mentions, %d relations with an endpoint it never mentions",
            off_document, unmentioned, unrelatable,
            extra={"tenant": tenant, "doc_id": doc.doc_id},
        )
    return PreparedDocument(
        tenant=tenant, document=doc, slides=slides, segments=segments, concepts=concepts,
        mentions=dict(mentions), relations=prepared_relations, merges=merges,
    )


def resolve_concept(key: str, sources: Iterable[tuple[str, str, Sequence[str]]]) -> tuple[str, str, tuple[str, ...]]:
    """(name, type, aliases) of a shared concept from its documents' (name, type, aliases)."""
    sources = list(sources)
    if not sources:  # mentioned, but no document described it
        return key, "", ()
    names = Counter(name for name, _, _ in sources)
    types = Counter(type_ for _, type_, _ in sources)
    aliases = tuple(sorted({a for _, _, found in sources for a in found}))
    return _most_common(names), _most_common(types), aliases


def _most_common(counts: Counter[str]) -> str:
    return min(counts, key=lambda value: (-counts[value], value))


def compact_key(key: str) -> str:
    return key.replace(" ", "")


def lookup_keys(key: str, names: Iterable[str], aliases: Iterable[str]) -> set[str]:
    """Keys other than `key` under which the concept is found (see module doc)."""
    # The store knows no document language: names are keyed with the default (English) plurals.
    found = {canonical_key(text) for text in (*names, *aliases)}
    found.add(compact_key(key))
    found.discard(key)
    found.discard("")
    return found
