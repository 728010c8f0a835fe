"""Language identification with py3langid (97 languages, offline, deterministic).

Slides are classified one by one and weighted by their amount of text, so a
Spanish deck with English code samples is "es" with "en" as second language.
Very short texts are not classified: single letters or a slide number say nothing.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

__all__ = ["LanguageProfile", "detect_languages"]

_MIN_CHARS = 24          # shorter texts are skipped
_MIN_SHARE = 0.10        # a language must carry this share of the text to be listed
_MIN_CONFIDENCE = 0.60   # normalised probability below which a slide's vote is dropped

_identifier = None
_lock = threading.Lock()


def _get_identifier():  # noqa: ANN202 - third-party type
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
    text = text.strip()
    if len(text) < _MIN_CHARS:
        return None
    lang, prob = _get_identifier().classify(text)
    return lang, float(prob)


def detect_languages(texts: Iterable[str]) -> LanguageProfile:
    """Dominant language and every language with a meaningful share of the text."""
    weights: Counter[str] = Counter()
    for text in texts:
        result = classify(text)
        if result is None or result[1] < _MIN_CONFIDENCE:
            continue
        weights[result[0]] += len(text)
    total = sum(weights.values())
    return LanguageProfile({lang: w / total for lang, w in weights.items()} if total else {})
