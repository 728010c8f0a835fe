"""Relations without a model that say something: significant slide co-occurrence and stated relations.

- :func:`sentence_associations` (what the miner uses): CO_OCCURS only between concepts named
  together in more sentences than chance predicts from the document's own frequencies
  (pointwise mutual information over its distinct sentences, at least ``min_shared`` shared
  sentences), strongest first, at most ``per_concept`` edges per concept. Two names in one
  sentence or bullet are far more often related than two names somewhere on one slide (a
  slide of a ten-item list joins every item with every other).
- :func:`slide_associations`: the same test over slides (for callers that only have mentions).
- :func:`head_relations`: IS_A from noun-phrase structure: a multi-word concept whose head noun
  is another concept of the document is a kind of it ("floss refactoring" -> "refactoring",
  "Österreichisches Umweltzeichen" -> "Umweltzeichen", German compounds "Kunststoffrecycling" ->
  "Recycling", "SQL-Injection" -> "Injection").
- :func:`stated_relations`: TYPED relations the text states, found by patterns between two
  concept mentions on one line ("X is a Y", "X uses Y", "X besteht aus Y", "X utilise Y") and by
  lists under a title (a slide whose title names one concept and whose lines are each a concept).

Every relation carries the ids of the slides that are its evidence.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from osmose.text.names import surface_key
from osmose.text.plurals import singular
from osmose.text.slide_text import slide_lines
from osmose.v1 import document_pb2 as pb

__all__ = ["AssociationLimits", "head_relations", "sentence_associations", "slide_associations", "stated_relations"]

# Between two mentions on one line, what states a relation (several languages), its label (the
# vocabulary the language model uses, llm_relations.LABELS) and whether it reads right to left
# ("X consists of Y" is "Y PART_OF X").
_PATTERNS: tuple[tuple[re.Pattern[str], str, bool], ...] = tuple(
    (re.compile(rf"^\s*(?:{p})\s*$", re.IGNORECASE), label, reverse)
    for p, label, reverse in (
        (r"is an?|is the|are|est une?|sont des|ist eine?|sind|es una?|é uma?|, (?:an?|une?|eine?) ", "IS_A", False),
        (r"uses|use|is using|utilise|utilisent|verwendet|nutzt|benutzt|usa|utiliza", "USES", False),
        (r"consists of|is composed of|comprises|contains|includes|is made of|se compose de|contient|comprend|"
         r"besteht aus|enthält|umfasst|contiene|incluye", "PART_OF", True),
        (r"is part of|are part of|belongs to|fait partie d[eu]|fait partie des|ist teil von|gehört zu|"
         r"forma parte de", "PART_OF", False),
        (r"implements|extends|implémente|étend|implementiert|erweitert", "IMPLEMENTS", False),
        (r"requires|runs on|is based on|depends on|nécessite|dépend de|benötigt|basiert auf|hängt ab von",
         "DEPENDS_ON", False),
        (r"supports|replaces|prevents|provides|remplace|empêche|fournit|ersetzt|verhindert", "RELATED_TO", False),
        (r"such as|like|e\.g\.|comme|tels? que|wie|wie beispielsweise|wie z\. ?b\.|como", "IS_A", True),
    )
)
_MAX_GAP = 40          # characters between two mentions for a pattern to apply
_EXAMPLES_OPEN = re.compile(r"^\s*\(\s*$")
_EXAMPLES_GO_ON = re.compile(r"\s*(?:,|\.\.\.|…|etc)")
_DEFINITION_LINES, _DEFINITION_MAX = 2, 4
_SHORT_LINE_WORDS, _SHORT_SHARE = 6, 0.8
_PAGE_NUMBER = re.compile(r"^\s*\d{1,4}\s*$")
_LIST_MIN, _LIST_MAX = 2, 15
_LIST_MARKER = re.compile(r"^\s*(?:[-–•*▪►]|\d+[.)]|[a-z][.)]|[A-Z]\d+:\d{4}\s*[-–]?)\s*")


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


@dataclass(frozen=True, kw_only=True)
class AssociationLimits:
    min_shared: int = 2        # slides (sentences) two concepts must share
    min_pmi: float = math.log(2.0)  # shared at least twice as often as independence predicts
    per_concept: int = 3       # CO_OCCURS edges per concept
    per_concept_sentences: int = 2  # the same for sentence co-occurrence


def _slide_sets(concepts: Sequence[pb.Concept]) -> dict[str, set[int]]:
    return {c.canonical_key: {m.slide for m in c.mentions if m.count > 0} for c in concepts}


def slide_associations(concepts: Sequence[pb.Concept], slide_ids: dict[int, str], *,
                       limits: AssociationLimits | None = None) -> list[pb.Relation]:
    """CO_OCCURS between concepts whose slide co-occurrence is significant (see module doc)."""
    limits = limits or AssociationLimits()
    slides = _slide_sets(concepts)
    total = len({s for ss in slides.values() for s in ss})
    if total < 2:
        return []
    salience = {c.canonical_key: c.score for c in concepts}
    scored = []
    for a, b in combinations(sorted(slides), 2):
        shared = slides[a] & slides[b]
        if len(shared) < limits.min_shared:
            continue
        pmi = math.log(len(shared) * total / (len(slides[a]) * len(slides[b])))
        if pmi < limits.min_pmi:
            continue
        scored.append((pmi * math.log1p(len(shared)), salience[a] + salience[b], a, b, shared))
    return _strongest([(x, y, a, b, {slide_ids.get(n, f"slide:{n}") for n in shared})
                       for x, y, a, b, shared in scored], limits.per_concept)


def _strongest(scored: list[tuple[float, float, str, str, set[str]]], per_concept: int) -> list[pb.Relation]:
    scored.sort(key=lambda x: (-x[0], -x[1], x[2], x[3]))
    degree: dict[str, int] = defaultdict(int)
    out = []
    for strength, _, a, b, evidence in scored:
        if degree[a] >= per_concept or degree[b] >= per_concept:
            continue
        degree[a] += 1
        degree[b] += 1
        out.append(pb.Relation(source_key=a, target_key=b, kind=pb.RELATION_KIND_CO_OCCURS,
                               weight=round(strength, 4), evidence=sorted(evidence)))
    return out


def sentence_associations(document: pb.Document, concepts: Sequence[pb.Concept], *,
                          limits: AssociationLimits | None = None) -> list[pb.Relation]:
    """CO_OCCURS between concepts named together in a significant number of sentences (see module doc)."""
    limits = limits or AssociationLimits()
    found = _finder(concepts)
    if found is None:
        return []
    pattern, forms = found
    # Each distinct sentence once (a footer repeated on every slide is one sentence), with its slides.
    sentences: dict[str, tuple[frozenset[str], set[str]]] = {}
    for slide in document.slides:
        for line in _joined(slide_lines(slide).lines):
            for sentence in _SENTENCE_END.split(line):
                keys = frozenset(forms[surface_key(m.group())] for m in pattern.finditer(sentence))
                if not keys:
                    continue
                text = " ".join(sentence.casefold().split())
                sentences.setdefault(text, (keys, set()))[1].add(_slide_ref(slide))
    total = len(sentences)
    if total < 2:
        return []
    count: dict[str, int] = defaultdict(int)
    shared: dict[tuple[str, str], int] = defaultdict(int)
    evidence: dict[tuple[str, str], set[str]] = defaultdict(set)
    for keys, slides in sentences.values():
        for key in keys:
            count[key] += 1
        for pair in combinations(sorted(keys), 2):
            shared[pair] += 1
            evidence[pair] |= slides
    salience = {c.canonical_key: c.score for c in concepts}
    scored = []
    for (a, b), n in shared.items():
        if n < limits.min_shared:
            continue
        pmi = math.log(n * total / (count[a] * count[b]))
        if pmi < limits.min_pmi:
            continue
        scored.append((pmi * math.log1p(n), salience.get(a, 0.0) + salience.get(b, 0.0), a, b, evidence[(a, b)]))
    return _strongest(scored, limits.per_concept_sentences)


# Languages whose noun phrases put the head first ("logs de requêtes", "requête OLAP").
_HEAD_FIRST = frozenset({"fr", "es", "pt", "it", "ca", "ro"})
# Languages that write compounds as one word ("Kunststoffrecycling"): the last part is the head.
_COMPOUNDING = frozenset({"de", "nl", "sv", "da", "no", "nb"})
_MIN_COMPOUND_HEAD = 4
_HEAD_EVIDENCE = 3


def _head_words(key: str, language: str) -> list[str]:
    words = key.replace("-", " ").split()
    if len(words) < 2:
        return []
    if language in _HEAD_FIRST:
        return [words[0]] if words[0].isalpha() and len(words[0]) > 2 else []
    return [words[-1]]


def head_relations(concepts: Sequence[pb.Concept], language: str, slide_ids: dict[int, str]) -> list[pb.Relation]:
    """IS_A from a concept to the concept that is its head noun (see module doc)."""
    lang = (language or "en")[:2].lower()
    singles: dict[str, str] = {}
    for c in concepts:
        for form in (c.name, *c.aliases):
            key = surface_key(form)
            if " " not in key and "-" not in key and len(key) >= 2:
                singles.setdefault(singular(key, lang), c.canonical_key)
    out = []
    for c in concepts:
        heads = {singles.get(singular(w, lang)) for w in _head_words(surface_key(c.name), lang)}
        key = surface_key(c.name)
        if lang in _COMPOUNDING and " " not in key:
            heads |= {k for word, k in singles.items() if len(word) >= _MIN_COMPOUND_HEAD
                      and len(key) >= len(word) + 3 and singular(key, lang).endswith(word)}
        slides = sorted({m.slide for m in c.mentions if m.count > 0})[:_HEAD_EVIDENCE]
        for head in sorted(h for h in heads if h and h != c.canonical_key):
            out.append(pb.Relation(source_key=c.canonical_key, target_key=head, kind=pb.RELATION_KIND_TYPED,
                                   weight=1.0, label="IS_A", evidence=sorted(slide_ids.get(n, f"slide:{n}") for n in slides)))
    return out


def _finder(concepts: Sequence[pb.Concept]) -> tuple[re.Pattern[str], dict[str, str]] | None:
    forms: dict[str, str] = {}
    for c in concepts:
        for form in (c.name, *c.aliases):
            key = surface_key(form)
            if len(key) >= 2 and key not in forms:
                forms[key] = c.canonical_key
    if not forms:
        return None
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE), forms


def _slide_ref(slide: pb.Slide) -> str:
    return slide.slide_id or f"slide:{slide.number}"


def _joined(lines: Sequence[str]) -> list[str]:
    """Lines, with a line that opens with a parenthesis joined to the one before ("Navigateur web" /
    "(Chrome, Firefox, ...)" is one statement cut by the layout)."""
    out: list[str] = []
    for line in lines:
        if out and line.lstrip().startswith("("):
            out[-1] = f"{out[-1]} {line.strip()}"
        else:
            out.append(line)
    return out


def stated_relations(document: pb.Document, concepts: Sequence[pb.Concept]) -> list[pb.Relation]:
    """TYPED relations the text states (patterns on a line; lists under a title), with their slides."""
    found = _finder(concepts)
    if found is None:
        return []
    pattern, forms = found
    evidence: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for slide in document.slides:
        text = slide_lines(slide)
        for line in _joined(text.lines):
            hits = [(m.start(), m.end(), forms[surface_key(m.group())]) for m in pattern.finditer(line)]
            for (_s1, e1, a), (s2, e2, b) in zip(hits, hits[1:], strict=False):
                if a == b or s2 - e1 > _MAX_GAP:
                    continue
                gap = line[e1:s2]
                if _EXAMPLES_OPEN.match(gap) and _EXAMPLES_GO_ON.match(line, e2):
                    # "Navigateur web (Chrome, Firefox, ...)": examples in parentheses are kinds of X.
                    for _s, _e, item in hits[hits.index((s2, e2, b)):]:
                        if item != a:
                            evidence[(item, a, "IS_A")].add(_slide_ref(slide))
                    continue
                for rx, label, reverse in _PATTERNS:
                    if rx.match(gap):
                        evidence[(b, a, label) if reverse else (a, b, label)].add(_slide_ref(slide))
                        break
        # A list under a title: the title names a concept, and whole lines are other concepts.
        # The title's first name is its subject ("OWASP Top 10 Risiken für die Anwendungssicherheit").
        title_hits = [forms[surface_key(m.group())] for m in pattern.finditer(text.title)] if text.title else []
        if not title_hits:
            continue
        head = title_hits[0]
        items = []
        marked = 0
        body = [line for line in text.visible[1:] if not _PAGE_NUMBER.match(line)]
        for line in body:
            bare = _LIST_MARKER.sub("", line).strip(" .:;")
            key = forms.get(surface_key(bare))
            if key and key != head:
                items.append(key)
                marked += bare != line.strip(" .:;")
        items = list(dict.fromkeys(items))
        # A list: its items are enumerated ("A1:2017-Injection", "- Chrome"), or they are most of
        # the slide's lines, or the slide is made of short lines; a few headings among paragraphs
        # ("Mögliche Angriffsszenarien" above a paragraph) are not a list.
        short = sum(1 for line in body if len(line.split()) <= _SHORT_LINE_WORDS)
        is_list = marked >= _LIST_MIN or len(items) * 2 > len(body) or short >= _SHORT_SHARE * len(body)
        if is_list and _LIST_MIN <= len(items) <= _LIST_MAX:
            for item in items:
                evidence[(item, head, "PART_OF")].add(_slide_ref(slide))
            continue
        # A definition slide: the whole title is one concept and one or two short lines say what it
        # is ("Bootstrap" / "Framework HTML, CSS, Javascript"): it relates to the concepts named there.
        if surface_key(text.title.strip(" .:!?")) in forms and 1 <= len(body) <= _DEFINITION_LINES:
            named = list(dict.fromkeys(forms[surface_key(m.group())] for line in body
                                       for m in pattern.finditer(line)))
            for item in named[:_DEFINITION_MAX]:
                if item != head:
                    evidence[(head, item, "RELATED_TO")].add(_slide_ref(slide))
    out = []
    seen: set[frozenset[str]] = set()
    for (a, b, label), ids in sorted(evidence.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if frozenset((a, b)) in seen:
            continue  # one stated relation per pair: the best-supported label
        seen.add(frozenset((a, b)))
        out.append(pb.Relation(source_key=a, target_key=b, kind=pb.RELATION_KIND_TYPED, weight=float(len(ids)),
                               evidence=sorted(ids), label=label))
    return out
