"""The miner stage: canonical concepts (STANDARD and DEEP) and relations (DEEP).

In DEEP, relations are CO_OCCURS (significant sentence co-occurrence), TYPED relations the
text states, and SIMILAR (derived here, no model; see :mod:`text_relations`) and, when a
language model serves ``relation_typing``, TYPED relations (see :mod:`llm_relations`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from osmose import ids
from osmose.config import DEFAULT_TENANT, Settings
from osmose.embeddings.base import Embeddings
from osmose.models.context import bind_accounting
from osmose.models.structured import ask_segments
from osmose.services.miner import llm_relations as typed
from osmose.services.miner.canonical import (
    SIMILARITY_MERGE_THRESHOLD,
    merge_acronyms,
    merge_by_key,
    merge_similar,
)
from osmose.services.miner.relations import RelationLimits, similarities
from osmose.services.miner.text_relations import (
    AssociationLimits,
    head_relations,
    sentence_associations,
    stated_relations,
)
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb

if TYPE_CHECKING:
    from osmose.models import ModelRuntime, ModelSession

__all__ = ["MinerConfig", "MinerLimits", "MinerStage"]

logger = logging.getLogger(__name__)

# Relation kinds this stage derives (and so replaces on a replay); others are left as they are.
# TYPED relations are derived here too when a language model types them (then they are replaced);
# without one, TYPED relations from elsewhere are kept.
_DERIVED_KINDS = frozenset({pb.RELATION_KIND_CO_OCCURS, pb.RELATION_KIND_SIMILAR})


@dataclass(frozen=True, kw_only=True)
class MinerLimits:
    merge_threshold: float = SIMILARITY_MERGE_THRESHOLD
    relations: RelationLimits = field(default_factory=RelationLimits)
    associations: AssociationLimits = field(default_factory=AssociationLimits)

    def __post_init__(self) -> None:
        if not self.relations.similar_min <= self.merge_threshold <= 1.0:
            raise ValueError("need similar_min <= merge_threshold <= 1")


@dataclass(frozen=True, kw_only=True)
class MinerConfig:
    limits: MinerLimits = field(default_factory=MinerLimits)

    @classmethod
    def from_settings(cls, settings: Settings) -> MinerConfig:
        return cls()   # nothing in Settings tunes the miner yet


class MinerStage:
    """Canonicalises ``item.concepts`` and, in DEEP, derives ``item.relations``.

    Sets ``canonical_key`` and ``concept_id`` on every concept, appends the
    merges to ``item.merges`` and sorts everything, so running the stage again
    on its own output changes nothing.
    """

    name = "miner"
    Config = MinerConfig

    def __init__(self, config: MinerConfig = MinerConfig(), *, embeddings: Embeddings,
                 models: ModelRuntime | None = None) -> None:
        self.config = config
        self.embeddings = embeddings
        self.limits = config.limits
        # Charges remote embedding calls to the document and, if it serves relation_typing, types relations.
        self.models = models

    async def process(self, item: ppb.WorkItem) -> ppb.WorkItem:
        log_extra = {"job_id": item.job_id, "tenant": item.tenant, "doc_id": item.document.doc_id}
        started = time.perf_counter()
        language = item.plan.language or item.document.language or "en"
        tenant = item.tenant or DEFAULT_TENANT
        session = self.models.session(label=item.document.file_name or item.document.doc_id, scope=tenant) if self.models else None
        try:
            return await self._process(item, session, language, tenant, started, log_extra)
        finally:
            if session is not None:
                session.add_to(item)

    async def _process(self, item: ppb.WorkItem, session: ModelSession | None, language: str, tenant: str,
                       started: float, log_extra: dict[str, str]) -> ppb.WorkItem:
        concepts, by_key = merge_by_key(list(item.concepts), language)
        concepts, by_acronym = merge_acronyms(concepts, language)
        with bind_accounting(session.accounting) if session is not None else contextlib.nullcontext():
            vectors = await self._name_vectors([c.name for c in concepts], tenant=tenant)
        concepts, by_similarity = merge_similar(concepts, vectors, threshold=self.limits.merge_threshold)
        for concept in concepts:
            concept.concept_id = ids.concept_id(tenant, concept.canonical_key)
        concepts.sort(key=lambda c: (-c.score, c.canonical_key))

        merges = list(item.merges)
        seen = {m.SerializeToString(deterministic=True) for m in merges}
        for merge in [*by_key, *by_acronym, *by_similarity]:
            if merge.SerializeToString(deterministic=True) not in seen:
                merges.append(merge)

        types_relations = (item.plan.tier == pb.TIER_DEEP and session is not None
                           and session.serves(typed.TASK.name))
        derived = _DERIVED_KINDS | ({pb.RELATION_KIND_TYPED} if types_relations else set())
        relations = [r for r in item.relations if r.kind not in derived]
        if item.plan.tier == pb.TIER_DEEP:
            # Offline relations: significant sentence co-occurrence and what the text states (text_relations).
            relations += sentence_associations(item.document, concepts, limits=self.limits.associations)
            # Stated relations are TYPED: kept from an earlier run when no model types relations, so
            # only new ones are added (a replay changes nothing).
            present = {r.SerializeToString(deterministic=True) for r in relations}
            slide_ids = {s.number: s.slide_id for s in item.document.slides}
            stated = [*stated_relations(item.document, concepts), *head_relations(concepts, language, slide_ids)]
            relations += [r for r in stated if r.SerializeToString(deterministic=True) not in present]
            relations += similarities(concepts, vectors, limits=self.limits.relations)
            if types_relations:
                assert session is not None
                relations += await self._typed_relations(item, session, concepts)

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

    async def _typed_relations(self, item: ppb.WorkItem, session: ModelSession,
                               concepts: list[pb.Concept]) -> list[pb.Relation]:
        """TYPED relations from the language model; segments it cannot answer for keep
        only their CO_OCCURS/SIMILAR relations (or the document fails: ``fallback: fail``)."""
        route = session.route(typed.TASK.name)
        assert route is not None
        asked = typed.questions(item.document, item.segments, concepts, max_chars=route.max_input_chars)
        got = await ask_segments(session, typed.TASK, asked)
        if got.failed:
            item.warnings.append(f"miner: the language model did not type relations for {len(got.failed)} of "
                                 f"{len(asked)} segments ({got.reason[:300]}); they keep co-occurrence and "
                                 "similarity only")
        return typed.relations_from_answers(asked, got.answers)

    async def _name_vectors(self, names: Sequence[str], *, tenant: str) -> dict[str, np.ndarray]:
        unique = sorted(set(names))
        if len(unique) < 2:
            return {}
        vectors = await self.embeddings.embed(unique, scope=tenant)
        return {name: np.asarray(vectors[i], dtype=np.float32) for i, name in enumerate(unique)}
