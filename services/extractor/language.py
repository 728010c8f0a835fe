"""Languages: which one a segment is written in and its stopwords.

Stopword lists are YAKE's (35 languages). A language YAKE lacks (Hebrew, Korean,
...) gets YAKE's language-neutral list, which is what YAKE itself falls back to.
English stopwords are always added: technical decks in any language quote
English phrases, and "the" is never a concept.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection
from pathlib import Path

import py3langid
import yake

from osmose.services.extractor.scripts import cjk_ratio

__all__ = ["CJK_LANGUAGES", "detect_language", "stopwords", "yake_code"]

logger = logging.getLogger(__name__)

_STOPWORD_DIR = Path(yake.__file__).parent / "core" / "StopwordsList"
# ISO 639-1 codes whose YAKE file has another name.
_YAKE_CODES = {"cs": "cz", "nb": "no", "nn": "no"}
CJK_LANGUAGES = frozenset({"zh", "ja", "ko"})
# Shorter texts keep the document's language: langid guesses wildly on a few words.
_MIN_TEXT_FOR_DETECTION = 40


def yake_code(language: str) -> str:
    """The code YAKE knows `language` by, or "" when YAKE has no stopwords for it."""
    code = (language or "").lower()[:2]
    code = _YAKE_CODES.get(code, code)
    return code if code and (_STOPWORD_DIR / f"stopwords_{code}.txt").exists() else ""


@functools.cache
def _read_list(code: str) -> frozenset[str]:
    path = _STOPWORD_DIR / f"stopwords_{code or 'noLang'}.txt"
    try:
        words = path.read_text(encoding="utf-8").lower().split()
    except (OSError, UnicodeDecodeError):
        logger.warning("cannot read the stopword list %s", path)
        return frozenset()
    return frozenset(words)


@functools.cache
def stopwords(language: str) -> frozenset[str]:
    """Lower-case stopwords for `language`, plus English ones."""
    return _read_list(yake_code(language)) | _read_list("en")


def detect_language(text: str, default: str, allowed: Collection[str] = ()) -> str:
    """ISO 639-1 code of `text`; `default` when the text is too short to tell.

    With `allowed` (the document's languages from triage), the best-ranked of
    those wins, so a French segment full of English jargon stays French.
    """
    sample = text[:2000]
    ratio = cjk_ratio(sample)
    if ratio > 0.3:
        # Script decides between the three before any statistics.
        if any("\uac00" <= ch <= "\ud7af" for ch in sample):
            return "ko"
        if any("\u3040" <= ch <= "\u30ff" for ch in sample):
            return "ja"
        return "zh"
    if len(sample) < _MIN_TEXT_FOR_DETECTION:
        return default
    if allowed:
        wanted = set(allowed)
        for code, _ in py3langid.rank(sample):
            if code in wanted:
                return str(code)
        return default
    code, _ = py3langid.classify(sample)
    return str(code) or default
