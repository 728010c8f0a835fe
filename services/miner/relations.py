"""Relations between canonical concepts: co-occurrence in a segment and name similarity.

Both kinds are symmetric, so ``source_key < target_key``. A document keeps only
its strongest relations (see :class:`RelationLimits`): a 250-slide deck has
tens of thousands of co-occurring pairs, and a graph of all of them says nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from osmose.v1 import document_pb2 as pb

__all__ = [
    "MAX_COOCCURRENCES",
    "MAX_SIMILAR",
    "SIMILAR_MIN",
    "SIMILAR_PER_CONCEPT",
    "RelationLimits",
    "co_occurrences",
    "similarities",
]

MAX_COOCCURRENCES = 2000
MAX_SIMILAR = 500
# Lowest name cosine similarity that makes two concepts SIMILAR.
SIMILAR_MIN = 0.82
# A concept keeps at most this many SIMILAR neighbours (no hubs made of generic names).
SIMILAR_PER_CONCEPT = 2


@dataclass(frozen=True, kw_only=True)
class RelationLimits:
    max_cooccurrences: int = MAX_COOCCURRENCES
    max_similar: int = MAX_SIMILAR
    similar_min: float = SIMILAR_MIN
    similar_per_concept: int = SIMILAR_PER_CONCEPT


def co_occurrences(concepts: Sequence[pb.Concept], *, limit: int = MAX_COOCCURRENCES) -> list[pb.Relation]:
    """CO_OCCURS between concepts found in the same segment; weight = number of shared segments.

    Ties are broken by the salience of the two concepts, then by key, so the
    same input always keeps the same relations.
    """
    by_segment: dict[str, set[str]] = defaultdict(set)
    score = {c.canonical_key: c.score for c in concepts}
    for concept in concepts:
        for segment_id in concept.segment_ids:
            by_segment[segment_id].add(concept.canonical_key)
    evidence: dict[tuple[str, str], set[str]] = defaultdict(set)
    for segment_id, keys in by_segment.items():
        for pair in combinations(sorted(keys), 2):
            evidence[pair].add(segment_id)
    ranked = sorted(
        evidence.items(),
        key=lambda kv: (-len(kv[1]), -(score[kv[0][0]] + score[kv[0][1]]), kv[0]),
    )[:limit]
    return [
        pb.Relation(
            source_key=a, target_key=b, kind=pb.RELATION_KIND_CO_OCCURS, weight=float(len(ids)),
            evidence=sorted(ids),
        )
        for (a, b), ids in ranked
    ]


def similarities(
    concepts: Sequence[pb.Concept],
    vectors: Mapping[str, np.ndarray],
    *,
    limits: RelationLimits | None = None,
) -> list[pb.Relation]:
    """SIMILAR between distinct concepts whose name vectors have cosine >= ``similar_min``.

    Pairs above the merge threshold that were kept apart on purpose (other type,
    other numbers: "ISO 27001"/"ISO 27002") are related here too.
    """
    limits = limits or RelationLimits()
    named = sorted((c for c in concepts if c.name in vectors), key=lambda c: c.canonical_key)
    if len(named) < 2:
        return []
    matrix = np.stack([vectors[c.name] for c in named]).astype(np.float32)
    sims = matrix @ matrix.T
    neighbours: dict[int, list[tuple[float, int]]] = defaultdict(list)
    rows, cols = np.nonzero(np.triu(sims >= limits.similar_min, k=1))
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        sim = round(float(sims[i, j]), 4)
        neighbours[i].append((sim, j))
        neighbours[j].append((sim, i))
    kept: set[tuple[int, int]] = set()
    for i, found in neighbours.items():
        for _sim, j in sorted(found, key=lambda x: (-x[0], x[1]))[: limits.similar_per_concept]:
            kept.add((min(i, j), max(i, j)))
    ranked = sorted(kept, key=lambda p: (-round(float(sims[p]), 4), p))[: limits.max_similar]
    out = []
    for i, j in ranked:
        sim = round(float(sims[i, j]), 4)
        out.append(
            pb.Relation(
                source_key=named[i].canonical_key, target_key=named[j].canonical_key,
                kind=pb.RELATION_KIND_SIMILAR, weight=sim, evidence=[f"sim:{sim:.2f}"],
            )
        )
    return out
