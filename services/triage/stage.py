"""The triage stage: from a file on disk to a planned document."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from osmose.config import Limits, Settings, TriagePolicy
from osmose.documents.parsing import parse_document
from osmose.documents.parsing.limits import check_page_count, read_bounded
from osmose.documents.parsing.worker import ParserPool
from osmose.errors import PermanentError
from osmose.pipeline import PREVIEW_TIER, RICH_TIERS, tier_name
from osmose.services.triage.budget import check_embed_budget, estimate_work, fit_tier
from osmose.services.triage.policy import choose_tier, vision_decision
from osmose.services.triage.segmentation import segment_document
from osmose.text.language import detect_languages
from osmose.text.slide_text import slide_text
from osmose.v1 import pipeline_pb2 as ppb

__all__ = ["TriageConfig", "TriageStage"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TriageConfig:
    limits: Limits = field(default_factory=Limits)
    policy: TriagePolicy = field(default_factory=TriagePolicy)
    # LibreOffice for legacy .ppt; None = looked up on PATH.
    soffice: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TriageConfig:
        return cls(limits=settings.limits, policy=settings.triage, soffice=settings.soffice)

    def parse_settings(self) -> Settings:
        """What the parsers read (limits and LibreOffice), in the form they take."""
        return Settings(limits=self.limits, soffice=self.soffice)


class TriageStage:
    name = "triage"
    Config = TriageConfig

    def __init__(self, config: TriageConfig = TriageConfig(), *, parser: ParserPool | None = None) -> None:
        """`parser`: worker processes that parse with a deadline (the hosts pass one);
        without it documents are parsed in this process (tests, tools)."""
        self.config = config
        self.parser = parser
        # A thread waits for each parse: no more of them than the parser has processes, so
        # a backlog entering triage at once does not take every thread of the loop's default
        # executor (the other stages' off-loop work — cache lookups, chunking — queues there).
        self._threads = asyncio.Semaphore(parser.size if parser is not None else 1)

    async def process(self, item: ppb.WorkItem) -> ppb.WorkItem:
        async with self._threads:
            return await asyncio.to_thread(self.process_sync, item)

    def process_sync(self, item: ppb.WorkItem) -> ppb.WorkItem:
        if not item.document.slides:
            if not item.source_uri:
                raise PermanentError("work item has neither a parsed document nor a source file")
            path = Path(item.source_uri)
            name = item.document.file_name or path.name
            if self.parser is None:
                doc = parse_document(path, settings=self.config.parse_settings(), file_name=name)
            else:
                data = read_bounded(path, self.config.limits)
                doc = self.parser.parse(data, settings=self.config.parse_settings(), file_name=name)
            item.document.CopyFrom(doc)
        else:   # a document parsed elsewhere gets the same limits as one parsed here
            check_page_count(len(item.document.slides), self.config.limits, unit="slides")
        doc = item.document
        # The budget first: a document whose text alone is over it is refused before any
        # other pass over that text (language, segmentation) or any later stage.
        texts = [slide_text(s, vision=False) for s in doc.slides]
        check_embed_budget(estimate_work(texts), self.config.policy)

        profile = detect_languages(texts)
        doc.language = profile.dominant
        for slide in doc.slides:
            slide.vision_decision.CopyFrom(vision_decision(slide, policy=self.config.policy))

        segments = segment_document(doc)
        vision_slides = sum(1 for s in doc.slides if s.vision_decision.needed)
        estimate = estimate_work(texts, vision_slides=vision_slides, segments=len(segments))
        choice = choose_tier(doc, requested=item.plan.tier, policy=self.config.policy, estimate=estimate)
        fitted = fit_tier(choice.tier, estimate, self.config.policy)
        reason = choice.reason
        if fitted.reason:
            reason = f"{choice.reason}; {fitted.reason}"
            item.warnings.append(f"tier lowered to {tier_name(fitted.tier)} by the per-document {fitted.reason}")
        item.plan.tier = fitted.tier
        # A preview (asked, or by size): searchable at FAST first, enriched to the tier afterwards.
        preview = item.plan.preview or 0 < self.config.policy.preview_min_pages <= len(doc.slides)
        item.plan.preview = preview and fitted.tier in RICH_TIERS
        if item.plan.preview:
            item.plan.enrich_tier, item.plan.tier = fitted.tier, PREVIEW_TIER
            reason = f"{reason}; searchable at {tier_name(PREVIEW_TIER)} first"
        item.plan.tier_reason = reason
        item.plan.tier_requested = choice.requested
        item.plan.language = profile.dominant
        del item.plan.languages[:]
        item.plan.languages.extend(profile.languages)
        item.plan.vision_slides = vision_slides

        del item.segments[:]
        item.segments.extend(segments)
        logger.info("triaged %s: %d slides, tier %s (%s), language %s, %d for vision, %d segments, "
                    "%d characters (~%d tokens to embed, ~%d model calls)",
                    doc.file_name, len(doc.slides), tier_name(fitted.tier), reason, profile.dominant or "?",
                    item.plan.vision_slides, len(item.segments), estimate.characters, estimate.embed_tokens,
                    estimate.model_calls(fitted.tier))
        return item
