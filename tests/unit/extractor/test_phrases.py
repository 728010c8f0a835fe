"""Repeated noun phrases of a whole document, and words a document only uses as verbs."""

from __future__ import annotations

from osmose.services.extractor.cleaning import is_boilerplate_line
from osmose.services.extractor.phrases import repeated_phrases, verb_like_words
from osmose.services.extractor.salience import generic_level
from osmose.text.stopwords import stopwords


def _names(lines: list[str], language: str, titles: tuple[str, ...] = ()) -> dict[str, int]:
    return {p.name: p.count for p in repeated_phrases(lines, titles, language=language,
                                                      stopwords=stopwords(language))}


def test_a_phrase_said_in_several_longer_ones_stays_a_term_and_a_fragment_goes() -> None:
    lines = ["Nous résumons des logs de requêtes OLAP.", "Un log de requêtes OLAP est une séquence.",
             "Pour résumer des requêtes OLAP, QSL.", "Les requêtes OLAP sont longues.",
             "On étudie les logs de requêtes OLAP ici."]
    names = _names(lines, "fr")
    assert "requêtes OLAP" in names
    lines = ["Root canal refactoring is rare", "We saw root canal refactoring twice", "root canal refactoring"]
    names = _names(lines, "en")
    assert "root canal refactoring" in names and "canal refactoring" not in names


def test_phrases_do_not_cross_punctuation_or_end_in_a_participle_or_a_german_verb() -> None:
    names = _names(["Selected commits, refactoring tools", "many commits, refactoring tools today",
                    "old commits, refactoring tools for all"], "en")
    assert "refactoring tools" in names and not any("commits refactoring" in n for n in names)
    french = _names(["les résumés calculés", "des résumés calculés ici", "trois résumés calculés",
                     "un entrepôt de données", "cet entrepôt de données", "notre entrepôt de données"], "fr")
    assert "résumés calculés" not in french and "entrepôt de données" in french
    de = _names(["Was sollte ich vor dem Kauf von Elektronikprodukten bedenken?",
                 "Elektronikprodukten bedenken wir", "Wir sollten Elektronikprodukten bedenken",
                 "Die Reparatur ist teuer", "Eine Reparatur lohnt sich", "Keine Reparatur möglich"], "de")
    assert "Elektronikprodukten bedenken" not in de and "Reparatur" in de


def test_hyphenated_terms_count_and_common_words_alone_do_not() -> None:
    names = _names(["The hf-measure combines h-recall and h-precision", "hf-measure and h-recall again",
                    "next steps", "Next steps", "next steps"], "en")
    assert {"hf-measure", "h-recall"} <= set(names) and "next steps" not in {n.lower() for n in names}


def test_a_repeated_line_counts_once() -> None:
    assert "understanding grows" not in _names(["our understanding grows richer"] * 5, "en")


def test_words_used_only_as_verbs() -> None:
    lines = ["How do programmers refactor?", "We refactor often", "Tools to refactor code",
             "the refactoring tool", "a tool user"]
    verbs = verb_like_words(lines, "en")
    assert "refactor" in verbs and "tool" not in verbs and "refactoring" not in verbs
    assert verb_like_words(lines, "de") == frozenset()


def test_adverbs_do_not_start_names_and_file_names_are_not_text() -> None:
    assert generic_level("Randomly Selected Commits", "en") < 1.0
    assert generic_level("Family Feud", "en") == 1.0
    for line in ("E:\\Point of View Sculpture\\f0391100 corrected.jpg", "china_fabrik2.jpg", "KKA_Logo4c",
                 "dyson tech.jpg"):
        assert is_boilerplate_line(line), line
    for line in ("Node.js", "HTTP/2", "Refactoring Tools", "see the docs/a/b for details"):
        assert not is_boilerplate_line(line), line
