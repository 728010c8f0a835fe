"""The text of a segment: what the extractor reads from each slide.

Each slide's lines come from :func:`osmose.text.slide_text.slide_lines` (title
first: keyphrase position features favour early words; every piece one line, so
phrases are never glued across two bullets). Here they are grouped by segment,
without repeated footers/headers and without source code.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from osmose import ids
from osmose.services.extractor.cleaning import clean_lines
from osmose.text.slide_text import SlideLines, clean_line, slide_lines
from osmose.text.stopwords import stopwords
from osmose.v1 import document_pb2 as pb

__all__ = ["SegmentText", "document_slides", "is_code_line", "segment_texts"]

# Slides per window when triage left no segments (should not happen in the pipeline).
FALLBACK_WINDOW = 5
# A line on at least this share of the slides (and on BOILERPLATE_MIN_SLIDES of them) is a
# footer or a header ("Art of Multiprocessor Programming", "Company Confidential").
BOILERPLATE_SHARE = 0.4
BOILERPLATE_MIN_SLIDES = 4
_WORD = re.compile(r"[^\W\d_]+")
# Source code on slides: statements, braces, assignments, calls.
_CODE_LINE = re.compile(
    r"[;{}]\s*$|^\s*[{}]|^\s*(#include|//|/\*|\*/)"
    r"|^\s*(public|private|protected|static|void|return|def|import|class|func|var|let|const|if|while|for)\b.*[(:;=]"
    r"|\w\([^()]*\)\s*[;{:]?\s*$|\s(==|!=|:=|\+=|-=|=>|->|&&|\|\|)\s|\w\s=\s\w"
    # markup: an HTML/XML tag with attributes or a closing tag ("<input type=...>", "</p>")
    r"|<[a-zA-Z][\w:-]*\s+[\w:-]+=|</[a-zA-Z][\w:-]*>|<[a-zA-Z][\w:-]*\s*/?>\s*$"
)


@dataclass(frozen=True)
class SegmentText:
    segment_id: str
    index: int
    slides: tuple[SlideLines, ...]
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


def is_code_line(line: str) -> bool:
    """Whether `line` looks like source code (no concepts in ``while (!lock.get()) {}``)."""
    return bool(_CODE_LINE.search(line))


def _without(text: SlideLines, dropped: set[str]) -> SlideLines:
    return SlideLines(
        number=text.number,
        title=text.title,
        visible=tuple(line for line in text.visible if line not in dropped and not is_code_line(line)),
        notes=tuple(line for line in text.notes if line not in dropped and not is_code_line(line)),
    )


def _boilerplate(slides: Sequence[SlideLines]) -> set[str]:
    counts = Counter(line for s in slides for line in set(s.visible) if line != s.title)
    threshold = max(BOILERPLATE_MIN_SLIDES, BOILERPLATE_SHARE * len(slides))
    return {line for line, n in counts.items() if n >= threshold}


def _repaired(texts: list[SlideLines], language: str) -> list[SlideLines]:
    words = stopwords(language or "en")
    whole = {w.casefold() for t in texts for line in t.lines for w in _WORD.findall(line)}

    def clean(lines: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(clean_lines(lines, stopwords=words, whole_words=whole))

    out = []
    for t in texts:
        title = clean((t.title,))[0] if t.title and clean((t.title,)) else ""
        out.append(SlideLines(number=t.number, title=title, visible=clean(t.visible), notes=clean(t.notes)))
    return out


def document_slides(document: pb.Document) -> dict[int, SlideLines]:
    """The text of every slide, repaired (:mod:`cleaning`), without repeated footers/headers and
    source code lines."""
    texts = _repaired([slide_lines(s) for s in document.slides], document.language)
    dropped = _boilerplate(texts)
    return {t.number: _without(t, dropped) for t in texts}


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
            title=clean_line(seg.title),
            slides=tuple(slides[n] for n in seg.slide_numbers if n in slides),
        )
        for seg in segments
    ]
