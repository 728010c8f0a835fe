"""Concept names: the keys that say two names are the same concept.

A key is built in stages, each a coarser identity than the one before:

1. **written** - Unicode NFKC (full-width forms, ligatures folded) and
   whitespace runs as one space;
2. **case-folded** (:func:`surface_key`) - the name as written, whatever its
   case: what the extractor groups a document's spellings by;
3. **punctuation-normalised** (:func:`normalise`) - quotes unified, possessive
   ``'s`` dropped, hyphens/dashes/underscores as spaces, brackets, bullets and
   edge punctuation dropped (``.NET`` and ``C++`` kept whole);
4. **plural-folded** (:func:`canonical_key`) - the head word (English) or every
   word (French, Spanish, Portuguese) in the singular (:mod:`osmose.text.plurals`).

The canonical key is a concept's identity: one graph node per key and tenant,
and the concept's id is derived from it (:func:`osmose.ids.concept_id`). Any
change here changes ids and store rows: keep existing keys stable.
"""

from __future__ import annotations

import re
import unicodedata

from osmose.text.plurals import fold_plurals

__all__ = ["canonical_key", "key_stages", "normalise", "surface_key"]

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u00b4": "'", "`": "'", "\u02bc": "'"})
# Hyphens, dashes and underscores join words: "PCI-DSS" is "PCI DSS", "cross-site" is "cross site".
_JOINERS = re.compile(r"[\u002d\u2010-\u2015\u2212_]+")
_DROPPED = re.compile(r"[\"\u201c\u201d\u201e\u00ab\u00bb()\[\]{}<>|*\u2022\u00b7]+")
_POSSESSIVE = re.compile(r"(?<=\w)'s\b")
_TRAILING_PUNCT = " .,;:!?'/\\"
_LEADING_PUNCT = " ,;:!?'/\\"  # a leading dot stays: ".NET"


def _written(name: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", name).split())


def _punctuation(folded: str) -> str:
    text = _POSSESSIVE.sub("", folded.translate(_QUOTES))
    text = _DROPPED.sub(" ", _JOINERS.sub(" ", text))
    words = [w.rstrip(_TRAILING_PUNCT).lstrip(_LEADING_PUNCT) or w for w in text.split()]
    # Keep ".net" and "c++" whole; drop words that were only punctuation.
    return " ".join(w for w in words if any(ch.isalnum() for ch in w) or w in {"&", "+"})


def key_stages(name: str, language: str = "en") -> tuple[str, str, str, str]:
    """(written, case-folded, punctuation-normalised, plural-folded) forms of `name`."""
    written = _written(name)
    folded = written.casefold()
    punct = _punctuation(folded)
    # Plurals are decided on the written form (capitals tell "AWS" from "KPIs").
    written_words = _punctuation(written).split()
    singular_words = fold_plurals(written_words, language)
    plural = " ".join(w.casefold() for w in singular_words) if len(written_words) == len(punct.split()) else punct
    return written, folded, punct, plural


def surface_key(name: str) -> str:
    """`name` as written, ignoring width, case and spacing (stage 2): "ＳＱＬ  server" -> "sql server"."""
    return _written(name).casefold()


def normalise(name: str) -> str:
    """NFKC, case folding, punctuation and whitespace normalisation (no plural folding)."""
    return key_stages(name)[2]


def canonical_key(name: str, language: str = "en") -> str:
    """The identity of a concept called `name`: one graph node per key and tenant."""
    return key_stages(name, language)[3]
