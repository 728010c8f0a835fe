"""Concept types from the shape of a name: ordered rules over word lists, no model.

The first rule that matches wins, most specific first: STANDARD, TOOL, ROLE,
PRACTICE, ENTITY, otherwise TOPIC. Rules look at the phrase's head word (last
word in English, German and Russian; first word in the Romance languages),
trailing version numbers, aliases (an acronym like GDPR types its expansion)
and how the concept was found (a name seen capitalised mid-sentence is an entity).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from osmose.services.extractor import lexicon as lx
from osmose.services.extractor.terms import is_product_like
from osmose.text.scripts import cjk_ratio
from osmose.v1 import document_pb2 as pb

__all__ = ["Phrase", "concept_type"]

_ROMANCE = frozenset({"fr", "es", "pt", "it", "ca", "ro"})
_CJK = frozenset({"zh", "ja", "ko"})
# Languages whose noun phrases can put the head first ("chef de projet", "шифрование данных").
_HEAD_FIRST = _ROMANCE | {"ru", "uk"}
_VERSION = re.compile(r"^v?\d+(\.\d+)*[a-z]?$", re.IGNORECASE)
_DOTTED_VERSION = re.compile(r"(^|\s)v?\d+\.\d+", re.IGNORECASE)
_STANDARD_NUMBER = re.compile(
    r"\b(iso|iec|iso/iec|en|nist|sp|rfc|ieee|ansi|din|etsi|itu-t|fips|bs|nf|cwe)[\s-]?\d{2,}|\btop[\s-]?\d+\b"
    r"|\bsoc[\s-]?[123]\b|\bpci[\s-]dss\b|\bnis[\s-]?2\b",
    re.IGNORECASE,
)
_STRONG_TOOL_SUFFIXES = frozenset({"sdk", "api", "apis", "ide", "cli", "framework", "db"})


@dataclass(frozen=True)
class Phrase:
    """What the rules look at; built once per name."""

    name: str
    words: tuple[str, ...]  # lower case
    core: tuple[str, ...]  # lower-case words without trailing version numbers
    language: str
    aliases: frozenset[str]
    methods: frozenset[str]

    @classmethod
    def of(cls, name: str, *, language: str = "en", aliases: Sequence[str] = (),
           methods: Collection[str] = ()) -> Phrase:
        words = tuple(w.lower() for w in name.split())
        core = list(words)
        while len(core) > 1 and _VERSION.match(core[-1]):
            core.pop()
        return cls(name=name, words=words, core=tuple(core), language=(language or "en")[:2].lower(),
                   aliases=frozenset(a.lower() for a in aliases), methods=frozenset(methods))

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def core_text(self) -> str:
        return " ".join(self.core)

    @property
    def heads(self) -> tuple[str, ...]:
        """Head-word candidates: last word, and the first one where heads can come first."""
        if self.language in _HEAD_FIRST and len(self.core) > 1:
            return (self.core[-1], self.core[0])
        return (self.core[-1],)

    @property
    def capitalised(self) -> bool:
        content = [w for w in self.name.split() if w[:1].isalpha() and len(w) > 3]
        return bool(content) and all(w[:1].isupper() for w in content)


def _is_standard(p: Phrase) -> bool:
    if _STANDARD_NUMBER.search(p.text) or p.core_text in lx.KNOWN_STANDARDS:
        return True
    if p.aliases & lx.KNOWN_STANDARDS or p.aliases & {"iso", "rfc"}:
        return True
    if len(p.core) > 1 and (p.core[-1] in lx.STANDARD_WORDS or p.language in _ROMANCE and p.core[0] in
                            lx.STANDARD_WORDS):
        return True
    # "OWASP ASVS", "W3C WCAG": a standards body naming its work
    return len(p.core) <= 3 and p.core[0] in lx.STANDARD_BODIES and p.name[:1].isupper()


def _is_tool(p: Phrase) -> bool:
    if p.core_text in lx.KNOWN_TOOLS:
        return True
    if len(p.words) == 1 and is_product_like(p.name) and p.text not in lx.PRACTICE_PHRASES:
        return True
    if _DOTTED_VERSION.search(p.text) and p.name[:1].isupper():
        return True  # "Python 3.11", "Angular 17.2"
    if len(p.core) > 1:
        last = p.core[-1]
        if last in _STRONG_TOOL_SUFFIXES or last in lx.TOOL_SUFFIXES and p.capitalised:
            return True
        if last in {"manager", "managers"} and p.core[-2] in lx.TOOL_MANAGER_PREFIXES:
            return True
        # "Microsoft Teams", "AWS Lambda", "Azure DevOps" (but "Google developers" are people)
        if p.core[0] in lx.VENDORS and p.capitalised and (last == "teams" or last not in lx.ROLE_HEADS_LAST):
            return True
    return False


def _is_role(p: Phrase) -> bool:
    last = p.core[-1]
    if p.language in _CJK:
        return last.endswith(lx.ROLE_SUFFIXES_CJK)
    if last in lx.ROLE_HEADS_LAST or p.aliases & lx.ROLE_HEADS_LAST:
        return True
    if p.language == "de" and any(last.endswith(r) for r in lx.ROLE_HEADS_LAST if len(r) >= 6):
        return True  # compounds: "Softwareentwickler"
    if p.language in _ROMANCE and p.core[0] in lx.ROLE_HEADS_FIRST:
        return True
    return p.language == "ru" and any(w.startswith(lx.ROLE_STEMS) for w in p.core)


def _is_practice(p: Phrase) -> bool:
    if p.core_text in lx.PRACTICE_PHRASES or p.aliases & lx.PRACTICE_PHRASES:
        return True
    if p.language in _CJK:
        return p.core[-1].endswith(lx.PRACTICE_SUFFIXES_CJK)
    suffixes = lx.PRACTICE_SUFFIXES["en"] + lx.PRACTICE_SUFFIXES.get(p.language, ())
    for head in p.heads:
        if head in lx.PRACTICE_EXCEPTIONS:
            continue
        if head in lx.PRACTICE_PHRASES:
            return True
        if any(head.endswith(s) and len(head) >= len(s) + 3 for s in suffixes):
            return True
    return False


def _is_entity(p: Phrase) -> bool:
    if p.core_text in lx.ORGANISATIONS or p.core_text in lx.VENDORS:
        return True
    if len(p.core) > 1 and (p.core[-1] in lx.ORG_SUFFIXES or p.core[0] in lx.ORG_SUFFIXES):
        return True
    # Seen capitalised in the middle of a sentence and not an acronym's expansion: a proper name.
    return "capitalised" in p.methods and "acronym" not in p.methods and p.capitalised


_RULES: tuple[tuple[pb.ConceptType, Callable[[Phrase], bool]], ...] = (
    (pb.CONCEPT_TYPE_STANDARD, _is_standard),
    (pb.CONCEPT_TYPE_TOOL, _is_tool),
    (pb.CONCEPT_TYPE_ROLE, _is_role),
    (pb.CONCEPT_TYPE_PRACTICE, _is_practice),
    (pb.CONCEPT_TYPE_ENTITY, _is_entity),
)


def concept_type(name: str, *, language: str = "en", aliases: Sequence[str] = (),
                 methods: Collection[str] = ()) -> pb.ConceptType:
    """The :class:`ConceptType` of a concept called `name`."""
    if (language or "")[:2] in _CJK and not cjk_ratio(name):
        language = "en"  # a Latin name in a CJK deck ("Product Owner") follows the English rules
    phrase = Phrase.of(name, language=language, aliases=aliases, methods=methods)
    if not phrase.words:
        return pb.CONCEPT_TYPE_TOPIC
    for concept_type_, rule in _RULES:
        if rule(phrase):
            return concept_type_
    return pb.CONCEPT_TYPE_TOPIC
