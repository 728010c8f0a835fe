"""Where a surface form occurs: per-slide counts over the whole document.

Matching is case-insensitive and word-boundary aware (CJK-safe, see
:func:`scripts.mention_pattern`); a phrase never matches across two lines or two
slides. The index also remembers how a form is usually written, so "sql server"
found by YAKE is named "SQL Server" as in the text.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from osmose.services.extractor.form_matcher import mention_pattern
from osmose.text.scripts import cjk_ratio, space_cjk
from osmose.text.slide_text import SlideLines

__all__ = ["MentionIndex", "Occurrences"]

# Joins lines: \s+ inside a pattern cannot cross it.
_LINE_BREAK = "\n\x00"
_WORD = re.compile(r"\w+")
_SENTENCE_START = ("", "\x00", ".", "!", "?", ":", ";", "•", "-", "–")


@dataclass(frozen=True)
class Occurrences:
    per_slide: tuple[tuple[int, int], ...]  # (slide number, count), by slide number
    surface: str  # how the form is usually written in the text

    @property
    def total(self) -> int:
        return sum(count for _, count in self.per_slide)


class MentionIndex:
    """Finds forms in the text of a document's slides.

    Each slide also keeps the set of its (case-folded) words, so a form is only
    searched for on the slides that contain all of its words.
    """

    def __init__(self, slides: Sequence[SlideLines]) -> None:
        self._slides = [(s.number, _LINE_BREAK.join(s.lines)) for s in slides]
        # Spaces between CJK and other scripts, so "SQL注入" holds the word "sql".
        self._words = [frozenset(_WORD.findall(space_cjk(text).casefold())) for _, text in self._slides]

    def find(self, form: str) -> Occurrences:
        pattern = mention_pattern(form)
        per_slide: Counter[int] = Counter()
        variants: defaultdict[str, float] = defaultdict(float)   # weighted: 0.5 after a full stop
        if pattern is None:
            return Occurrences(per_slide=(), surface=form)
        # CJK words are not delimited, so their slides cannot be preselected by words.
        needed = set() if cjk_ratio(form) else set(_WORD.findall(form.casefold()))
        for (number, text), words in zip(self._slides, self._words, strict=True):
            if not needed <= words:
                continue
            for match in pattern.finditer(text):
                per_slide[number] += 1
                before = text[max(0, match.start() - 4) : match.start()].rstrip(" ")[-1:]
                # A capital that opens a sentence says nothing about how the word is spelt.
                weight = 1 if before not in _SENTENCE_START else 0.5
                variants[" ".join(match.group().split())] += weight
        surface = min(variants, key=lambda v: (-variants[v], v)) if variants else form
        return Occurrences(per_slide=tuple(sorted(per_slide.items())), surface=surface)
