"""Plural folding for canonical keys: "developers" -> "developer", "KPIs" -> "KPI".

English gets real rules with an exception list (analysis, process, class,
kubernetes, ...). French, Spanish and Portuguese fold only the regular "-s"
plurals whose singular is unambiguous; every other language is left alone:
a wrong fold merges two concepts, a missed fold only leaves a duplicate.
Acronyms in capitals ("AWS", "DNS", "HTTPS") are never folded.
"""

from __future__ import annotations

import re

__all__ = ["fold_plurals", "singular"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words ending in "s" that are not plurals, or whose singular the rules would get wrong.
_EN_INVARIANT = _words(
    """analysis basis process class access business status virus bus gas lens news series species physics
    mathematics analytics statistics ethics economics logistics kubernetes windows jenkins ios macos devops
    devsecops mlops finops gitops address success progress express less loss boss glass cross canvas atlas
    alias bias campus consensus corpus focus bonus census thesis hypothesis synthesis diagnosis axis crisis
    chassis always perhaps is was has does its this us yes plus minus thus bonus radius stimulus syllabus
    citrus apparatus prospectus nexus octopus circus genius tennis dennis iris aws dns https sms gps
    redis postgres keras jquery pandas numpy ethos pathos kudos chaos cosmos mythos asbestos
    graphics electronics robotics semantics genomics forensics metrics"""
)
_EN_IRREGULAR = {
    "cookies": "cookie", "movies": "movie", "zombies": "zombie", "rookies": "rookie", "caches": "cache",
    "niches": "niche", "avalanches": "avalanche", "people": "person", "children": "child", "men": "man",
    "women": "woman", "data": "data", "criteria": "criterion", "indices": "index", "matrices": "matrix",
    "vertices": "vertex", "analyses": "analysis", "bases": "base", "theses": "thesis", "crises": "crisis",
    "diagnoses": "diagnosis", "hypotheses": "hypothesis", "processes": "process", "statuses": "status",
    "viruses": "virus", "buses": "bus", "aliases": "alias", "biases": "bias", "leaves": "leaf",
    "lives": "life", "knives": "knife", "wolves": "wolf", "halves": "half", "shelves": "shelf",
    "policies": "policy",
}
_ACRONYM_PLURAL = re.compile(r"^[A-Z][A-Z0-9&]+s$")
_LETTERS = re.compile(r"^[^\W\d_]+$")


def _english(word: str) -> str:
    lower = word.lower()
    if lower in _EN_IRREGULAR:
        return _EN_IRREGULAR[lower]
    if lower in _EN_INVARIANT or len(lower) < 4 or not lower.endswith("s"):
        return word
    if lower.endswith(("ss", "us", "is", "'s")):
        return word
    if lower.endswith("ies") and len(lower) > 4:
        return word[:-3] + "y"
    if lower.endswith(("sses", "xes", "zzes", "ches", "shes")):
        return word[:-2]
    return word[:-1]


def _romance(word: str, language: str) -> str:
    lower = word.lower()
    if len(lower) < 5 or not lower.endswith(("s", "x")):
        return word
    if lower.endswith(("ss", "us", "is", "ès", "ês", "os" if language == "fr" else "\x00")):
        return word
    if language == "fr":
        if lower.endswith(("eaux", "eux")):
            return word[:-1]
        return word[:-1] if lower.endswith(("es", "rs", "ts", "ns", "ls", "ds", "és", "as")) else word
    if language == "es":
        if lower.endswith(("ores", "ales", "ades", "eles")):
            return word[:-2]  # desarrolladores, funcionales, ciudades
        # "-ces"/"-nes" plurals drop an accent or change a letter (luces, aplicaciones): leave them.
        return word[:-1] if lower.endswith(("as", "os", "es")) and not lower.endswith(("ces", "nes")) else word
    if language == "pt":
        if lower.endswith(("ores", "ares")):
            return word[:-2]  # desenvolvedores
        return word[:-1] if lower.endswith(("as", "os", "es")) and not lower.endswith(("ões", "ães")) else word
    return word


def singular(word: str, language: str = "en") -> str:
    """The singular of one word as written (case preserved); the word itself when unsure."""
    if _ACRONYM_PLURAL.match(word):
        return word[:-1]  # "KPIs" -> "KPI"
    if not _LETTERS.match(word) or word.isupper():
        return word  # "AWS", "C++", "3.11"
    language = (language or "en")[:2].lower()
    if language == "en":
        return _english(word)
    if language in {"fr", "es", "pt"}:
        return _romance(word, language)
    return word


def fold_plurals(words: list[str], language: str = "en") -> list[str]:
    """Plural folding of a phrase: the head word in English, every word in Romance languages."""
    if not words:
        return words
    language = (language or "en")[:2].lower()
    if language in {"fr", "es", "pt"}:
        return [singular(w, language) if len(w) > 3 else w for w in words]
    return [*words[:-1], singular(words[-1], language)]
