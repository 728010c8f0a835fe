"""What is never a concept: numbers, single characters, stopwords, URLs, code, file names.

Slides are full of such tokens (page numbers, dates, ``user_id = 42``, links);
every extraction method passes its candidates through :func:`is_junk`.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from osmose.services.extractor.cleaning import is_boilerplate_line
from osmose.services.extractor.lexicon import word_set

__all__ = ["MAX_CHARS", "MAX_WORDS", "NAME_STARTERS", "is_junk"]

MAX_WORDS = 5
MAX_CHARS = 60

# Coordinating conjunctions join two concepts; a phrase spanning one is not a concept.
_CONJUNCTIONS = word_set("and or nor but et ou mais und oder aber y o pero e ou mas и или но")
_NUMBERISH = re.compile(r"^[\W\d_]*\d[\W\d_]*$|^[ivxlcdm]+$", re.IGNORECASE)
_URL = re.compile(r"://|^www\.|\.(com|org|net|io|fr|de)(/|$)|@\w", re.IGNORECASE)
_FILE = re.compile(
    r"\w\.(pdf|docx?|pptx?|xlsx?|csv|txt|png|jpe?g|gif|svg|zip|exe|py|sh|md|ya?ml|json|xml|html?|log|bat|ps1|dll)$",
    re.IGNORECASE,
)
_CODE = re.compile(
    r"[(){}\[\]<>=;$\\|`~^]|::|->|=>|__|\w_\w|^[a-z]{2,}[A-Z]\w*$|\w\.\w+\.\w|^[-+*/.]"
)
# What every deck says about itself, and programming literals: not concepts of the deck's subject.
_SLIDE_WORDS = word_set(
    (
        "overview, introduction, agenda, summary, conclusion, conclusions, questions, question, thank you, "
        "thanks, contents, outline, background, objectives, objective, goals, next steps, appendix, "
        "references, example, examples, note, notes, slide, slides, table of contents, q&a, key takeaways, "
        "takeaways, sommaire, plan, ordre du jour, merci, exemple, exemples, annexe, objectifs, einleitung, "
        "zusammenfassung, fragen, danke, beispiel, beispiele, anhang, inhalt, ziele, resumen, introducción, "
        "conclusión, preguntas, gracias, índice, ejemplo, ejemplos, anexo, objetivos, resumo, introdução, "
        "conclusão, perguntas, obrigado, obrigada, exemplo, exemplos, sumário, "
        "exercise, exercises, prerequisites, exercice, exercices, prérequis, généralités, übung, übungen, "
        "voraussetzungen, bsp, z.b, e.g, ejercicio, ejercicios, requisitos, "
        "true, false, null, none, nil, undefined, todo, tbd, n/a, etc"
    ),
    sep=",",
)
# Real names that the rules below would reject (punctuation, single letters).
_ALWAYS_NAMES = frozenset({".net", "asp.net", "vb.net", "c++", "c#", "f#", "j#"})
# Stopwords that also start product and programme names ("Zero Trust", "New Relic", "One Drive"):
# allowed at the start of a multi-word name written in capitals.
NAME_STARTERS = word_set("zero one two three first new open next big top high single multi free real best general key")
_HEXISH = re.compile(r"^(?=.*\d)(?=.*[a-z])[0-9a-f]{8,}$", re.IGNORECASE)


def _is_number(token: str) -> bool:
    return bool(_NUMBERISH.match(token))


def is_junk(phrase: str, stopwords: Collection[str], *, max_words: int = MAX_WORDS) -> bool:
    """True when `phrase` cannot be a concept whatever the text around it."""
    words = phrase.split()
    lowered_phrase = phrase.lower()
    if lowered_phrase in _ALWAYS_NAMES:
        return False
    if not words or len(words) > max_words or len(phrase) > MAX_CHARS * max_words // MAX_WORDS:
        return True
    if lowered_phrase.strip(" .:!?") in _SLIDE_WORDS or is_boilerplate_line(phrase):
        return True
    if sum(ch.isalpha() for ch in phrase) < 2 and not any(w.lower() in _ALWAYS_NAMES for w in words):
        return True
    lowered = [w.lower() for w in words]
    if all(w in stopwords or _is_number(w) for w in lowered):
        return True
    # "2023 revenue", "of security": a concept starts with a word, not a number or a stopword.
    starts_name = len(words) > 1 and lowered[0] in NAME_STARTERS and all(w[:1].isupper() for w in words)
    if _is_number(words[0]) or (lowered[0] in stopwords and not starts_name) or lowered[-1] in stopwords:
        return True
    if any(w in _CONJUNCTIONS for w in lowered[1:-1]):
        return True
    if any(w.endswith((",", ";")) for w in words[:-1]):
        return True  # "HTML, CSS, Bootstrap": a list of names, not one
    for word in words:
        if word.lower() in _ALWAYS_NAMES:
            continue
        if _URL.search(word) or _FILE.search(word) or _HEXISH.match(word):
            return True
        if _CODE.search(word) and not _is_version_like(word):
            return True
    return False


def _is_version_like(word: str) -> bool:
    # "3.11", "v2.0.1", "1.3" are versions, not dotted code paths.
    return bool(re.fullmatch(r"v?\d+(\.\d+)+", word, re.IGNORECASE))
