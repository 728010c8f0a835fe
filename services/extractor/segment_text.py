"""The text of a segment: what the extractor reads from each slide.

Titles come first (keyphrase position features favour early words), then body
blocks, tables, charts, vision output and speaker notes. Every piece is one line;
lines are kept apart so phrases are never glued across two bullets.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from osmose import ids
from osmose.v1 import document_pb2 as pb

__all__ = ["SegmentText", "SlideText", "document_slides", "is_code_line", "segment_texts", "slide_text"]

# Slides per window when triage left no segments (should not happen in the pipeline).
FALLBACK_WINDOW = 5
# A line on at least this share of the slides (and on BOILERPLATE_MIN_SLIDES of them) is a
# footer or a header ("Art of Multiprocessor Programming", "Company Confidential").
BOILERPLATE_SHARE = 0.4
BOILERPLATE_MIN_SLIDES = 4
# Source code on slides: statements, braces, assignments, calls.
_CODE_LINE = re.compile(
    r"[;{}]\s*$|^\s*[{}]|^\s*(#include|//|/\*|\*/)"
    r"|^\s*(public|private|protected|static|void|return|def|import|class|func|var|let|const|if|while|for)\b.*[(:;=]"
    r"|\w\([^()]*\)\s*[;{:]?\s*$|\s(==|!=|:=|\+=|-=|=>|->|&&|\|\|)\s|\w\s=\s\w"
)


@dataclass(frozen=True)
class SlideText:
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


@dataclass(frozen=True)
class SegmentText:
    segment_id: str
    index: int
    slides: tuple[SlideText, ...]
    title: str = ""

    @property
    def slide_numbers(self) -> tuple[int, ...]:
        return tuple(s.number for s in self.slides)

    @property
    def title_lines(self) -> tuple[str, ...]:
        titles = [self.title] if self.title else []
        titles += [s.title for s in self.slides if s.title]
        return tuple(dict.fromkeys(titles))

    @cached_property
    def lines(self) -> tuple[str, ...]:
        return tuple(line for s in self.slides for line in s.lines)

    @cached_property
    def text(self) -> str:
        return "\n".join(self.lines)

    def lines_within(self, max_words: int) -> list[str]:
        """Visible lines, then speaker notes, in slide order, up to about `max_words` words.

        Statistical keyphrase extraction costs time per word; what is on the slides
        matters more than what is said over them, so notes are cut first.
        """
        out: list[str] = []
        words = 0
        for line in [line for s in self.slides for line in s.visible] + [n for s in self.slides for n in s.notes]:
            if words >= max_words:
                break
            if sum(ch.isalpha() for ch in line) < 3:
                continue  # table cells like "Q1" or "12.5": no phrase in them, only cost
            out.append(line)
            words += len(line.split()) or 1
        return out


def _clean(text: str) -> str:
    # NFKC folds full-width Latin and compatibility forms, so "ＳＱＬ" is found as "SQL".
    text = unicodedata.normalize("NFKC", text).replace("\u00a0", " ")
    return " ".join(text.split())


def _split_lines(text: str) -> Iterable[str]:
    for raw in text.replace("\r", "\n").replace("\v", "\n").split("\n"):
        line = _clean(raw)
        if line:
            yield line


def is_code_line(line: str) -> bool:
    """Whether `line` looks like source code (no concepts in ``while (!lock.get()) {}``)."""
    return bool(_CODE_LINE.search(line))


def _without(text: SlideText, dropped: set[str]) -> SlideText:
    return SlideText(
        number=text.number,
        title=text.title,
        visible=tuple(line for line in text.visible if line not in dropped and not is_code_line(line)),
        notes=tuple(line for line in text.notes if line not in dropped and not is_code_line(line)),
    )


def _boilerplate(slides: Sequence[SlideText]) -> set[str]:
    counts = Counter(line for s in slides for line in set(s.visible) if line != s.title)
    threshold = max(BOILERPLATE_MIN_SLIDES, BOILERPLATE_SHARE * len(slides))
    return {line for line, n in counts.items() if n >= threshold}


def document_slides(document: pb.Document) -> dict[int, SlideText]:
    """The text of every slide, without repeated footers/headers and source code lines."""
    texts = [slide_text(s) for s in document.slides]
    dropped = _boilerplate(texts)
    return {t.number: _without(t, dropped) for t in texts}


def slide_text(slide: pb.Slide) -> SlideText:
    """Every line of text on a slide, title first, without duplicates."""
    lines: list[str] = []
    title = _clean(slide.title)
    if title:
        lines.append(title)
    for block in slide.blocks:
        lines.extend(_split_lines(block.text))
    for table in slide.tables:
        for row in table.rows:
            for cell in row.cells:
                lines.extend(_split_lines(cell))
    for chart in slide.charts:
        lines.extend(_split_lines(chart.title))
        for category in chart.categories:
            lines.extend(_split_lines(category))
        for series in chart.series:
            lines.extend(_split_lines(series.name))
    for picture in slide.pictures:
        lines.extend(_split_lines(picture.alt_text))
    lines.extend(_split_lines(slide.vision.text))
    # A title repeated as a text block, or the same table cell in every row, counts once.
    visible = tuple(dict.fromkeys(lines))
    notes = tuple(n for n in dict.fromkeys(_split_lines(slide.notes)) if n not in visible)
    return SlideText(number=slide.number, title=title, visible=visible, notes=notes)


def segment_texts(document: pb.Document, segments: Sequence[pb.Segment]) -> list[SegmentText]:
    """One :class:`SegmentText` per segment (fixed windows when there are no segments)."""
    slides = document_slides(document)
    if not segments:
        numbers = sorted(slides)
        return [
            SegmentText(
                segment_id=ids.segment_id(document.doc_id, i),
                index=i,
                slides=tuple(slides[n] for n in numbers[start : start + FALLBACK_WINDOW]),
            )
            for i, start in enumerate(range(0, len(numbers), FALLBACK_WINDOW))
        ]
    return [
        SegmentText(
            segment_id=seg.segment_id,
            index=seg.index,
            title=_clean(seg.title),
            slides=tuple(slides[n] for n in seg.slide_numbers if n in slides),
        )
        for seg in segments
    ]
