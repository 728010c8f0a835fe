"""Writing systems: the one place that spells out Unicode script ranges.

Each script is named once as a regex character-class body (letters and the
marks written with them; punctuation inside the blocks is left out), and the
sets the code works with are unions of them:

- :data:`UNSPACED`: scripts written without spaces between words (Han, kana,
  Hangul, Thai, Lao, Myanmar, Khmer). Keyword analysis cuts them into
  characters and bigrams, word counts count their characters.
- :data:`CJK`: Chinese, Japanese and Korean, where "word boundary" has to mean
  "boundary against a letter or digit of a spaced script"; otherwise ``SQL``
  would never be found in ``SQL注入``.

Changing :data:`UNSPACED` changes the sparse vectors' tokens: re-index after.
"""

from __future__ import annotations

import re

__all__ = [
    "CJK",
    "CJK_RADICALS",
    "HALFWIDTH_KATAKANA",
    "HAN",
    "HANGUL",
    "HANGUL_SYLLABLES",
    "HIRAGANA",
    "IDEOGRAPHIC_MARKS",
    "KANA",
    "KATAKANA",
    "KATAKANA_JOINERS",
    "KHMER",
    "LAO",
    "MYANMAR",
    "THAI",
    "UNSPACED",
    "cjk_ratio",
    "is_cjk_char",
    "space_cjk",
]

CJK_RADICALS = "\u2e80-\u2fdf"  # CJK and Kangxi radicals
IDEOGRAPHIC_MARKS = "\u3005-\u3007\u3021-\u3029\u3038-\u303b"  # 々 〆 〇, Hangzhou numerals
HIRAGANA = "\u3041-\u3096\u3099-\u309f"
KATAKANA = "\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff"  # with phonetic extensions
# ゠ and the middle dot ・ join the words of a foreign compound ("データ・ベース").
KATAKANA_JOINERS = "\u30a0\u30fb"
# NFKC folds these to full-width katakana; raw text may still hold them.
HALFWIDTH_KATAKANA = "\uff66-\uff9f"
# Unified ideographs (+ extension A, compatibility) and the supplementary planes.
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f\U00030000-\U000323af"
HANGUL_SYLLABLES = "\uac00-\ud7af"
HANGUL = f"\u1100-\u11ff\u3131-\u318e\ua960-\ua97f{HANGUL_SYLLABLES}\ud7b0-\ud7ff"  # with jamo
THAI = "\u0e01-\u0e3a\u0e40-\u0e4e\u0e50-\u0e59"
LAO = "\u0e81-\u0edf"
MYANMAR = "\u1000-\u1049\u1050-\u109f"
KHMER = "\u1780-\u17d3\u17d7\u17dc\u17dd\u17e0-\u17e9"

KANA = f"{HIRAGANA}{KATAKANA}{KATAKANA_JOINERS}{HALFWIDTH_KATAKANA}"
CJK = f"{KANA}{HAN}{IDEOGRAPHIC_MARKS}{HANGUL}"
UNSPACED = f"{CJK_RADICALS}{IDEOGRAPHIC_MARKS}{HIRAGANA}{KATAKANA}{HAN}{HANGUL}{THAI}{LAO}{MYANMAR}{KHMER}"

_CJK_RE = re.compile(f"[{CJK}]")
_SCRIPT_EDGE = re.compile(f"(?<=[{CJK}])(?=[^\\s{CJK}])|(?<=[^\\s{CJK}])(?=[{CJK}])")


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
