"""Cut a deck into topical segments: runs of consecutive slides about one thing.

A new segment starts at a PowerPoint section boundary, at a section-header slide
(a title with next to no body), when the vocabulary of a slide stops overlapping
with the running segment, or when a segment reaches its maximum length. Cheap and
deterministic: lexical overlap, no model.
"""

from __future__ import annotations

import re

from osmose import ids
from osmose.text.slide_text import body_text, word_count
from osmose.v1 import document_pb2 as pb

__all__ = ["MAX_SEGMENT_SLIDES", "segment_document"]

MAX_SEGMENT_SLIDES = 12
_MIN_OVERLAP = 0.08          # share of a slide's words already seen in the segment's recent slides
_WINDOW = 3                  # recent slides compared against
_HEADER_MAX_WORDS = 6        # a title slide with at most this many words of body is a section header
_TOKEN = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_CONTINUED = re.compile(r"\s*(\(?(cont(\.|inued)?|suite|fortsetzung|\d+\s*/\s*\d+)\)?)\s*$", re.IGNORECASE)


def _tokens(text: str) -> set[str]:
    return {t.casefold() for t in _TOKEN.findall(text)}


def _base_title(title: str) -> str:
    return _CONTINUED.sub("", title).strip().casefold()


def _is_section_header(slide: pb.Slide) -> bool:
    if not slide.title.strip() or slide.tables or slide.charts:
        return False
    body = "\n".join(b.text for b in slide.blocks if b.role != pb.BLOCK_ROLE_TITLE)
    return word_count(body) <= _HEADER_MAX_WORDS and word_count(slide.title) <= 12


def segment_document(doc: pb.Document, *, max_slides: int = MAX_SEGMENT_SLIDES) -> list[pb.Segment]:
    groups: list[list[pb.Slide]] = []
    recent: list[set[str]] = []
    for slide in doc.slides:
        words = _tokens(body_text(slide))
        current = groups[-1] if groups else None
        if current is None or slide.section and slide.section != current[-1].section or len(current) >= max_slides or _is_section_header(slide) and not _is_section_header(current[-1]):
            start = True
        elif (len(words) >= 5 and len(current) >= 2
              and _base_title(slide.title) != _base_title(current[-1].title)):
            seen = set().union(*recent[-_WINDOW:]) if recent else set()
            start = len(words & seen) / len(words) < _MIN_OVERLAP
        else:
            start = False
        if start:
            groups.append([slide])
            recent = [words]
        else:
            groups[-1].append(slide)
            recent.append(words)

    segments = []
    for index, group in enumerate(groups):
        title = group[0].section or next((s.title for s in group if s.title.strip()), "")
        if not title:
            title = " ".join(body_text(group[0]).split()[:8])
        segments.append(pb.Segment(
            segment_id=ids.segment_id(doc.doc_id, index),
            index=index,
            title=title.strip()[:200],
            slide_numbers=[s.number for s in group],
        ))
    return segments
