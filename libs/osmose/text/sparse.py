"""Sparse (lexical) vectors for keyword retrieval in any language.

The vector store fuses these with dense embeddings, so exact names, codes and
words the embedding model never learnt (all-MiniLM-L6-v2 is mostly English)
are still found. Analysis, in order:

1. Unicode NFKC (full-width forms, ligatures, compatibility characters folded)
   and casefold; Hebrew points, Arabic harakat and tatweel removed (optional in
   those scripts, so vocalised and plain spellings match).
2. Scripts written without spaces between words (Han, Hiragana, Katakana,
   Hangul, Thai, Lao, Myanmar, Khmer): each run yields its characters and its
   character bigrams, the usual dictionary-free approach (Lucene's CJK bigrams).
   Hangul is spaced but agglutinative, so bigrams match stems inside eojeols.
3. Other scripts: words are runs of letters, combining marks and digits
   (marks matter: Devanagari vowel signs are marks, and ``\\w`` alone splits
   words there). Words joined by ``- . ' ’ _ &`` ("e-mail", "l'entreprise",
   "3.14") yield the compound and its parts; "c++" and "c#" keep their suffix.
   Punctuation-only tokens never come out of this, so none has to be dropped.
4. A word with diacritics also yields its folded form ("stratégie" gives
   "strategie" too), and Arabic alef/yeh/teh-marbuta variants are unified
   likewise, so queries typed without accents still match; the exact form
   scores higher because it matches twice.

Each token maps to a 31-bit index through BLAKE2b (personalised, so the index
space is versioned): stable across processes and machines, unlike ``hash()``.
31 bits keep indices non-negative wherever they travel (signed 32-bit integers
in Java/Go clients). With V distinct tokens in an index, about V²/2³² pairs
collide: ~2 for 100k tokens, ~230 for 1M. A collision merges two rare terms'
postings (a query for one also matches the other); ranking impact is
negligible next to tokenisation noise. Changing the analysis or the hash
personalisation changes indices: re-index after such a change.

Document values are BM25's term-frequency part, ``tf·(k1+1) / (tf + k1·(1-b+b·dl/avgdl))``
with k1=1.2, b=0.75 and a *fixed* average length. Qdrant's ``Modifier.IDF``
supplies the IDF factor at query time; it knows nothing of document lengths,
so normalisation has to be baked in here. A fixed avgdl (the mean words per
slide over the shared test corpus of real decks, 996 slides) keeps a chunk's
vector a function of the chunk alone: no corpus statistics to track, nothing
to re-encode when the corpus grows. Query values are 1.0 per distinct token.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

from osmose.stores.vectors import SparseVector
from osmose.text.scripts import UNSPACED

__all__ = ["AVG_DOC_LEN", "B", "K1", "analyse", "sparse_encode", "sparse_query", "token_index", "tokenize"]

K1 = 1.2
B = 0.75
AVG_DOC_LEN = 48.0
# Longer "words" are hashes, base64 or URLs run together: noise for keyword search.
MAX_TOKEN_CHARS = 64
# Versions the index space (BLAKE2b personalisation, at most 16 bytes).
_HASH_PERSON = b"osmose-sparse-1"
_INDEX_MASK = 0x7FFF_FFFF

_CONNECTORS = "-.'\u2019_&"
# Optional in Hebrew and Arabic writing: points, harakat, Quranic marks, tatweel.
_OPTIONAL_MARKS = re.compile(
    "[\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
    "\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed\u0640]"
)
_CONNECTOR = re.compile(f"[{re.escape(_CONNECTORS)}]")
_LATIN_DIACRITICS = re.compile("[\u0300-\u036f]")
_ARABIC_FOLD = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه"})


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(tokens, grapheme clusters), built on first use: collecting the combining
    marks scans ~130k code points (about 0.1 s, once per process)."""
    marks = _ranges(c for c in range(0x300, 0x20000) if unicodedata.category(chr(c)).startswith("M"))
    marks += "\U000e0100-\U000e01ef"  # variation selectors supplement
    letters = f"[^\\W_{UNSPACED}]"
    # Letters/digits with marks after them, written as an unrolled loop: a plain
    # alternation (letter|mark)+ makes the regex engine twice as slow.
    piece = f"{letters}+(?:[{marks}]+{letters}*)*"
    tokens = re.compile(
        f"([{UNSPACED}]+)|({piece}(?:[{re.escape(_CONNECTORS)}]{piece})*(?:\\+\\+|#)?)"
    )
    # A Thai/Myanmar/... tone or vowel mark belongs to the letter before it.
    clusters = re.compile(f".[{marks}]*", re.DOTALL)
    return tokens, clusters


