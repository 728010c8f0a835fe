"""Keyphrases with YAKE: statistical, unsupervised, one extractor per language and thread.

YAKE reads sentences, and slides are mostly bullets without full stops, so every
line is closed with a full stop first; otherwise phrases would run from one
bullet into the next ("Server and Azure").
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import yake

from osmose.services.extractor.form_matcher import mention_pattern
from osmose.services.extractor.junk import is_junk
from osmose.services.extractor.lexicon import word_set
from osmose.text.stopwords import stopwords as stopwords_for
from osmose.text.stopwords import yake_code

__all__ = ["MAX_NGRAM", "MAX_TEXT_CHARS", "Keyphrase", "drop_nested", "ends_before_article", "keyphrases"]

logger = logging.getLogger(__name__)

MAX_NGRAM = 3
# YAKE's cost grows with the text; a segment longer than this is cut (speaker notes can be huge).
MAX_TEXT_CHARS = 20_000
# YAKE's own near-duplicate filter ("Coding Practice" vs "Coding Practices").
_DEDUP_LIMIT = 0.9
_SENTENCE_END = re.compile(r"[.!?;:。！？؟]$")
_local = threading.local()
# Segment texts whose YAKE result is kept in memory.
_CACHED_TEXTS = 2048
# Longer words in capitals are emphasis; the acronym detector handles real acronyms.
_MAX_ACRONYM_LETTERS = 6
_PAST_PARTICIPLE = re.compile(r"^[a-z]{3,}ed$")
_NOT_PARTICIPLES = word_set("embedded speed need seed feed bed red shed breed greed")
_LINKS = word_set("of de du des del da do di der von van")


@dataclass(frozen=True)
class Keyphrase:
    text: str
    rank: int  # 0 = best in its text


def _extractor(code: str, top: int) -> yake.KeywordExtractor:
    # YAKE keeps per-instance caches that are not meant to be shared across threads.
    cache: dict[tuple[str, int], yake.KeywordExtractor] = getattr(_local, "extractors", None) or {}
    _local.extractors = cache
    if (code, top) not in cache:
        # Our stopwords, not YAKE's lookup: for a language it lacks, YAKE would take the
        # list named by the first two letters of "noLang", which is Norwegian.
        cache[code, top] = yake.KeywordExtractor(
            lan=code or "en", n=MAX_NGRAM, top=top, dedup_lim=_DEDUP_LIMIT, stopwords=set(stopwords_for(code))
        )
    return cache[code, top]


@functools.lru_cache(maxsize=_CACHED_TEXTS)
def _yake(code: str, top: int, text: str) -> tuple[tuple[str, float], ...]:
    # Cached: a replay, or a new version of a deck, does not pay again for unchanged segments.
    return tuple((str(k), float(s)) for k, s in _extractor(code, top).extract_keywords(text))


def _as_sentences(lines: Sequence[str]) -> str:
    text = "\n".join(line if _SENTENCE_END.search(line) else line + "." for line in lines)
    return text[:MAX_TEXT_CHARS]


def keyphrases(
    lines: Sequence[str], language: str, *, top: int, stopwords: Collection[str]
) -> list[Keyphrase]:
    """The best `top` keyphrases of `lines` that are not junk, best first."""
    if not lines:
        return []
    # Ask for more than needed: junk and nested phrases are dropped afterwards.
    text = _as_sentences(lines)
    found = _yake(yake_code(language), top + top // 2, text)
    kept: list[str] = []
    seen: set[str] = set()
    for phrase, _score in found:
        phrase = phrase.strip(" .,;:!?\"'()[]")
        key = phrase.casefold()
        if key in seen or is_junk(phrase, stopwords) or _spans_clause(phrase, stopwords):
            continue
        if _only_glued(phrase, text):
            continue  # "NET" of ".NET", "UITest" of "Xamarin.UITest": a piece of a dotted name
        if language[:2] == "en" and _PAST_PARTICIPLE.match(phrase) and key not in _NOT_PARTICIPLES:
            continue  # "acquired", "cached": a lone verb form
        if language[:2] == "de" and " " in phrase and not _ends_in_noun_de(phrase):
            continue  # German nouns are capitalised: "Bestandteil von wiederaufladbaren" stops mid-phrase
        if phrase.isupper() and (" " in phrase or sum(ch.isalpha() for ch in phrase) > _MAX_ACRONYM_LETTERS):
            continue  # "ESTRATÉGIAS", "PROPOSED ACTIONS": shouting, not a term
        seen.add(key)
        kept.append(phrase)
    return [Keyphrase(text=p, rank=i) for i, p in enumerate(kept[:top])]


def _only_glued(phrase: str, text: str) -> bool:
    pattern = mention_pattern(phrase)
    starts = [m.start() for m in pattern.finditer(text)] if pattern is not None else []
    return bool(starts) and all(i > 0 and text[i - 1] in "./#@" for i in starts)


def _ends_in_noun_de(phrase: str) -> bool:
    last = phrase.split()[-1]
    return last[:1].isupper() or not last[:1].isalpha()


def _spans_clause(phrase: str, stopwords: Collection[str]) -> bool:
    # YAKE lets stopwords inside a phrase ("rest with TLS", "Track each KPI"); only
    # genitive links make a noun phrase ("proof of concept", "gestion des risques").
    inner = [w.lower() for w in phrase.split()[1:-1]]
    return any(w in stopwords and w not in _LINKS for w in inner)


# Articles and determiners by language: a phrase directly followed by one ends in a verb
# or a preposition ("CISO measures" the ..., "validate" all ...), not in a noun.
_DETERMINERS = {
    "en": word_set("the a an this these those our their its all every each any some your his her my"),
    "fr": word_set("le la les un une des ce cet cette ces nos vos leurs chaque tous toutes"),
    "de": word_set("der die das den dem des ein eine einen einem einer jede jeder jedes alle"),
    "es": word_set("el la los las un una unos unas cada todos todas este esta estos estas"),
    "pt": word_set("o a os as um uma uns umas cada todos todas este esta estes estas"),
}
_NEXT_WORD = re.compile(r"\s*(\w+)")


def ends_before_article(phrase: str, text: str, language: str) -> bool:
    """True when most occurrences of `phrase` in `text` are followed by an article."""
    determiners = _DETERMINERS.get(language[:2])
    pattern = mention_pattern(phrase)
    if not determiners or pattern is None:
        return False
    total = before_article = 0
    for match in pattern.finditer(text):
        total += 1
        following = _NEXT_WORD.match(text, match.end())
        if following and following.group(1).lower() in determiners:
            before_article += 1
    return total > 0 and before_article * 2 >= total


def drop_nested(phrases: Sequence[str], text: str) -> list[str]:
    """`phrases` without those that only ever occur inside a longer kept phrase.

    YAKE returns "Secure Coding Practices", "Coding Practices", "Secure Coding"
    and "Secure" for one bullet; only the first is a concept there. A shorter
    phrase stays when it also occurs on its own.
    """
    counts: dict[str, int] = {}
    for phrase in phrases:
        pattern = mention_pattern(phrase)
        counts[phrase] = pattern.count(text) if pattern else 0
    kept: list[str] = []
    for phrase in sorted(phrases, key=lambda p: (-len(p), phrases.index(p))):
        pattern = mention_pattern(phrase)
        if pattern is None:
            continue
        covered = sum(counts[k] * pattern.count(k) for k in kept)
        if counts[phrase] > covered:
            kept.append(phrase)
    order = {p: i for i, p in enumerate(phrases)}
    return sorted(kept, key=order.__getitem__)
