"""The extractor stage: adapts a work item to :func:`extract.extract_concepts`."""

from __future__ import annotations

import asyncio
import logging
import time

from osmose.config import Settings
from osmose.services.extractor.extract import ExtractorLimits, extract_concepts
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb

__all__ = ["ExtractorStage"]

logger = logging.getLogger(__name__)

_NO_SEGMENTS_WARNING = "extractor: no segments from triage; used fixed windows of slides"


class ExtractorStage:
    """Fills ``item.concepts`` (names, types, mentions, saliences; no canonical keys yet).

    Replaces any concepts already on the item, so a replay gives the same result.
    FAST items pass through untouched (the tier skips concept work).
    """

    name = "extractor"

    def __init__(self, settings: Settings, *, limits: ExtractorLimits | None = None) -> None:
        self.settings = settings
        self.limits = limits or ExtractorLimits()

    async def process(self, item: ppb.WorkItem) -> ppb.WorkItem:
        log_extra = {"job_id": item.job_id, "tenant": item.tenant, "doc_id": item.document.doc_id}
        if item.plan.tier == pb.TIER_FAST:
            logger.debug("extractor skipped: FAST tier", extra=log_extra)
            return item
        if not item.segments and item.document.slides and _NO_SEGMENTS_WARNING not in item.warnings:
            item.warnings.append(_NO_SEGMENTS_WARNING)
        started = time.perf_counter()
        concepts = await asyncio.to_thread(
            extract_concepts,
            item.document,
            list(item.segments),
            language=item.plan.language or item.document.language,
            languages=list(item.plan.languages),
            limits=self.limits,
        )
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
