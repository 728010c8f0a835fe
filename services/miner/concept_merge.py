"""Folding one concept into another: mentions, segments, methods, aliases, score and type."""

from __future__ import annotations

from collections import Counter

from osmose.v1 import document_pb2 as pb

__all__ = ["TYPE_PRIORITY", "absorb", "merged_type"]

# When merged concepts disagree on the type, the most specific one wins.
TYPE_PRIORITY: tuple[pb.ConceptType, ...] = (
    pb.CONCEPT_TYPE_STANDARD,
    pb.CONCEPT_TYPE_TOOL,
    pb.CONCEPT_TYPE_ROLE,
    pb.CONCEPT_TYPE_PRACTICE,
    pb.CONCEPT_TYPE_ENTITY,
    pb.CONCEPT_TYPE_TOPIC,
    pb.CONCEPT_TYPE_UNSPECIFIED,
)


def merged_type(*types: pb.ConceptType) -> pb.ConceptType:
    return min(types, key=lambda t: TYPE_PRIORITY.index(t) if t in TYPE_PRIORITY else len(TYPE_PRIORITY))


def absorb(into: pb.Concept, other: pb.Concept, *, alias: bool) -> None:
    """Adds everything `other` knows to `into` (in place).

    Mentions add up per slide, except between two spellings of the same word
    ("SQL server"/"SQL Server"): mention counting is case-insensitive, so both
    counted the same occurrences and the larger count is kept. With `alias`,
    `other`'s name becomes an alias of `into`.
    """
    same_words = into.name.casefold() == other.name.casefold()
    counts: Counter[int] = Counter({m.slide: m.count for m in into.mentions})
    for m in other.mentions:
        counts[m.slide] = max(counts[m.slide], m.count) if same_words else counts[m.slide] + m.count
    del into.mentions[:]
    into.mentions.extend(pb.Mention(slide=s, count=n) for s, n in sorted(counts.items()))

    segments = sorted(set(into.segment_ids) | set(other.segment_ids))
    del into.segment_ids[:]
    into.segment_ids.extend(segments)

    methods = sorted(set(into.methods) | set(other.methods))
    del into.methods[:]
    into.methods.extend(methods)

    aliases = set(into.aliases) | set(other.aliases)
    if alias:
        aliases.add(other.name)
    aliases = {a for a in aliases if a.casefold() != into.name.casefold()}
    del into.aliases[:]
    into.aliases.extend(sorted(aliases, key=lambda a: (a.casefold(), a)))

    into.score = round(into.score + other.score, 6)
    into.type = merged_type(into.type, other.type)
