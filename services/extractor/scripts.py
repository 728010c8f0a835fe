"""Writing-system helpers: which characters are CJK, and word boundaries that respect them.

Chinese and Japanese have no spaces between words and Korean attaches particles
to nouns, so "word boundary" has to mean "boundary against a letter or digit of
a spaced script" there; otherwise ``SQL`` would never be found in ``SQL注入``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

__all__ = [
    "CJK_CHARS",
    "FormMatcher",
    "cjk_ratio",
    "is_cjk_char",
    "mention_pattern",
    "space_cjk",
]

# Hiragana, Katakana (+ phonetic extensions, half-width forms), CJK ideographs
# (+ extension A, compatibility), Hangul syllables and jamo.
CJK_CHARS = (
    "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\uff66-\uff9f\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"
)
_CJK_RE = re.compile(f"[{CJK_CHARS}]")
_SCRIPT_EDGE = re.compile(f"(?<=[{CJK_CHARS}])(?=[^\\s{CJK_CHARS}])|(?<=[^\\s{CJK_CHARS}])(?=[{CJK_CHARS}])")


def is_cjk_char(ch: str) -> bool:
    return bool(_CJK_RE.match(ch))


def cjk_ratio(text: str) -> float:
    """Share of the letters in `text` that are CJK (0 when there are no letters)."""
    letters = sum(1 for ch in text if ch.isalpha())
    if not letters:
        return 0.0
    return len(_CJK_RE.findall(text)) / letters


def space_cjk(text: str) -> str:
    """Put a space wherever CJK and non-CJK characters touch (``SQL注入`` -> ``SQL 注入``)."""
    return _SCRIPT_EDGE.sub(" ", text)


class FormMatcher:
    """Finds one surface form as a whole word or phrase, case-insensitively.

    Whitespace inside the form matches any run of whitespace. A boundary is only
    required on a side where the form ends in a letter/digit of a spaced script,
    so CJK forms match inside unspaced text and ``SQL`` matches in ``SQL注入``.
    Boundaries are checked in Python: a CJK character class inside the pattern
    would cost milliseconds to compile for every form.
    """

    __slots__ = ("_head", "_pattern", "_tail")

    def __init__(self, form: str) -> None:
        body = r"\s+".join(re.escape(w) for w in form.split())
        self._pattern = re.compile(body, re.IGNORECASE)
        self._head = _is_spaced_word_char(form[0])
        self._tail = _is_spaced_word_char(form[-1])

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        for match in self._pattern.finditer(text):
            start, end = match.span()
            if self._head and start > 0 and _is_spaced_word_char(text[start - 1]):
                continue
            if self._tail and end < len(text) and _is_spaced_word_char(text[end]):
                continue
            yield match

    def count(self, text: str) -> int:
        return sum(1 for _ in self.finditer(text))

    def occurs_in(self, text: str) -> bool:
        return next(self.finditer(text), None) is not None


@functools.lru_cache(maxsize=8192)
def mention_pattern(form: str) -> FormMatcher | None:
    """The (cached) :class:`FormMatcher` for `form`; None for an empty form."""
    return FormMatcher(form) if form.split() else None


def _is_spaced_word_char(ch: str) -> bool:
    return (ch.isalnum() or ch == "_") and not is_cjk_char(ch)
