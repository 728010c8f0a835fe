"""Canonical concepts: one per canonical key, with every merge on record.

Three passes, each recorded as :class:`MergeRecord` so a wrong merge can be
inspected (and undone by re-running without it):

1. **Keys** - :func:`osmose.text.names.canonical_key` (NFKC, case folding,
   punctuation and whitespace normalisation, plural folding). Concepts with equal keys
   merge; the reason names the first step that made their keys equal
   ("case", "punctuation", "plural") and ``from_key`` is the absorbed form's key
   just before that step.
2. **Acronyms** - a concept whose key is an alias of exactly one other concept
   ("KPI" and "Key Performance Indicator" with alias KPI) merges into it: the
   expansion names the concept and the acronym stays as an alias. An acronym
   that is the alias of several expansions is ambiguous and left alone.
3. **Similarity** - names whose embeddings have cosine >= the threshold merge,
   only within one concept type and never when their numbers differ
   ("ISO 27001" vs "ISO 27002") or both are acronyms ("XSS" vs "CSS").
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from osmose.services.miner.concept_merge import absorb
from osmose.text.names import canonical_key, key_stages
from osmose.v1 import document_pb2 as pb

__all__ = [
    "SIMILARITY_MERGE_THRESHOLD",
    "merge_acronyms",
    "merge_by_key",
    "may_merge",
    "merge_similar",
]

logger = logging.getLogger(__name__)

SIMILARITY_MERGE_THRESHOLD = 0.92

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _reason(stages: tuple[str, ...], survivor: tuple[str, ...]) -> tuple[str, str]:
    for i, reason in enumerate(("case", "punctuation", "plural"), start=1):
        if stages[i] == survivor[i]:
            return reason, stages[i - 1]
    return "plural", stages[2]


def merge_by_key(
    concepts: Sequence[pb.Concept], language: str
) -> tuple[list[pb.Concept], list[pb.MergeRecord]]:
    """One concept per canonical key (``canonical_key`` set), and the merges that made it so."""
    groups: dict[str, list[tuple[pb.Concept, tuple[str, str, str, str]]]] = defaultdict(list)
    for concept in concepts:
        stages = key_stages(concept.name, language)
        if not stages[3]:
            logger.warning("dropping concept %r: nothing left after normalisation", concept.name)
            continue
        groups[stages[3]].append((concept, stages))
    out: list[pb.Concept] = []
    merges: list[pb.MergeRecord] = []
    for key in sorted(groups):
        members = groups[key]
        # The singular spelling, then the most mentioned, then the most salient names the concept.
        members.sort(
            key=lambda m: (
                m[1][2] != key,
                -sum(x.count for x in m[0].mentions),
                -m[0].score,
                m[0].name,
            )
        )
        survivor = pb.Concept()
        survivor.CopyFrom(members[0][0])
        survivor.canonical_key = key
        for other, stages in members[1:]:
            reason, from_key = _reason(stages, members[0][1])
            absorb(survivor, other, alias=False)
            merges.append(pb.MergeRecord(from_key=from_key, into_key=key, reason=reason, similarity=1.0))
        out.append(survivor)
    return out, merges


def merge_acronyms(
    concepts: Sequence[pb.Concept], language: str
) -> tuple[list[pb.Concept], list[pb.MergeRecord]]:
    """Acronym concepts folded into the expansion that lists them as an alias."""
    by_key = {c.canonical_key: c for c in concepts}
    owners: dict[str, set[str]] = defaultdict(set)
    for concept in concepts:
        for alias in concept.aliases:
            alias_key = canonical_key(alias, language)
            if alias_key and alias_key != concept.canonical_key:
                owners[alias_key].add(concept.canonical_key)
    absorbed: dict[str, str] = {}
    for alias_key in sorted(owners):
        keys = owners[alias_key]
        if alias_key not in by_key:
            continue
        if len(keys) > 1:
            logger.info("acronym %r is ambiguous (%s): not merged", alias_key, ", ".join(sorted(keys)))
            continue
        into = next(iter(keys))
        if into in absorbed or alias_key in absorbed.values():
            continue  # chains (an expansion that is itself someone's alias) stay apart
        absorbed[alias_key] = into
    merges = []
    for from_key in sorted(absorbed):
        into_key = absorbed[from_key]
        absorb(by_key[into_key], by_key[from_key], alias=True)
        merges.append(pb.MergeRecord(from_key=from_key, into_key=into_key, reason="acronym", similarity=1.0))
    return [c for c in concepts if c.canonical_key not in absorbed], merges


def _numbers(name: str) -> tuple[str, ...]:
    return tuple(_NUMBER.findall(name))


def _is_acronym(name: str) -> bool:
    return len(name.split()) == 1 and sum(ch.isupper() for ch in name) >= 2 and not any(
        ch.islower() for ch in name.rstrip("s")
    )


def may_merge(a: pb.Concept, b: pb.Concept) -> bool:
    """Whether two names may be merged on similarity at all (same type, same numbers, ...)."""
    if a.type != b.type or _numbers(a.name) != _numbers(b.name):
        return False
    return not (_is_acronym(a.name) or _is_acronym(b.name))


def merge_similar(
    concepts: Sequence[pb.Concept],
    vectors: Mapping[str, np.ndarray],
    *,
    threshold: float = SIMILARITY_MERGE_THRESHOLD,
) -> tuple[list[pb.Concept], list[pb.MergeRecord]]:
    """Near-duplicates merged into the most salient concept of their cluster.

    Greedy and without chaining: concepts are visited by salience and join the
    first representative they are similar enough to, so "A~B" and "B~C" never
    merge A with C on B's account. `vectors` maps names to unit vectors.
    """
    order = sorted(concepts, key=lambda c: (-c.score, c.canonical_key))
    representatives: list[pb.Concept] = []
    merges: list[pb.MergeRecord] = []
    for concept in order:
        vector = vectors.get(concept.name)
        best: tuple[float, pb.Concept] | None = None
        if vector is not None:
            for rep in representatives:
                if not may_merge(concept, rep):
                    continue
                sim = float(np.dot(vector, vectors[rep.name]))
                if sim >= threshold and (best is None or sim > best[0]):
                    best = (sim, rep)
        if best is None:
            representatives.append(concept)
            continue
        sim, rep = best
        absorb(rep, concept, alias=True)
        merges.append(
            pb.MergeRecord(
                from_key=concept.canonical_key, into_key=rep.canonical_key, reason="similarity",
                similarity=round(sim, 4),
            )
        )
    return representatives, merges
