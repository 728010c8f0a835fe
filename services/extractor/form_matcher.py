"""Finding a surface form in text as a whole word or phrase, in any script.

Chinese and Japanese have no spaces between words and Korean attaches particles
to nouns, so "word boundary" has to mean "boundary against a letter or digit of
a spaced script" there; otherwise ``SQL`` would never be found in ``SQL注入``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from osmose.text.scripts import is_cjk_char

__all__ = ["FormMatcher", "mention_pattern"]


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
