"""Capitalised terms: "SQL Server", "Azure Data Studio", "Product Owner", "GitHub", "Node.js".

In running text a run of capitalised words that does not start a sentence is
almost always a name. Sentence-initial words, title-cased lines and (in German,
where every noun is capitalised) single capitalised words are not trusted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable

from osmose.services.extractor.junk import NAME_STARTERS
from osmose.services.extractor.lexicon import word_set
from osmose.text.scripts import space_cjk

__all__ = ["MAX_TERM_WORDS", "TermCounts", "capitalised_terms", "is_product_like"]

MAX_TERM_WORDS = 5
# Lower-case words allowed inside a name: "Bank of America", "Ministère de la Santé".
_CONNECTORS = word_set("of for de la du des del da do von van der für")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?;:。！？])\s+|\s+[-–—•·]\s+|^[-–—•·*]\s*")
# Punctuation is kept as tokens of its own: it ends a run ("SOC 2, TLS").
_TOKEN = re.compile(r"[^\s,;:!?()\"“”«»\[\]{}<>|]+|[,;:!?()\"“”«»\[\]{}<>|]")
_CAMEL = re.compile(
    r"^(?:[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+|[a-z][A-Z][A-Za-z0-9]+|[A-Z]{2,}[a-z]{2,}\d*|[A-Z]{2,}[a-z]\d+"
    r"|[a-z]+[A-Z]{2,})$"
)
_SPECIAL = re.compile(r"^(?:\.[A-Z]{2,}|[A-Za-z]\w*\.(?:js|NET|io)|[A-Z][A-Za-z]*(?:\+\+|#))$")
_NUMBER = re.compile(r"^v?\d+(?:\.\d+)*[a-z]?$", re.IGNORECASE)
# A line where this share of the words is capitalised is title case: runs there prove nothing.
_TITLE_CASE_SHARE = 0.75
_CALENDAR = word_set(
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday"
)

TermCounts = Counter[str]


def is_product_like(token: str) -> bool:
    """CamelCase and punctuated product names: GitHub, iPhone, OAuth, Node.js, .NET, C#."""
    return bool(_CAMEL.match(token) or _SPECIAL.match(token))


def _capitalised(token: str) -> bool:
    return token[:1].isupper() or token.startswith(".") and token[1:2].isupper()


def _title_cased(tokens: list[str], stopwords: Collection[str], *, min_content: int = 3) -> bool:
    # Acronyms are capitalised anywhere; they say nothing about the line's casing.
    content = [t for t in tokens if t[:1].isalpha() and not t.isupper() and t.lower() not in stopwords]
    if len(content) < min_content:
        return False
    return sum(_capitalised(t) for t in content) / len(content) >= _TITLE_CASE_SHARE


def _runs(tokens: list[str], connectors: Collection[str] = _CONNECTORS) -> Iterable[tuple[int, list[str]]]:
    """Maximal runs of capitalised tokens (with connectors and trailing numbers): (start, run)."""
    i = 0
    while i < len(tokens):
        if not _capitalised(tokens[i]):
            i += 1
            continue
        start, run = i, [tokens[i]]
        i += 1
        while i < len(tokens):
            tok = tokens[i]
            linking = tok in connectors and i + 1 < len(tokens) and _capitalised(tokens[i + 1])
            if not (_capitalised(tok) or _NUMBER.match(tok) or linking):
                break
            run.append(tok)
            i += 1
        yield start, run


def capitalised_terms(
    lines: Iterable[str],
    *,
    language: str,
    stopwords: Collection[str],
    lowercase_words: Collection[str] = (),
) -> TermCounts:
    """Names found in `lines` with their counts. Single capitalised words are counted too
    (the caller decides how many occurrences make them trustworthy); German ones are not.

    `lowercase_words` are words seen in lower case elsewhere in the document: one of
    them opening a sentence is capitalised by position ("Measuring Success")."""
    found: TermCounts = Counter()
    single_words = language != "de"
    for line in lines:
        for sentence in _SENTENCE_SPLIT.split(space_cjk(line)):
            tokens = [t if _SPECIAL.match(t) else t.rstrip(".") for t in _TOKEN.findall(sentence)]
            tokens = [t for t in tokens if t]
            for tok in tokens:
                if is_product_like(tok):
                    found[tok] += 1
            # In a title-cased line only a short run inside the line is likely a name
            # ("... for the Product Owner"). German capitalises every noun: never title case.
            title_case = language != "de" and _title_cased(tokens, stopwords)
            if tokens[-1:] == ["?"] and language != "de" and _title_cased(tokens, stopwords, min_content=2):
                continue  # "Do Programmers Refactor Often?": a question in title case names nothing
            for start, run in _runs(tokens):
                # A stopword or any single word opening a sentence is capitalised by position.
                while run and (run[0].lower() in stopwords or _NUMBER.match(run[0])):
                    if len(run) > 1 and run[0].lower() in NAME_STARTERS:
                        break  # "Zero Trust", "New Relic": the stopword is part of the name
                    run, start = run[1:], start + 1
                if start == 0 and run and run[0].lower() in lowercase_words:
                    continue
                while run and (run[-1] in _CONNECTORS or run[-1].lower() in stopwords):
                    run = run[:-1]
                if not run or len(run) > MAX_TERM_WORDS:
                    continue
                if title_case and (start == 0 or not 2 <= len(run) <= 3):
                    continue
                if run[0].isupper() and all(_NUMBER.match(t) and "." in t for t in run[1:]):
                    continue  # "TLS 1.3" is TLS in a version; "ISO 27001" and "SOC 2" are names
                if len(run) == 1:
                    word = run[0]
                    if start == 0 or not single_words or word.isupper() or is_product_like(word):
                        continue  # acronyms and product names are counted elsewhere
                    if word.lower() in _CALENDAR:
                        continue
                found[" ".join(run)] += 1
    return found
