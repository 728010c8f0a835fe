"""Which language a text is written in: py3langid (97 languages, offline, deterministic).

Two questions, one model loaded once per process:

- :func:`detect_languages` - a document's languages (triage). Slides are
  classified one by one and weighted by their amount of text, so a Spanish
  deck with English code samples is "es" with "en" as second language. Very
  short texts are not classified: single letters or a slide number say nothing.
- :func:`detect_language` - one segment's language (extraction), chosen among
  the document's languages when they are known, so a French segment full of
  English jargon stays French. Chinese, Japanese and Korean are told apart by
  their scripts before any statistics.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from osmose.text.scripts import HANGUL_SYLLABLES, KANA, cjk_ratio

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

__all__ = ["CJK_LANGUAGES", "LanguageProfile", "classify", "detect_language", "detect_languages"]

CJK_LANGUAGES = frozenset({"zh", "ja", "ko"})
_MIN_CHARS = 24          # shorter texts are skipped by detect_languages
_MIN_SHARE = 0.10        # a language must carry this share of the text to be listed
_MIN_CONFIDENCE = 0.60   # normalised probability below which a slide's vote is dropped
# Shorter segments keep the document's language: langid guesses wildly on a few words.
_MIN_TEXT_FOR_DETECTION = 40
_SAMPLE_CHARS = 2000     # a segment's language is decided on its beginning
_CJK_SCRIPT_SHARE = 0.3  # above this share of CJK letters, the script decides
# Text classified as Latin on a slide is placeholder filler ("Lorem ipsum dolor sit amet..."),
# not the language the document is written in (an HTML course deck full of it came out "la").
_FILLER_LANGUAGES = frozenset({"la"})
_HANGUL = re.compile(f"[{HANGUL_SYLLABLES}]")
_KANA = re.compile(f"[{KANA}]")

_identifier: LanguageIdentifier | None = None
_lock = threading.Lock()


def _get_identifier() -> LanguageIdentifier:
    """The model, loaded on first use (about 0.1 s). Normalised probabilities make
    confidences comparable across texts; rankings are the same either way."""
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return _identifier


class LanguageProfile:
    __slots__ = ("dominant", "languages", "shares")

    def __init__(self, shares: dict[str, float]) -> None:
        ordered = sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))
        self.shares = dict(ordered)
        self.languages = [lang for lang, share in ordered if share >= _MIN_SHARE]
        self.dominant = self.languages[0] if self.languages else ""


def classify(text: str) -> tuple[str, float] | None:
    """(ISO 639-1 code, probability) of `text`; None when it is too short to tell."""
    text = text.strip()
    if len(text) < _MIN_CHARS:
        return None
    lang, prob = _get_identifier().classify(text)
    return str(lang), float(prob)


def detect_languages(texts: Iterable[str]) -> LanguageProfile:
    """Dominant language and every language with a meaningful share of the text."""
    weights: Counter[str] = Counter()
    for text in texts:
        result = classify(text)
        if result is None or result[1] < _MIN_CONFIDENCE or result[0] in _FILLER_LANGUAGES:
            continue
        weights[result[0]] += len(text)
    total = sum(weights.values())
    return LanguageProfile({lang: w / total for lang, w in weights.items()} if total else {})


def detect_language(text: str, default: str, allowed: Collection[str] = ()) -> str:
    """ISO 639-1 code of `text`; `default` when the text is too short to tell.

    With `allowed` (the document's languages from triage), the best-ranked of
    those wins, so a French segment full of English jargon stays French.
    """
    sample = text[:_SAMPLE_CHARS]
    if cjk_ratio(sample) > _CJK_SCRIPT_SHARE:
        if _HANGUL.search(sample):
            return "ko"
        if _KANA.search(sample):
            return "ja"
        return "zh"
    if len(sample) < _MIN_TEXT_FOR_DETECTION:
        return default
    identifier = _get_identifier()
    if allowed:
        wanted = set(allowed)
        for code, _ in identifier.rank(sample):
            if code in wanted:
                return str(code)
        return default
    code, _ = identifier.classify(sample)
    return str(code) or default
