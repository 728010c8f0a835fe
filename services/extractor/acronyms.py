"""Acronyms: "Key Performance Indicator (KPI)", "KPI (Key Performance Indicator)", "OWASP".

Pairs are found with the Schwartz-Hearst algorithm (Schwartz & Hearst, PSB 2003):
every character of the short form must occur, right to left, in the long form,
and the first one must start a word. It is language-independent, so
"Règlement général sur la protection des données (RGPD)" pairs too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass

__all__ = ["AcronymPair", "acronym_pairs", "best_long_form", "is_short_form", "standalone_acronyms"]

_PAREN = re.compile(r"\(([^()]{1,120})\)")
_WORD = re.compile(r"\S+")
# An acronym token: starts with a capital, 2-10 characters, capitals/digits/&/-//,
# at least two capitals, optionally a plural "s" ("KPIs").
_ACRONYM = re.compile(r"(?<![\w&/.-])([A-Z][A-Z0-9&/-]{0,8}[A-Z0-9])(s?)(?![\w&/-]|\.\w)")
_ROMAN = re.compile(r"^[IVXLCDM]+$")
# Acronyms are short ("OWASP", "DNSSEC"); a longer word in capitals is emphasis.
_MAX_LETTERS = 6
# A line in capitals with stopwords ("INTRODUCTION TO SECURITY") from this many words on is
# shouting, not a list of acronyms.
_SHOUTING_WORDS = 3


@dataclass(frozen=True)
class AcronymPair:
    short: str  # "KPI"
    long: str  # "Key Performance Indicator"


def is_short_form(text: str) -> bool:
    """Schwartz-Hearst's short-form test, plus: at least two capitals."""
    if not 2 <= len(text) <= 10 or len(text.split()) > 2:
        return False
    if not text[0].isalnum() or not any(ch.isalpha() for ch in text):
        return False
    return sum(ch.isupper() for ch in text) >= 2


def best_long_form(short: str, candidate: str) -> str | None:
    """The shortest tail of `candidate` that `short` abbreviates, or None."""
    s, i = len(short) - 1, len(candidate) - 1
    while s >= 0:
        ch = short[s].lower()
        if not ch.isalnum():
            s -= 1
            continue
        # The first character of the short form must start a word of the long form.
        while i >= 0 and (candidate[i].lower() != ch or (s == 0 and i > 0 and candidate[i - 1].isalnum())):
            i -= 1
        if i < 0:
            return None
        i -= 1
        s -= 1
    start = candidate.rfind(" ", 0, i + 1) + 1
    return candidate[start:].strip()


def _valid_pair(short: str, long: str) -> bool:
    words = long.split()
    letters = sum(ch.isalnum() for ch in short)
    return (
        len(words) >= 2
        and len(long) > len(short)
        and len(words) <= min(letters + 5, letters * 2)
        and short.lower() not in (w.lower() for w in words)
    )


def _singular(short: str) -> str:
    # "KPIs" -> "KPI": the alias names the thing, not its plural.
    return short[:-1] if len(short) > 2 and short.endswith("s") and short[:-1].isupper() else short


def acronym_pairs(lines: Iterable[str]) -> list[AcronymPair]:
    """Every (short form, long form) pair defined in `lines`, in order of appearance."""
    pairs: list[AcronymPair] = []
    for line in lines:
        for match in _PAREN.finditer(line):
            inside = match.group(1).strip()
            before = line[: match.start()].rstrip()
            pair = _pair_long_short(before, inside) or _pair_short_long(before, inside)
            if pair is not None:
                pairs.append(pair)
    return list(dict.fromkeys(pairs))


def _pair_long_short(before: str, inside: str) -> AcronymPair | None:
    # "Key Performance Indicator (KPI)" and "... (KPI, 2019)"
    short = re.split(r"[,;]", inside, maxsplit=1)[0].strip()
    if not is_short_form(short) or not before:
        return None
    window = min(len(short) + 5, len(short) * 2)
    # Only the words of the same clause can be the long form.
    clause = re.split(r"[.;:!?,]\s", before)[-1]
    candidate = " ".join(_WORD.findall(clause)[-window:])
    long = best_long_form(short, candidate)
    if long is None or not _valid_pair(short, long):
        return None
    return AcronymPair(short=_singular(short), long=long.strip(" -,"))


def _pair_short_long(before: str, inside: str) -> AcronymPair | None:
    # "KPI (Key Performance Indicator)"
    tokens = before.split()
    if not tokens:
        return None
    short = tokens[-1].strip(",:;")
    if not is_short_form(short) or len(inside.split()) < 2:
        return None
    long = best_long_form(short, inside)
    # The whole parenthesis must be the long form, not just its tail.
    if long is None or long != inside or not _valid_pair(short, long):
        return None
    return AcronymPair(short=_singular(short), long=long)


def standalone_acronyms(
    lines: Iterable[str], *, stopwords: Collection[str], lowercase_words: Collection[str]
) -> Counter[str]:
    """All-capital tokens that look like acronyms ("OWASP", "SQL", "PCI-DSS") with their counts.

    A capitalised stopword ("AND") or a word that also appears in lower case in
    the text ("SECURITY" next to "security") is emphasis, not an acronym.
    """
    found: Counter[str] = Counter()
    for line in lines:
        words = [w.strip(".,;:!?()\"'").lower() for w in line.split()]
        if (
            len(words) >= _SHOUTING_WORDS
            and not any(ch.islower() for ch in line)
            and any(w in stopwords for w in words)
        ):
            continue
        for match in _ACRONYM.finditer(line):
            token = match.group(1)
            if sum(ch.isupper() for ch in token) < 2 or _ROMAN.match(token):
                continue
            if sum(ch.isalpha() for ch in token) > _MAX_LETTERS:
                continue  # "IMPORTANT", "PROPOSTOS": a word in capitals
            lowered = token.lower()
            if lowered in stopwords or lowered in lowercase_words:
                continue
            found[token] += 1
    return found
