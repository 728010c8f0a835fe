"""The miner stage: canonical concepts (STANDARD and DEEP) and relations (DEEP)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from osmose import ids
from osmose.config import Settings
from osmose.embeddings.base import Embeddings
from osmose.services.miner.canonical import (
    SIMILARITY_MERGE_THRESHOLD,
    merge_acronyms,
    merge_by_key,
    merge_similar,
)
from osmose.services.miner.relations import RelationLimits, co_occurrences, similarities
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb

__all__ = ["MinerLimits", "MinerStage"]

logger = logging.getLogger(__name__)

# Relation kinds this stage derives (and so replaces on a replay); others, such as
# TYPED relations from a language model, are left as they are.
_DERIVED_KINDS = frozenset({pb.RELATION_KIND_CO_OCCURS, pb.RELATION_KIND_SIMILAR})


@dataclass(frozen=True, kw_only=True)
class MinerLimits:
    merge_threshold: float = SIMILARITY_MERGE_THRESHOLD
    relations: RelationLimits = field(default_factory=RelationLimits)

    def __post_init__(self) -> None:
        if not self.relations.similar_min <= self.merge_threshold <= 1.0:
            raise ValueError("need similar_min <= merge_threshold <= 1")


class MinerStage:
    """Canonicalises ``item.concepts`` and, in DEEP, derives ``item.relations``.

    Sets ``canonical_key`` and ``concept_id`` on every concept, appends the
    merges to ``item.merges`` and sorts everything, so running the stage again
    on its own output changes nothing.
    """

    name = "miner"

    def __init__(self, settings: Settings, embeddings: Embeddings, *, limits: MinerLimits | None = None) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self.limits = limits or MinerLimits()

    async def process(self, item: ppb.WorkItem) -> ppb.WorkItem:
        log_extra = {"job_id": item.job_id, "tenant": item.tenant, "doc_id": item.document.doc_id}
        if item.plan.tier == pb.TIER_FAST:
            logger.debug("miner skipped: FAST tier", extra=log_extra)
            return item
        started = time.perf_counter()
        language = item.plan.language or item.document.language or "en"
        tenant = item.tenant or self.settings.tenant

        concepts, by_key = merge_by_key(list(item.concepts), language)
        concepts, by_acronym = merge_acronyms(concepts, language)
        vectors = await self._name_vectors([c.name for c in concepts])
        concepts, by_similarity = merge_similar(concepts, vectors, threshold=self.limits.merge_threshold)
        for concept in concepts:
            concept.concept_id = ids.concept_id(tenant, concept.canonical_key)
        concepts.sort(key=lambda c: (-c.score, c.canonical_key))

        merges = list(item.merges)
        seen = {m.SerializeToString(deterministic=True) for m in merges}
        for merge in [*by_key, *by_acronym, *by_similarity]:
            if merge.SerializeToString(deterministic=True) not in seen:
                merges.append(merge)

        relations = [r for r in item.relations if r.kind not in _DERIVED_KINDS]
        if item.plan.tier == pb.TIER_DEEP:
            relations += co_occurrences(concepts, limit=self.limits.relations.max_cooccurrences)
            relations += similarities(concepts, vectors, limits=self.limits.relations)

        del item.concepts[:]
        item.concepts.extend(concepts)
        del item.merges[:]
        item.merges.extend(merges)
        del item.relations[:]
        item.relations.extend(relations)
        logger.info(
            "mined %d concepts (%d merges), %d relations in %.3f s",
            len(concepts),
            len(by_key) + len(by_acronym) + len(by_similarity),
            len(relations),
            time.perf_counter() - started,
            extra=log_extra,
        )
        return item

    async def _name_vectors(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        unique = sorted(set(names))
        if len(unique) < 2:
            return {}
        vectors = await self.embeddings.embed(unique)
        return {name: np.asarray(vectors[i], dtype=np.float32) for i, name in enumerate(unique)}
