"""Builders for extractor tests: work items made directly from protobuf messages."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb

SlideSpec = tuple[str, Sequence[str]] | tuple[str, Sequence[str], str]


def make_slide(number: int, title: str, bullets: Sequence[str], notes: str = "") -> pb.Slide:
    blocks = [pb.TextBlock(text=title, role=pb.BLOCK_ROLE_TITLE)] if title else []
    blocks += [pb.TextBlock(text=b, role=pb.BLOCK_ROLE_BODY) for b in bullets]
    return pb.Slide(number=number, title=title, blocks=blocks, notes=notes)


def make_item(
    slides: Sequence[SlideSpec],
    *,
    language: str = "en",
    per_segment: int = 2,
    tier: int = pb.TIER_DEEP,
    languages: Sequence[str] = (),
) -> ppb.WorkItem:
    """A work item with `slides` (title, bullets[, notes]) in segments of `per_segment` slides."""
    doc = pb.Document(
        doc_id="doc-test", language=language,
        slides=[make_slide(i, *spec) for i, spec in enumerate(slides, start=1)],
    )
    segments = [
        pb.Segment(segment_id=f"seg-{k}", index=k, slide_numbers=list(range(start + 1, min(start + per_segment, len(slides)) + 1)))
        for k, start in enumerate(range(0, len(slides), per_segment))
    ]
    return ppb.WorkItem(
        job_id="job-test", tenant="acme", document=doc, segments=segments,
        plan=ppb.TriagePlan(tier=tier, language=language, languages=list(languages)),
    )


@pytest.fixture
def item_factory() -> Callable[..., ppb.WorkItem]:
    return make_item
