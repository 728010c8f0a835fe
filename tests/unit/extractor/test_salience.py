"""The document salience the graph ranks by, and the text repairs before extraction."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from osmose.services.extractor.cleaning import clean_lines, is_boilerplate_line
from osmose.services.extractor.salience import (
    Occurring,
    below_containing_subjects,
    generic_level,
    own_mentions,
    salience,
)
from osmose.text.stopwords import stopwords


def test_occurrences_inside_a_longer_name_are_not_the_word_s_own() -> None:
    own = own_mentions([
        Occurring("boolean", "Boolean", ((1, 3), (2, 1))),
        Occurring("safe boolean register", "safe Boolean register", ((1, 2),)),
    ])
    assert own["boolean"] == {1: 1, 2: 1}
    assert own["safe boolean register"] == {1: 2}


def test_common_words_are_generic_per_language_and_names_are_not() -> None:
    assert generic_level("function", "en") < 1.0
    assert generic_level("Anwendung", "de") < 1.0
    assert generic_level("exemple", "fr") < 1.0
    assert generic_level("refactoring", "en") == 1.0
    assert generic_level("SQL", "en") == 1.0       # an acronym is a name
    assert generic_level("Kobalt", "de") == 1.0


@settings(max_examples=200, deadline=None)
@given(
    word_own=st.dictionaries(st.integers(1, 40), st.integers(1, 30), min_size=1, max_size=40),
    subject_own=st.dictionaries(st.integers(1, 40), st.integers(1, 3), min_size=1, max_size=3),
    word_titles=st.integers(0, 10),
    subject_titles=st.integers(0, 1),
    word=st.just("function file register test data"),
    extra=st.sampled_from(["safe", "pure", "Boolean", "lazy"]),
)
def test_a_generic_word_never_outranks_a_multi_word_subject_containing_it(
        word_own: dict[int, int], subject_own: dict[int, int], word_titles: int, subject_titles: int,
        word: str, extra: str) -> None:
    for generic in word.split():
        subject = f"{extra} {generic}"
        values = {
            generic: salience(name=generic, language="en", own=word_own, title_slides=word_titles,
                              in_document_title=True, methods={"keyphrase"}),
            subject.lower(): salience(name=subject, language="en", own=subject_own, title_slides=subject_titles,
                                      in_document_title=False, methods={"keyphrase"}),
        }
        ranked = below_containing_subjects(values, {generic: generic, subject.lower(): subject}, "en")
        assert ranked[generic] < ranked[subject.lower()]


def test_a_specific_word_keeps_its_own_rank() -> None:
    values = {"refactoring": 9.0, "floss refactoring": 3.0}
    assert below_containing_subjects(values, {"refactoring": "refactoring", "floss refactoring": "floss refactoring"},
                                     "en") == values


def test_without_an_own_mention_the_salience_is_zero() -> None:
    assert salience(name="Boolean", language="en", own={}, title_slides=2, in_document_title=True,
                    methods={"capitalised"}) == 0.0


def test_placeholders_alt_text_footnotes_and_line_break_joins_are_repaired() -> None:
    lines = ["Picture 1", "Grafik 12", "Ein Bild, das Text, Screenshot enthält.",
             "Automatisch generierte Beschreibung", "Julien Aligon∗, Patrick Marcel∗",
             "Risiken für dieAnwendungssicherheit", "A6:2017-Sicher-heitsrelevante Fehlkonfiguration",
             "Stand-by Betrieb"]
    cleaned = clean_lines(lines, stopwords=stopwords("de"), whole_words={"sicherheitsrelevante"})
    assert cleaned == ["Julien Aligon, Patrick Marcel", "Risiken für die Anwendungssicherheit",
                       "A6:2017-Sicherheitsrelevante Fehlkonfiguration", "Stand-by Betrieb"]
    assert is_boilerplate_line("Espace réservé du contenu 2")
    assert not is_boilerplate_line("Picture archiving and communication system")


def test_a_generic_word_ranks_below_the_plural_subject_containing_it() -> None:
    names = {"tool": "tool", "refactoring tools": "Refactoring Tools", "tools": "tools"}
    ranked = below_containing_subjects({"tool": 5.0, "refactoring tools": 2.0, "tools": 4.0}, names, "en")
    assert ranked["tool"] < ranked["refactoring tools"] and ranked["tools"] < ranked["refactoring tools"]
