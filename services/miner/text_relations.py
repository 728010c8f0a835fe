"""Relations without a model that say something: significant slide co-occurrence and stated relations.

- :func:`slide_associations`: CO_OCCURS only between concepts that share more slides than
  chance predicts from the document's own frequencies (pointwise mutual information over
  slides, at least ``min_shared`` shared slides), strongest first, at most ``per_concept``
  edges per concept, so a 20-concept deck is not a complete graph.
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
from osmose.text.slide_text import slide_lines
from osmose.v1 import document_pb2 as pb

__all__ = ["AssociationLimits", "slide_associations", "stated_relations"]

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
_LIST_MIN, _LIST_MAX = 2, 15
_LIST_MARKER = re.compile(r"^\s*(?:[-–•*▪►]|\d+[.)]|[a-z][.)]|[A-Z]\d+:\d{4}\s*[-–]?)\s*")


@dataclass(frozen=True, kw_only=True)
class AssociationLimits:
    min_shared: int = 2        # slides two concepts must share
    min_pmi: float = math.log(2.0)  # shared at least twice as often as independence predicts
    per_concept: int = 3       # CO_OCCURS edges per concept


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
    scored.sort(key=lambda x: (-x[0], -x[1], x[2], x[3]))
    degree: dict[str, int] = defaultdict(int)
    out = []
    for strength, _, a, b, shared in scored:
        if degree[a] >= limits.per_concept or degree[b] >= limits.per_concept:
            continue
        degree[a] += 1
        degree[b] += 1
        out.append(pb.Relation(source_key=a, target_key=b, kind=pb.RELATION_KIND_CO_OCCURS,
                               weight=round(strength, 4),
                               evidence=sorted(slide_ids.get(s, f"slide:{s}") for s in shared)))
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


def stated_relations(document: pb.Document, concepts: Sequence[pb.Concept]) -> list[pb.Relation]:
    """TYPED relations the text states (patterns on a line; lists under a title), with their slides."""
    found = _finder(concepts)
    if found is None:
        return []
    pattern, forms = found
    evidence: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for slide in document.slides:
        text = slide_lines(slide)
        for line in text.lines:
            hits = [(m.start(), m.end(), forms[surface_key(m.group())]) for m in pattern.finditer(line)]
            for (_s1, e1, a), (s2, _e2, b) in zip(hits, hits[1:], strict=False):
                if a == b or s2 - e1 > _MAX_GAP:
                    continue
                gap = line[e1:s2]
                for rx, label, reverse in _PATTERNS:
                    if rx.match(gap):
                        evidence[(b, a, label) if reverse else (a, b, label)].add(_slide_ref(slide))
                        break
        # A list under a title: the title names one concept, and whole lines are other concepts.
        title_hits = {forms[surface_key(m.group())] for m in pattern.finditer(text.title)} if text.title else set()
        if len(title_hits) != 1:
            continue
        (head,) = title_hits
        items = []
        for line in text.visible[1:]:
            bare = _LIST_MARKER.sub("", line).strip(" .:;")
            key = forms.get(surface_key(bare))
            if key and key != head:
                items.append(key)
        items = list(dict.fromkeys(items))
        if _LIST_MIN <= len(items) <= _LIST_MAX:
            for item in items:
                evidence[(item, head, "PART_OF")].add(_slide_ref(slide))
    out = []
    seen: set[frozenset[str]] = set()
    for (a, b, label), ids in sorted(evidence.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if frozenset((a, b)) in seen:
            continue  # one stated relation per pair: the best-supported label
        seen.add(frozenset((a, b)))
        out.append(pb.Relation(source_key=a, target_key=b, kind=pb.RELATION_KIND_TYPED, weight=float(len(ids)),
                               evidence=sorted(ids), label=label))
    return out
