"""The extractor stage: adapts a work item to :func:`extract.extract_concepts` (heuristics) or,
when a language model serves ``concept_extraction``, to :mod:`llm_extract`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from osmose.config import Settings
from osmose.models.structured import SegmentBlock, ask_segments
from osmose.services.extractor.extract import ExtractorLimits, extract_concepts
from osmose.services.extractor.llm_extract import TASK, concepts_from_answers, segment_block
from osmose.services.extractor.segment_text import segment_texts
from osmose.text.names import surface_key
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb

if TYPE_CHECKING:
    from osmose.models import ModelRuntime, ModelSession

__all__ = ["ExtractorConfig", "ExtractorStage"]

logger = logging.getLogger(__name__)

_NO_SEGMENTS_WARNING = "extractor: no segments from triage; used fixed windows of slides"


@dataclass(frozen=True, kw_only=True)
class ExtractorConfig:
    limits: ExtractorLimits = field(default_factory=ExtractorLimits)

    @classmethod
    def from_settings(cls, settings: Settings) -> ExtractorConfig:
        return cls()   # nothing in Settings tunes the extractor yet


class ExtractorStage:
    """Fills ``item.concepts`` (names, types, mentions, saliences; no canonical keys yet).

    Replaces any concepts already on the item, so a replay gives the same result.
    (FAST documents never reach it: the pipeline declaration leaves it out of their plan.)

    With a model runtime that serves ``concept_extraction``, segments are packed
    several to a prompt and all prompts of the document are in flight at once (the
    backend's concurrency limit bounds them). Each segment's answer is cached under
    its own content, so a new version of a deck asks only about changed segments.
    Segments the model cannot answer for (down, breaker open, output unusable after a
    repair attempt) get the heuristics, with a warning — unless the route says
    ``fallback: fail``, which makes the document fail with a retryable error.
    """

    name = "extractor"
    Config = ExtractorConfig

    def __init__(self, config: ExtractorConfig = ExtractorConfig(), *, models: ModelRuntime | None = None) -> None:
        self.config = config
        self.limits = config.limits
        self.models = models if models is not None and models.serves(TASK.name) else None

    async def process(self, item: ppb.WorkItem) -> ppb.WorkItem:
        log_extra = {"job_id": item.job_id, "tenant": item.tenant, "doc_id": item.document.doc_id}
        if not item.segments and item.document.slides and _NO_SEGMENTS_WARNING not in item.warnings:
            item.warnings.append(_NO_SEGMENTS_WARNING)
        started = time.perf_counter()
        language = item.plan.language or item.document.language
        if self.models is not None:
            session = self.models.session(label=item.document.file_name or item.document.doc_id, scope=item.tenant)
            try:
                concepts = await self._with_model(item, session, language)
            finally:
                session.add_to(item)
        else:
            concepts = await self._heuristics(item, list(item.segments), language)
        del item.concepts[:]
        item.concepts.extend(concepts)
        logger.info(
            "extracted %d concepts from %d slides in %.3f s",
            len(concepts),
            len(item.document.slides),
            time.perf_counter() - started,
            extra=log_extra,
        )
        return item

    async def _heuristics(self, item: ppb.WorkItem, segments: list[pb.Segment], language: str) -> list[pb.Concept]:
        return await asyncio.to_thread(
            extract_concepts,
            item.document,
            segments,
            language=language,
            languages=list(item.plan.languages),
            limits=self.limits,
        )

    async def _with_model(self, item: ppb.WorkItem, session: ModelSession, language: str) -> list[pb.Concept]:
        route = session.route(TASK.name)
        assert route is not None
        segs = [s for s in segment_texts(item.document, item.segments) if s.slides]
        units = [SegmentBlock(seg.segment_id, segment_block(seg, route.max_input_chars)) for seg in segs]
        got = await ask_segments(session, TASK, units)
        concepts = concepts_from_answers(segs, got.answers, language=language, limits=self.limits)
        if not got.failed:
            return concepts
        item.warnings.append(f"extractor: the language model did not answer for {len(got.failed)} of {len(segs)} "
                             f"segments ({got.reason[:300]}); heuristics used for them")
        return self._merge(concepts, await self._heuristics_for(item, got.failed, language))

    async def _heuristics_for(self, item: ppb.WorkItem, failed: Sequence[SegmentBlock],
                              language: str) -> list[pb.Concept]:
        wanted = {seg.segment_id for seg in failed}
        segments = [s for s in item.segments if s.segment_id in wanted]
        return await self._heuristics(item, segments, language)

    def _merge(self, primary: list[pb.Concept], extra: list[pb.Concept]) -> list[pb.Concept]:
        """Model concepts plus heuristic ones of the segments the model missed (same name = one concept)."""
        by_key = {surface_key(c.name): c for c in primary}
        out = list(primary)
        for concept in extra:
            known = by_key.get(surface_key(concept.name))
            if known is None:
                out.append(concept)
                by_key[surface_key(concept.name)] = concept
                continue
            known.score = round(known.score + concept.score, 4)
            known.methods[:] = sorted(set(known.methods) | set(concept.methods))
            known.segment_ids.extend(s for s in concept.segment_ids if s not in known.segment_ids)
        out.sort(key=lambda c: (-c.score, surface_key(c.name)))
        return out[: self.limits.per_document]
