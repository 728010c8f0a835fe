"""Which tier a document gets and which slides are worth a vision call.

The tier follows the page count, except that a document over the DEEP page limit still gets
DEEP when what DEEP would cost for it (its model calls and LLM tokens, estimated by
:mod:`budget`) fits the per-document budget: a 155-slide deck of short slides costs less than
a 100-page paper, and should not lose its relations to a page cut-off.

Vision is the expensive step (a GPU call per page in production), so it is
spent only where information is visual: pictures or diagrams covering much of a
page with little text, or pages that are images only (scans). Chart data is read
from the file itself and needs no vision.
"""

from __future__ import annotations

from dataclasses import dataclass

from osmose.config import TriagePolicy
from osmose.pipeline import tier_name
from osmose.services.triage.budget import WorkEstimate
from osmose.text.slide_text import body_text, reads_as_scan, word_count
from osmose.v1 import document_pb2 as pb

__all__ = ["TierChoice", "choose_tier", "vision_decision"]

_MIN_PICTURE_RATIO = 0.05     # pictures smaller than this share of the page are logos/icons


@dataclass(frozen=True)
class TierChoice:
    tier: pb.Tier
    reason: str
    requested: bool


def choose_tier(doc: pb.Document, *, requested: pb.Tier, policy: TriagePolicy,
                estimate: WorkEstimate | None = None) -> TierChoice:
    """The caller's tier, or DEEP when the document is short enough or its DEEP cost fits the
    budget (`estimate` given), otherwise STANDARD or FAST by page count."""
    if requested != pb.TIER_UNSPECIFIED:
        return TierChoice(requested, f"{tier_name(requested)} requested by the caller", True)
    pages = len(doc.slides)
    if pages > policy.deep_max_pages and estimate is not None:
        calls, tokens = estimate.model_calls(pb.TIER_DEEP), estimate.llm_tokens(pb.TIER_DEEP)
        if calls <= policy.max_model_calls and tokens <= policy.max_llm_tokens:
            return TierChoice(pb.TIER_DEEP, f"{pages} pages > {policy.deep_max_pages} but DEEP fits the budget "
                                            f"({calls:,} model calls, {tokens:,} LLM tokens): full graph", False)
    if pages > policy.standard_max_pages:
        return TierChoice(pb.TIER_FAST, f"{pages} pages > {policy.standard_max_pages}: embeddings only", False)
    if pages > policy.deep_max_pages:
        return TierChoice(pb.TIER_STANDARD, f"{pages} pages > {policy.deep_max_pages}: concepts without relations",
                          False)
    return TierChoice(pb.TIER_DEEP, f"{pages} pages ≤ {policy.deep_max_pages}: full graph", False)


def vision_decision(slide: pb.Slide, *, policy: TriagePolicy) -> pb.VisionDecision:
    words = word_count(body_text(slide))
    pictures = [p for p in slide.pictures if p.box.width * p.box.height >= _MIN_PICTURE_RATIO]
    # Pictures only: a chart's content is already text (its data), it does not make a slide visual.
    ratio = min(1.0, sum(p.box.width * p.box.height for p in pictures))
    if pictures and reads_as_scan(words) and ratio >= 0.5:
        return pb.VisionDecision(needed=True, reason=f"image-only page: pictures cover {ratio:.0%}, {words} words")
    if pictures and ratio >= policy.vision_min_visual_ratio and words < policy.vision_max_words:
        return pb.VisionDecision(
            needed=True, reason=f"visual slide: pictures cover {ratio:.0%} with {words} words of text")
    if slide.charts and not pictures:
        return pb.VisionDecision(needed=False, reason="chart data read from the file")
    if pictures:
        return pb.VisionDecision(needed=False, reason=f"text carries the slide: {words} words, pictures {ratio:.0%}")
    return pb.VisionDecision(needed=False, reason="text only")
