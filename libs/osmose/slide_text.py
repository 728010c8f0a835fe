"""The text of a slide, as the stages read it.

One place decides what a slide "says" (title, blocks, tables, chart labels,
notes, vision output) so triage, extraction and chunking agree.
"""

from __future__ import annotations

import re

from osmose.v1 import document_pb2 as pb

__all__ = ["body_text", "slide_text", "word_count"]

_WORD = re.compile(r"\w+", re.UNICODE)
# Scripts written without spaces: count characters as words so a Japanese slide is not "empty".
_DENSE_SCRIPT = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")


def word_count(text: str) -> int:
    dense = len(_DENSE_SCRIPT.findall(text))
    if dense:
        spaced = len(_WORD.findall(_DENSE_SCRIPT.sub(" ", text)))
        return spaced + (dense + 1) // 2
    return len(_WORD.findall(text))


def _table_text(table: pb.Table) -> str:
    return "\n".join(" | ".join(c.strip() for c in row.cells) for row in table.rows if any(c.strip() for c in row.cells))


def _chart_text(chart: pb.Chart) -> str:
    parts = [chart.title] if chart.title else []
    if chart.categories:
        parts.append(", ".join(chart.categories))
    parts.extend(s.name for s in chart.series if s.name)
    return "\n".join(parts)


def body_text(slide: pb.Slide) -> str:
    """What is written on the page itself: text blocks (title first), tables, chart labels."""
    parts = [b.text for b in slide.blocks if b.text.strip()]
    if slide.title and not any(b.role == pb.BLOCK_ROLE_TITLE for b in slide.blocks):
        parts.insert(0, slide.title)
    parts.extend(_table_text(t) for t in slide.tables)
    parts.extend(_chart_text(c) for c in slide.charts)
    return "\n".join(p for p in parts if p.strip())


# Vision paths whose text is new information. A DESCRIPTION restates the parsed content
# (title, text, notes, tables, charts), so adding it would count every word twice.
_NEW_TEXT_PATHS = frozenset({pb.VISION_PATH_OCR, pb.VISION_PATH_LLM})


def slide_text(slide: pb.Slide, *, notes: bool = True, vision: bool = True) -> str:
    """Everything a slide says: body, picture alt texts, speaker notes, and what vision
    read or saw (OCR, vision model) that the file itself does not say."""
    parts = [body_text(slide)]
    parts.extend(p.alt_text for p in slide.pictures if p.alt_text.strip())
    if notes and slide.notes.strip():
        parts.append(slide.notes)
    if vision and slide.vision.path in _NEW_TEXT_PATHS and slide.vision.text.strip():
        parts.append(slide.vision.text)
    return "\n".join(p for p in parts if p.strip())
