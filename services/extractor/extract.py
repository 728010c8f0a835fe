"""Concepts of a document, without a model: the extractor's logic, free of any runtime.

Per segment, four detectors propose candidates (YAKE keyphrases, or CJK terms
for Chinese/Japanese/Korean; acronym definitions; standalone acronyms;
capitalised names), each with a salience in [0, 1]. Candidates with the same
normalised form are combined, the segment keeps its best few, and the document
keeps its best few overall (by the sum of the segment saliences). Mentions are
then counted over every slide, each concept's document salience (its ``score``,
stored in the graph and ranked by) comes from :mod:`salience` (own mentions
outside longer names, spread, titles, generic vocabulary) and each concept gets a
type from :mod:`typing_rules`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from osmose.services.extractor.acronyms import acronym_pairs, standalone_acronyms
from osmose.services.extractor.cjk import cjk_candidates, cjk_terms
from osmose.services.extractor.form_matcher import mention_pattern
from osmose.services.extractor.junk import is_junk
from osmose.services.extractor.keyphrases import drop_nested, ends_before_article, keyphrases
from osmose.services.extractor.mentions import MentionIndex, Occurrences
from osmose.services.extractor.phrases import repeated_phrases, verb_like_words
from osmose.services.extractor.salience import Occurring, below_containing_subjects, own_mentions, salience
from osmose.services.extractor.segment_text import SegmentText, segment_texts
from osmose.services.extractor.terms import capitalised_terms, is_product_like
from osmose.services.extractor.typing_rules import concept_type
from osmose.text.language import CJK_LANGUAGES, detect_language
from osmose.text.names import surface_key
from osmose.text.scripts import cjk_ratio
from osmose.text.slide_text import clean_line
from osmose.text.stopwords import stopwords
from osmose.v1 import document_pb2 as pb

__all__ = [
    "MAX_CONCEPTS_PER_DOCUMENT",
    "MAX_CONCEPTS_PER_SEGMENT",
    "KEYPHRASE_WORDS_PER_SLIDE",
    "ExtractorLimits",
    "extract_concepts",
]

logger = logging.getLogger(__name__)

MAX_CONCEPTS_PER_SEGMENT = 20
MAX_CONCEPTS_PER_DOCUMENT = 300
# A single capitalised word ("Kubernetes") must occur this often in a segment to count as a name.
MIN_SINGLE_NAME_COUNT = 2
# Words per slide of a segment read by YAKE (its cost is per word, ~0.15 ms); the other
# detectors read everything.
KEYPHRASE_WORDS_PER_SLIDE = 35
# A segment longer than 5 slides may keep this many more concepts per extra slide.
MORE_CONCEPTS_PER_SLIDE = 3
# A concept only YAKE found must be mentioned this often in the document, unless it is a slide title.
MIN_KEYPHRASE_MENTIONS = 2
# A single-word keyphrase outside the titles must occur this often in its segment.
MIN_SINGLE_WORD_COUNT = 2
# A slide title this short is taken as a candidate name on its own.
MAX_TITLE_SUBJECT_WORDS = 3
# Acronym expansions can be long ("Règlement général sur la protection des données").
MAX_EXPANSION_WORDS = 8

# Saliences per detector, in [0, 1]; the rank of a keyphrase decides within its range.
_EXPANSION_SALIENCE = 0.8
_SHORT_FORM_SALIENCE = 0.6
_COUNTED_BASE, _COUNTED_STEP, _COUNTED_MAX_STEPS = 0.3, 0.1, 5
_TITLE_BONUS = 0.3
_TITLE_SUBJECT_SALIENCE = 0.5
_EXTRA_METHOD_BONUS = 0.15
_LOWER_WORD = re.compile(r"\b[^\W\d_A-Z]+\b")
# An elided article or preposition glued to a name ("l’expression", "d’analyse") is not part of it.
_ELIDING = frozenset({"fr", "it", "ca"})
_ELIDED = re.compile(r"^(?:l|d|qu|j|n|s|c|m|t|dell|all|nell|sull)['’](?=\w)", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class ExtractorLimits:
    """Bounds that keep the graph readable; the defaults are the module constants."""

    per_segment: int = MAX_CONCEPTS_PER_SEGMENT
    per_document: int = MAX_CONCEPTS_PER_DOCUMENT
    min_single_name_count: int = MIN_SINGLE_NAME_COUNT
    keyphrase_words_per_slide: int = KEYPHRASE_WORDS_PER_SLIDE
    more_per_slide: int = MORE_CONCEPTS_PER_SLIDE

    def segment_limit(self, slides: int) -> int:
        """Concepts a segment of `slides` slides may keep."""
        return self.per_segment + self.more_per_slide * max(0, slides - 5)

    def __post_init__(self) -> None:
        if self.per_segment < 1 or self.per_document < 1:
            raise ValueError("concept limits must be positive")


@dataclass
class _Candidate:
    name: str
    salience: float
    methods: set[str] = field(default_factory=set)
    aliases: set[str] = field(default_factory=set)
    language: str = ""
    is_title: bool = False  # the whole title of a slide or segment


@dataclass
class _DocConcept:
    name: str
    language: str
    score: float = 0.0
    is_title: bool = False
    methods: set[str] = field(default_factory=set)
    aliases: set[str] = field(default_factory=set)
    segment_ids: list[str] = field(default_factory=list)


def _counted_salience(count: int) -> float:
    return _COUNTED_BASE + _COUNTED_STEP * min(count, _COUNTED_MAX_STEPS)


def _ranked_salience(rank: int, total: int) -> float:
    return 1.0 - rank / (total + 1)


class _SegmentCandidates:
    def __init__(self, language: str) -> None:
        self.language = language
        self.by_key: dict[str, _Candidate] = {}

    def add(self, name: str, salience: float, method: str, aliases: Sequence[str] = ()) -> None:
        name = _ELIDED.sub("", name) if self.language[:2] in _ELIDING else name  # "l’expression QSL"
        key = surface_key(name)
        found = self.by_key.get(key)
        if found is None:
            self.by_key[key] = _Candidate(name, salience, {method}, set(aliases), self.language)
            return
        if method not in found.methods:
            found.salience = max(found.salience, salience) + _EXTRA_METHOD_BONUS
            found.methods.add(method)
        else:
            found.salience = max(found.salience, salience)
        found.aliases.update(aliases)


@dataclass
class _DocumentContext:
    """What segments need to know about the whole document."""

    segments: list[SegmentText]
    lowercase_words: set[str]
    cjk_counts: dict[str, Counter[str]] = field(default_factory=dict)

    def cjk(self, language: str) -> Counter[str]:
        # CJK terms are trusted by their frequency in the document (segments are small).
        if language not in self.cjk_counts:
            self.cjk_counts[language] = cjk_candidates([line for s in self.segments for line in s.lines], language)
        return self.cjk_counts[language]


def _segment_candidates(
    seg: SegmentText, language: str, context: _DocumentContext, limits: ExtractorLimits
) -> list[_Candidate]:
    lines, titles = seg.lines, seg.title_lines
    limit = limits.segment_limit(len(seg.slides))
    lowercase_words = context.lowercase_words
    words = stopwords(language)
    found = _SegmentCandidates(language)

    if language in CJK_LANGUAGES or cjk_ratio(seg.text) > 0.3:
        if language not in CJK_LANGUAGES:
            language = detect_language(seg.text, language)
        terms = cjk_terms(lines, titles, language, document_counts=context.cjk(language))
        ranked = sorted(terms, key=lambda t: (-terms[t], -len(t), t))[:limit]
        for rank, term in enumerate(ranked):
            found.add(term, _ranked_salience(rank, len(ranked)), "cjk")
    else:
        budget = limits.keyphrase_words_per_slide * max(len(seg.slides), 3)
        phrases = keyphrases(seg.lines_within(budget), language, top=limit, stopwords=words)
        for phrase in phrases:
            if not ends_before_article(phrase.text, seg.text, language):
                found.add(phrase.text, _ranked_salience(phrase.rank, len(phrases)), "keyphrase")

    defined: set[str] = set()
    for pair in acronym_pairs(lines):
        if not is_junk(pair.long, words, max_words=MAX_EXPANSION_WORDS):
            found.add(pair.long, _EXPANSION_SALIENCE, "acronym", aliases=[pair.short])
            found.add(pair.short, _SHORT_FORM_SALIENCE, "acronym")
            defined.add(surface_key(pair.short))
    for short, count in standalone_acronyms(lines, stopwords=words, lowercase_words=lowercase_words).items():
        found.add(short, _counted_salience(count), "acronym")
    # Titles are Title Case by convention: capitals there say nothing about names.
    body = [line for line in lines if line not in titles]
    terms = capitalised_terms(body, language=language, stopwords=words, lowercase_words=lowercase_words)
    for term, count in terms.items():
        single = len(term.split()) == 1 and not is_product_like(term)
        if (single and count < limits.min_single_name_count) or is_junk(term, words):
            continue
        found.add(term, _counted_salience(count), "capitalised")

    # A short slide title is the slide's subject ("Recycling", "Responsive design"), whatever YAKE ranks.
    for title in titles:
        subject = title.strip(" .:!?")
        title_words = subject.split()
        if (1 <= len(title_words) <= MAX_TITLE_SUBJECT_WORDS and not is_junk(subject, words)
                and not any(w.lower() in words for w in title_words[1:-1]) and not subject.endswith("?")):
            found.add(subject, _TITLE_SUBJECT_SALIENCE, "title")

    candidates = _without_name_fragments(list(found.by_key.values()))
    # Shorter phrases that only occur inside longer ones go ("Data Studio" in "Azure Data
    # Studio"); a defined acronym stays even if it is only used in its definition.
    kept = set(drop_nested([c.name for c in candidates], seg.text))
    candidates = [c for c in candidates if c.name in kept or surface_key(c.name) in defined]
    title_text = "\n".join(titles)
    title_keys = {surface_key(t.rstrip(" .:!?")) for t in titles}
    out = []
    for cand in candidates:
        pattern = mention_pattern(cand.name)
        in_title = bool(title_text) and pattern is not None and pattern.occurs_in(title_text)
        if in_title:
            cand.salience += _TITLE_BONUS
            cand.is_title = surface_key(cand.name) in title_keys
        elif (
            cand.methods == {"keyphrase"}
            and len(cand.name.split()) == 1
            and pattern is not None
            and pattern.count(seg.text) < MIN_SINGLE_WORD_COUNT
        ):
            continue  # a lone word YAKE liked once ("Track") is noise; repeated, it is the subject
        out.append(cand)
    candidates = out
    candidates.sort(key=lambda c: (-c.salience, surface_key(c.name)))
    return candidates[:limit]


def _is_mixed_case(phrase: str) -> bool:
    # Caseless scripts (Arabic, Hebrew, ...) count as not capitalised.
    words = [w for w in phrase.split() if w[:1].isalpha()]
    return any(w[:1].isupper() for w in words) and any(not w[:1].isupper() for w in words)


def _without_name_fragments(candidates: list[_Candidate]) -> list[_Candidate]:
    """Drops keyphrases that cut a multi-word name or run on from it.

    YAKE happily returns "Product Owner prioritises", "feeds Key Performance" or
    "Data Studio connects" next to the names "Product Owner", "Key Performance
    Indicators" and "Azure Data Studio" found by the other detectors.
    """
    names = [c.name for c in candidates if c.methods - {"keyphrase"} and len(c.name.split()) > 1]
    name_words = [set(surface_key(n).split()) for n in names]
    out = []
    for cand in candidates:
        if cand.methods == {"keyphrase"} and _is_mixed_case(cand.name):
            words = set(surface_key(cand.name).split())
            if any(words & nw and words != nw for nw in name_words):
                continue
        out.append(cand)
    return out


def _drop_words_of_longer_concepts(concepts: dict[str, _DocConcept]) -> None:
    """A lone word only YAKE proposed ("Access", "Trust") that is a word of a longer name of
    the document ("Privileged Access Management", "Zero Trust Network Access": found as an
    acronym expansion or a capitalised name) says less than that name."""
    words_of_longer = {w for key, c in concepts.items()
                       if len(key.split()) > 1 and c.methods - {"keyphrase", "phrase"} for w in key.split()}
    for key in [k for k, c in concepts.items() if c.methods == {"keyphrase"} and len(k.split()) == 1]:
        if key in words_of_longer:
            del concepts[key]


def _add_repeated_phrases(concepts: dict[str, _DocConcept], segs: Sequence[SegmentText], language: str) -> None:
    """The noun phrases the whole document keeps repeating (:mod:`phrases`), with the segments naming them."""
    if language in CJK_LANGUAGES:
        return
    lines = [line for seg in segs for line in seg.lines]
    titles = {t for seg in segs for t in seg.title_lines}
    for phrase in repeated_phrases(lines, titles, language=language, stopwords=stopwords(language)):
        key = surface_key(phrase.name)
        doc = concepts.setdefault(key, _DocConcept(phrase.name, language))
        doc.score += _counted_salience(phrase.count)
        doc.is_title |= phrase.in_title
        doc.methods.add("phrase")
        pattern = mention_pattern(phrase.name)
        for seg in segs:
            if seg.segment_id not in doc.segment_ids and pattern is not None and pattern.occurs_in(seg.text):
                doc.segment_ids.append(seg.segment_id)


def _drop_verb_endings(concepts: dict[str, _DocConcept], segs: Sequence[SegmentText], language: str) -> None:
    """Candidates ending in a word the document only uses as a verb ("Programmers Refactor", "Refactor"):
    a noun phrase ends in a noun. Declared acronyms and product-like spellings are names whatever."""
    verbs = verb_like_words([line for seg in segs for line in seg.lines], language)
    if not verbs:
        return
    for key in [k for k, c in concepts.items() if "acronym" not in c.methods and k.split()[-1] in verbs
                and not is_product_like(c.name.split()[-1])]:
        del concepts[key]


def _segment_language(seg: SegmentText, language: str, languages: Sequence[str]) -> str:
    if language and len(languages) <= 1 and cjk_ratio(seg.text[:500]) < 0.3:
        return language
    return detect_language(seg.text, language or "en", allowed=languages)


def extract_concepts(
    document: pb.Document,
    segments: Sequence[pb.Segment],
    *,
    language: str = "",
    languages: Sequence[str] = (),
    limits: ExtractorLimits | None = None,
) -> list[pb.Concept]:
    """The document's concepts, most salient first (deterministic for the same input)."""
    limits = limits or ExtractorLimits()
    segs = [s for s in segment_texts(document, segments) if s.slides]
    context = _DocumentContext(
        segments=segs, lowercase_words={w for s in segs for w in _LOWER_WORD.findall(s.text) if w.islower()}
    )
    concepts: dict[str, _DocConcept] = {}
    for seg in segs:
        seg_language = _segment_language(seg, language or document.language, languages)
        for cand in _segment_candidates(seg, seg_language, context, limits):
            doc = concepts.setdefault(surface_key(cand.name), _DocConcept(cand.name, cand.language))
            doc.score += cand.salience
            doc.is_title |= cand.is_title
            doc.methods |= cand.methods
            doc.aliases |= cand.aliases
            if seg.segment_id not in doc.segment_ids:
                doc.segment_ids.append(seg.segment_id)

    _add_repeated_phrases(concepts, segs, language or document.language or "en")
    _drop_words_of_longer_concepts(concepts)
    _drop_verb_endings(concepts, segs, language or document.language or "en")
    slides = [slide for seg in segs for slide in seg.slides]
    index = MentionIndex(slides)
    kept: list[tuple[str, _DocConcept, Occurrences]] = []
    for key, doc in sorted(concepts.items(), key=lambda kv: (-kv[1].score, kv[0])):
        if len(kept) >= limits.per_document:
            break
        found = index.find(doc.name)
        if not found.per_slide:
            logger.debug("dropping %r: not found in the slide text", doc.name)
            continue
        if doc.methods == {"keyphrase"} and not doc.is_title and found.total < MIN_KEYPHRASE_MENTIONS:
            # Said once and only YAKE liked it: most often a phrase cut across a verb
            # ("développeurs utilisent") or a piece of a title ("Transactions accelerated");
            # a real term comes back, or is the whole title of a slide.
            continue
        kept.append((key, doc, found))
    own = own_mentions([Occurring(key, found.surface, found.per_slide) for key, doc, found in kept])
    titles = [(s.number, s.title) for s in slides if s.title]
    document_title = clean_line(document.title) if document.title else ""
    values: dict[str, float] = {}
    for key, doc, found in kept:
        pattern = mention_pattern(found.surface)
        title_slides = sum(1 for _, t in titles if pattern is not None and pattern.occurs_in(t))
        in_title = bool(document_title) and pattern is not None and pattern.occurs_in(document_title)
        values[key] = salience(name=found.surface, language=doc.language, own=own[key], title_slides=title_slides,
                               in_document_title=in_title, methods=doc.methods)
    values = below_containing_subjects(values, {key: found.surface for key, _, found in kept},
                                       language or document.language or "en")
    out: list[pb.Concept] = []
    for key, doc, found in kept:
        value = values[key]
        if value <= 0 and "acronym" not in doc.methods:
            # Only ever inside longer concepts of the document ("Data Studio" in "Azure Data Studio").
            logger.debug("dropping %r: no mention outside longer concepts", doc.name)
            continue
        aliases = sorted(a for a in doc.aliases if surface_key(a) != key)
        methods = sorted(doc.methods)
        out.append(
            pb.Concept(
                name=found.surface,
                type=concept_type(found.surface, language=doc.language, aliases=aliases, methods=methods),
                aliases=aliases,
                mentions=[pb.Mention(slide=s, count=n) for s, n in found.per_slide],
                methods=methods,
                score=round(value, 4),
                segment_ids=doc.segment_ids,
            )
        )
    out.sort(key=lambda c: (-c.score, surface_key(c.name), c.name))
    return out
