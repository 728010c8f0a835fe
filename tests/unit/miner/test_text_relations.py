"""Offline relations: significant slide co-occurrence (capped) and relations the text states."""

from __future__ import annotations

from osmose.services.miner.text_relations import (
    AssociationLimits,
    head_relations,
    sentence_associations,
    slide_associations,
    stated_relations,
)
from osmose.v1 import document_pb2 as pb


def concept(key: str, slides: list[int], score: float = 1.0, name: str = "") -> pb.Concept:
    return pb.Concept(canonical_key=key, name=name or key, score=score,
                      mentions=[pb.Mention(slide=s, count=1) for s in slides])


def test_only_pairs_sharing_slides_beyond_chance_are_joined_and_each_concept_is_capped() -> None:
    concepts = [
        concept("qsl", [1, 2, 3]), concept("summarizelog", [2, 3]),      # together on 2 of 2 slides
        concept("everywhere", list(range(1, 11))),                        # on every slide: no information
        concept("once", [5]),
        *[concept(f"hub{i}", [7, 8]) for i in range(6)],
    ]
    ids = {n: f"s{n}" for n in range(1, 11)}
    relations = slide_associations(concepts, ids, limits=AssociationLimits(per_concept=2))
    pairs = {(r.source_key, r.target_key) for r in relations}
    assert ("qsl", "summarizelog") in pairs
    assert not any("everywhere" in p or "once" in p for p in pairs)
    degree: dict[str, int] = {}
    for a, b in pairs:
        degree[a] = degree.get(a, 0) + 1
        degree[b] = degree.get(b, 0) + 1
    assert max(degree.values()) <= 2
    joined = next(r for r in relations if (r.source_key, r.target_key) == ("qsl", "summarizelog"))
    assert list(joined.evidence) == ["s2", "s3"] and joined.kind == pb.RELATION_KIND_CO_OCCURS


def _document(*slides: tuple[str, list[str]]) -> pb.Document:
    doc = pb.Document(doc_id="d")
    for n, (title, lines) in enumerate(slides, start=1):
        doc.slides.append(pb.Slide(number=n, slide_id=f"s{n}", title=title,
                                   blocks=[pb.TextBlock(text=line) for line in lines]))
    return doc


def test_stated_relations_from_patterns_and_lists_under_a_title() -> None:
    concepts = [concept("bootstrap", [], name="Bootstrap"), concept("css", [], name="CSS"),
                concept("owasp top 10", [], name="OWASP Top 10"), concept("injection", [], name="Injection"),
                concept("xss", [], name="Cross-Site Scripting"), concept("gherkin", [], name="Gherkin"),
                concept("bdd", [], name="BDD")]
    doc = _document(
        ("Frameworks", ["Bootstrap uses CSS for its grid", "CSS and Gherkin are unrelated here"]),
        ("OWASP Top 10 - 2017", ["A1:2017-Injection", "A7:2017-Cross-Site Scripting"]),
        ("BDD", ["BDD is written in a language like Gherkin"]),
    )
    got = {(r.source_key, r.target_key, r.label, tuple(r.evidence)) for r in stated_relations(doc, concepts)}
    assert ("bootstrap", "css", "USES", ("s1",)) in got
    assert ("injection", "owasp top 10", "PART_OF", ("s2",)) in got
    assert ("xss", "owasp top 10", "PART_OF", ("s2",)) in got
    assert not any({a, b} == {"css", "gherkin"} for a, b, _, _ in got)


def test_sentence_co_occurrence_joins_names_said_together_not_names_on_one_slide() -> None:
    concepts = [concept("qsl", [], name="QSL"), concept("summarizelog", [], name="SummarizeLog"),
                concept("injection", [], name="Injection"), concept("xss", [], name="XSS"),
                concept("olap", [], name="OLAP")]
    doc = _document(
        ("Risks", ["Injection", "XSS", "SummarizeLog computes a QSL summary."]),
        ("Risks again", ["Injection", "XSS", "Then SummarizeLog returns the QSL expression."]),
        ("More", ["Injection", "XSS", "OLAP cubes. QSL alone here. SummarizeLog alone there."]),
        ("OLAP", ["OLAP servers.", "OLAP queries.", "OLAP logs.", "OLAP sessions."]),
    )
    pairs = {(r.source_key, r.target_key): r for r in sentence_associations(doc, concepts)}
    assert set(pairs) == {("qsl", "summarizelog")}  # Injection/XSS share slides, never a sentence
    assert list(pairs[("qsl", "summarizelog")].evidence) == ["s1", "s2"]


def test_head_nouns_make_is_a_relations_in_every_language() -> None:
    en = [concept("floss refactoring", [1], name="floss refactoring"), concept("refactoring", [2], name="refactoring"),
          concept("refactoring tools", [3], name="Refactoring Tools")]
    got = {(r.source_key, r.target_key, r.label) for r in head_relations(en, "en", {1: "s1"})}
    assert got == {("floss refactoring", "refactoring", "IS_A")}
    fr = [concept("requêtes olap", [1], name="requêtes OLAP"), concept("requête", [1], name="requête"),
          concept("olap", [1], name="OLAP")]
    assert {(r.source_key, r.target_key) for r in head_relations(fr, "fr", {})} == {("requêtes olap", "requête")}
    de = [concept("kunststoffrecycling", [1], name="Kunststoffrecycling"), concept("recycling", [1], name="Recycling"),
          concept("sql-injection", [1], name="SQL-Injection"), concept("injection", [1], name="Injection")]
    assert {(r.source_key, r.target_key) for r in head_relations(de, "de", {})} == {
        ("kunststoffrecycling", "recycling"), ("sql-injection", "injection")}


def test_examples_in_parentheses_definition_slides_and_headings_that_are_not_lists() -> None:
    concepts = [concept("navigateur web", [], name="Navigateur web"), concept("chrome", [], name="Chrome"),
                concept("firefox", [], name="Firefox"), concept("bootstrap", [], name="Bootstrap"),
                concept("css", [], name="CSS"), concept("injection", [], name="Injection"),
                concept("scenarios", [], name="Angriffsszenarien"), concept("owasp", [], name="OWASP")]
    doc = _document(
        ("Généralités", ["Navigateur web", "(Chrome, Firefox, ...)", "Serveur"]),
        ("Bootstrap", ["Framework HTML, CSS, Javascript", "39"]),
        ("Injection", ["Angriffsszenarien", "A long paragraph about how injection flaws are found and exploited.",
                       "OWASP", "Another long paragraph that explains the technical impact in detail here."]),
    )
    got = {(r.source_key, r.target_key, r.label) for r in stated_relations(doc, concepts)}
    assert ("chrome", "navigateur web", "IS_A") in got and ("firefox", "navigateur web", "IS_A") in got
    assert ("bootstrap", "css", "RELATED_TO") in got
    assert not any("injection" in (a, b) for a, b, _ in got)