def _ranges(code_points: Iterable[int]) -> str:
    """A regex character-class body for ascending code points, as ranges."""
    out: list[str] = []
    start = prev = -2
    for c in code_points:
        if c != prev + 1:
            if start >= 0:
                out.append(_range(start, prev))
            start = c
        prev = c
    if start >= 0:
        out.append(_range(start, prev))
    return "".join(out)


def _range(lo: int, hi: int) -> str:
    return re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"


def _normalise(text: str) -> str:
    return _OPTIONAL_MARKS.sub("", unicodedata.normalize("NFKC", text).casefold())


def _fold(token: str) -> str:
    decomposed = unicodedata.normalize("NFD", token)
    return unicodedata.normalize("NFC", _LATIN_DIACRITICS.sub("", decomposed)).translate(_ARABIC_FOLD)


def analyse(text: str) -> tuple[list[str], int]:
    """Tokens of `text` (with repeats) and its length in positions for BM25
    (one per word, one per character of an unspaced run)."""
    token_pattern, cluster_pattern = _patterns()
    tokens: list[str] = []
    length = 0
    for run, word in token_pattern.findall(_normalise(text)):
        if word:
            length += 1
            tokens.extend(_word_forms(word))
            continue
        chars = cluster_pattern.findall(run)
        length += len(chars)
        tokens.extend(chars)
        tokens.extend(a + b for a, b in zip(chars, chars[1:], strict=False))
    return tokens, length


@functools.lru_cache(maxsize=1 << 16)
def _word_forms(word: str) -> tuple[str, ...]:
    """A word, its parts when it is a compound, and their folded forms.
    Cached: word frequencies are Zipfian, most lookups hit."""
    forms = [word]
    core = word.rstrip("+#")
    if _CONNECTOR.search(core):
        forms.extend(p for p in _CONNECTOR.split(core) if p)
    out: list[str] = []
    for form in forms:
        if len(form) > MAX_TOKEN_CHARS:
            continue
        out.append(form)
        if not form.isascii():
            folded = _fold(form)
            if folded and folded != form:
                out.append(folded)
    return tuple(out)


def tokenize(text: str) -> list[str]:
    """The tokens `text` contributes to its sparse vector, in order, with repeats."""
    return analyse(text)[0]


@functools.lru_cache(maxsize=1 << 16)
def token_index(token: str) -> int:
    """The sparse-vector index of a token: BLAKE2b-32 (personalised), top bit cleared."""
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=4, person=_HASH_PERSON).digest()
    return int.from_bytes(digest, "big") & _INDEX_MASK


def sparse_encode(text: str) -> SparseVector:
    """The document-side vector: BM25 term-frequency saturation per index."""
    tokens, length = analyse(text)
    if not tokens:
        return SparseVector(indices=[], values=[])
    # Counting per index, not per token, also merges the rare hash collisions.
    tf = Counter(token_index(t) for t in tokens)
    norm = K1 * (1.0 - B + B * length / AVG_DOC_LEN)
    indices = sorted(tf)
    return SparseVector(indices=indices, values=[tf[i] * (K1 + 1.0) / (tf[i] + norm) for i in indices])


def sparse_query(text: str) -> SparseVector:
    """The query-side vector: 1.0 per distinct index (IDF comes from Qdrant)."""
    indices = sorted({token_index(t) for t in tokenize(text)})
    return SparseVector(indices=indices, values=[1.0] * len(indices))
