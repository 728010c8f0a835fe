"""Stopwords per language: words that never start or end a concept name.

The lists are YAKE's (35 languages). A language YAKE lacks (Hebrew, Korean,
...) gets YAKE's language-neutral list, which is what YAKE itself falls back to.
English stopwords are always added: technical decks in any language quote
English phrases, and "the" is never a concept.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import yake

__all__ = ["stopwords", "yake_code"]

logger = logging.getLogger(__name__)

_STOPWORD_DIR = Path(yake.__file__).parent / "core" / "StopwordsList"
# ISO 639-1 codes whose YAKE file has another name.
_YAKE_CODES = {"cs": "cz", "nb": "no", "nn": "no"}


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
