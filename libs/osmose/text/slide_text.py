"""The text of a slide, as the stages read it.

One place decides what a slide "says" (title, blocks, tables, chart labels,
picture alt texts, notes, vision output) so triage, vision, extraction,
relation mining and chunking agree. Two views of it:

- :func:`slide_text` / :func:`body_text`: one string, tables as ``a | b``
  rows, for counting words, language detection, embedding and prompts. Vision
  text counts only when it is new information (OCR, vision model): a
  DESCRIPTION restates the parsed content.
- :func:`slide_lines`: the same parts as clean, distinct lines (every table
  cell and chart label its own line, title first, notes apart), for the
  extractor's phrase detectors, which must never glue two bullets together.
  Vision text is read on every path: a description spells out chart data and
  pictures in words the detectors can use.

And the rule both triage and vision apply to a page's own text:
:data:`SCAN_MAX_WORDS` (see :func:`reads_as_scan`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from osmose.text.scripts import UNSPACED
from osmose.v1 import document_pb2 as pb

__all__ = [
    "SCAN_MAX_WORDS",
    "SlideLines",
    "body_text",
    "clean_line",
    "reads_as_scan",
    "slide_lines",
    "slide_text",
    "word_count",
]

# A page with fewer words of its own text (:func:`body_text`) is read like a scan: triage
# sends it to vision when pictures cover it, and vision reads it by OCR rather than
# describing it from the parsed content.
SCAN_MAX_WORDS = 15

_WORD = re.compile(r"\w+", re.UNICODE)
# Scripts written without spaces: count characters as words so a Japanese slide is not "empty".
_DENSE_SCRIPT = re.compile(f"[{UNSPACED}]")


def word_count(text: str) -> int:
    """Words in `text`; in unspaced scripts, two characters count as one word."""
    dense = len(_DENSE_SCRIPT.findall(text))
    if dense:
        spaced = len(_WORD.findall(_DENSE_SCRIPT.sub(" ", text)))
        return spaced + (dense + 1) // 2
    return len(_WORD.findall(text))


def reads_as_scan(words: int) -> bool:
    """Whether a page with `words` words of its own text is read like a scan (see module doc)."""
    return words < SCAN_MAX_WORDS


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


@dataclass(frozen=True)
class SlideLines:
    """A slide's text as distinct lines (see :func:`slide_lines`)."""

    number: int
    title: str
    visible: tuple[str, ...]  # what the audience sees (title first), and what vision read
    notes: tuple[str, ...] = ()  # speaker notes

    @property
    def lines(self) -> tuple[str, ...]:
        return self.visible + self.notes

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def clean_line(text: str) -> str:
    """`text` on one line: NFKC (so "ＳＱＬ" is found as "SQL"), whitespace runs as one space."""
    text = unicodedata.normalize("NFKC", text).replace("\u00a0", " ")
    return " ".join(text.split())


def _split_lines(text: str) -> Iterable[str]:
    for raw in text.replace("\r", "\n").replace("\v", "\n").split("\n"):
        line = clean_line(raw)
        if line:
            yield line


def slide_lines(slide: pb.Slide) -> SlideLines:
    """Every line of text on a slide, title first, without duplicates (vision text only when it is
    new information: not a description of the parsed content)."""
    lines: list[str] = []
    title = clean_line(slide.title)
    if title:
        lines.append(title)
    for block in slide.blocks:
        lines.extend(_split_lines(block.text))
    for table in slide.tables:
        for row in table.rows:
            for cell in row.cells:
                lines.extend(_split_lines(cell))
    for chart in slide.charts:
        for label in (chart.title, *chart.categories, *(s.name for s in chart.series)):
            lines.extend(_split_lines(label))
    for picture in slide.pictures:
        lines.extend(_split_lines(picture.alt_text))
    if slide.vision.path != pb.VISION_PATH_DESCRIPTION:
        # A description restates the parsed content in the describer's words ("Picture 1: described
        # as ..."): read as text, it would count every word twice and make its phrasing concepts.
        lines.extend(_split_lines(slide.vision.text))
    # A title repeated as a text block, or the same table cell in every row, counts once.
    visible = tuple(dict.fromkeys(lines))
    notes = tuple(n for n in dict.fromkeys(_split_lines(slide.notes)) if n not in visible)
    return SlideLines(number=slide.number, title=title, visible=visible, notes=notes)
