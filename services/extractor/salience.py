"""How central a concept is to its document: the salience the graph stores and ranks by.

Computed once per document from where and how often a name occurs, after the
detectors have proposed the candidates:

- **own mentions**: occurrences inside a longer concept of the document do not
  count ("Boolean" inside "safe Boolean register" is that register's mention);
- **spread**: the number of slides with an own mention;
- **titles**: slides whose title names it, and the document title;
- **length**: the longest meaningful noun phrase wins over its fragments, so a
  multi-word name gets a bonus, and a single word never outranks a multi-word
  subject that contains it (its own mentions are fewer and it gets no bonus);
- **generic vocabulary**: single words that are common in the language
  (Zipf frequency from the maintained ``wordfreq`` lists, per language; Apache-2.0
  code, CC BY-SA data) weigh less, unless the text names them as a name (an acronym,
  a product-like spelling). "function", "file", "Produkt" are words of every deck.

The formula is a product of those factors on a log scale of own mentions; its
absolute value means nothing, only the order within a document.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from osmose.services.extractor.form_matcher import mention_pattern
from osmose.text.names import surface_key
from osmose.text.plurals import singular

__all__ = [
    "GENERIC_ZIPF",
    "Occurring",
    "generic_level",
    "own_mentions",
    "salience",
    "zipf",
]

logger = logging.getLogger(__name__)

# A word at least this frequent (Zipf scale: 4 = once per 10^4 words... here 4.3 ≈ 20 per million)
# is common vocabulary: "function" 4.8, "file" 4.8, "Anwendung" 4.6; "refactoring" 2.3, "Kobalt" 2.6.
GENERIC_ZIPF = 4.3
# Between this and GENERIC_ZIPF a word is half generic ("programmer" 3.6 stays a concept, with less weight).
COMMON_ZIPF = 3.8
GENERIC_FACTOR = 0.3
COMMON_FACTOR = 0.7
# Every word of a multi-word phrase generic ("Next Steps", "input type"): not a name.
GENERIC_PHRASE_FACTOR = 0.5
TITLE_FACTOR = 0.6          # per slide whose title names the concept, up to TITLE_SLIDES_MAX
TITLE_SLIDES_MAX = 3
DOCUMENT_TITLE_FACTOR = 0.8
WORD_BONUS = 0.3            # per extra word, up to two
NAME_METHOD_FACTOR = 1.25   # declared acronym/expansion or a capitalised name
# A generic word is put at this share of the least salient multi-word concept containing it: two
# spellings of it merged by the miner (saliences added) still rank below that concept.
MERGED_SPELLINGS_MARGIN = 0.45


# wordfreq segments these with optional tokenizers (MeCab, jieba) that Osmose does not install.
_NEEDS_TOKENIZER = frozenset({"ja", "ko", "zh"})


@dataclass(frozen=True)
class Occurring:
    """One candidate concept with its occurrences (slide number, count) in the document."""

    key: str
    name: str
    per_slide: tuple[tuple[int, int], ...]


@functools.cache
def _wordfreq() -> object | None:
    try:
        import wordfreq
    except ImportError:  # pragma: no cover - a dependency of the package
        logger.warning("wordfreq is not installed: generic vocabulary is not recognised")
        return None
    return wordfreq


@functools.lru_cache(maxsize=65536)
def zipf(word: str, language: str) -> float:
    """Zipf frequency of `word` in `language` (English when wordfreq lacks the language), 0 when unknown."""
    wf = _wordfreq()
    if wf is None or not word:
        return 0.0
    lang = (language or "en")[:2].lower()
    if lang not in _languages() or lang in _NEEDS_TOKENIZER:
        lang = "en"
    if any(ord(ch) > 0x2E80 for ch in word):
        return 0.0  # CJK: segmented by other means (osmose.services.extractor.cjk)
    return float(wf.zipf_frequency(word, lang))  # type: ignore[attr-defined]


@functools.cache
def _languages() -> frozenset[str]:
    wf = _wordfreq()
    return frozenset(wf.available_languages()) if wf is not None else frozenset()  # type: ignore[attr-defined]


def _is_name_like(word: str) -> bool:
    # "SQL", "iOS", "Node.js", "C#": the text spells a name, whatever its frequency as a word.
    letters = [ch for ch in word if ch.isalpha()]
    if len(letters) >= 2 and all(ch.isupper() for ch in letters):
        return True
    return any(ch.isupper() for ch in word[1:]) or any(not ch.isalnum() for ch in word)


def generic_level(name: str, language: str) -> float:
    """The factor generic vocabulary gets: 1 for a specific term, lower for common words."""
    words = name.split()
    if len(words) == 2 and words[1].isdigit() and not _is_name_like(words[0]):
        words = words[:1]  # "Partie 2", "Szenario 1": an enumerated item, as generic as its word
    if len(words) == 1:
        word = words[0]
        if language[:2] == "en" and word.islower() and _is_adverb(word):
            return GENERIC_FACTOR  # an adverb ("manually") is never a subject
        if _is_name_like(word):
            return 1.0
        lowered = word.lower()
        # A plural is rarer than its singular in any corpus ("requêtes" 3.7, "requête" 4.1): both count.
        forms = {lowered, singular(lowered, language[:2] or "en")}
        freq = max(max(zipf(f, language) for f in forms),
                   max(zipf(f, "en") for f in forms) if language[:2] != "en" else 0.0)
        if freq >= GENERIC_ZIPF:
            return GENERIC_FACTOR
        return COMMON_FACTOR if freq >= COMMON_ZIPF else 1.0
    if language[:2] == "en" and _is_adverb(words[0]):
        return GENERIC_FACTOR  # "Randomly Selected Commits", "Usually Floss": a clause, not a name
    content = [w for w in words if len(w) > 2]
    if content and all(zipf(w.lower(), language) >= GENERIC_ZIPF and not _is_name_like(w) for w in content):
        return GENERIC_PHRASE_FACTOR
    return 1.0


def _is_adverb(word: str) -> bool:
    # "-ly" on a word of the language ("randomly" <- "random", "simply" <- "simple"); "Italy", "Family" are not.
    lowered = word.lower()
    if not lowered.endswith("ly") or len(lowered) <= 5 or not lowered.isalpha():
        return False
    stem = lowered[:-2]
    bases = [stem, stem + "le"] + ([stem[:-1] + "y"] if stem.endswith("i") else [])  # simply, happily
    return max(zipf(b, "en") for b in bases) >= COMMON_ZIPF


def own_mentions(concepts: Sequence[Occurring]) -> dict[str, dict[int, int]]:
    """Per concept, per slide: its occurrences that are not inside a longer concept of the list."""
    words = {c.key: frozenset(surface_key(c.name).split()) for c in concepts}
    counts = {c.key: dict(c.per_slide) for c in concepts}
    out: dict[str, dict[int, int]] = {}
    for c in concepts:
        own = dict(counts[c.key])
        pattern = mention_pattern(c.name)
        if pattern is not None:
            for longer in concepts:
                if (longer.key == c.key or len(words[longer.key]) <= len(words[c.key])
                        or not words[c.key] <= words[longer.key]):
                    continue
                inside = pattern.count(longer.name)
                if not inside:
                    continue
                for slide, n in counts[longer.key].items():
                    if slide in own:
                        own[slide] -= n * inside
        out[c.key] = {s: n for s, n in own.items() if n > 0}
    return out


def salience(*, name: str, language: str, own: dict[int, int], title_slides: int, in_document_title: bool,
             methods: Collection[str]) -> float:
    """The concept's salience in its document (higher is more central); 0 without an own mention."""
    total = sum(own.values())
    if total <= 0:
        return 0.0
    value = math.log1p(total) + math.log1p(len(own))
    value *= 1.0 + TITLE_FACTOR * min(title_slides, TITLE_SLIDES_MAX)
    if in_document_title:
        value *= 1.0 + DOCUMENT_TITLE_FACTOR
    value *= 1.0 + WORD_BONUS * min(len(name.split()) - 1, 2)
    if set(methods) & {"acronym", "capitalised"}:
        value *= NAME_METHOD_FACTOR
    return value * generic_level(name, language)


def below_containing_subjects(values: dict[str, float], names: dict[str, str], language: str) -> dict[str, float]:
    """Saliences where a generic word ranks below every multi-word concept containing it.

    "Boolean" may be said more often than "safe Boolean register", but when the word is
    common vocabulary it is the subject that the reader looks for: the word is put below the
    least salient of the multi-word concepts that contain it (MERGED_SPELLINGS_MARGIN of it).
    """
    out = dict(values)
    # Words and their singulars: "tool" is contained in "Refactoring Tools".
    phrase_words = {key: frozenset(w for word in surface_key(name).split() for w in (word, singular(word, language)))
                    for key, name in names.items()}
    for key, name in names.items():
        words = name.split()
        if len(words) != 1 or generic_level(name, language) >= 1.0:
            continue
        word = singular(surface_key(name), language)
        containing = [values[k] for k, ws in phrase_words.items()
                      if k != key and len(names[k].split()) > 1 and word in ws and values.get(k, 0.0) > 0]
        if containing:
            # Well below, not just below: the miner adds up the saliences of spellings it merges
            # ("team" + "teams"), and the sum must still rank below the subject.
            out[key] = min(out[key], min(containing) * MERGED_SPELLINGS_MARGIN)
    return out
