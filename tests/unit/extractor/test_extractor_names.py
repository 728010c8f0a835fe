"""Names that start with a stopword, and lone words that are part of a longer name."""

from __future__ import annotations

from osmose.services.extractor.extract import extract_concepts
from osmose.services.extractor.junk import is_junk
from osmose.text.stopwords import stopwords
from osmose.v1 import document_pb2 as pb


def test_title_case_name_may_start_with_a_number_word() -> None:
    words = stopwords("en")
    assert "zero" in words  # YAKE's list has it: the exception below is needed
    assert not is_junk("Zero Trust Network Access", words, max_words=8)
    assert not is_junk("New Relic", words)
    assert is_junk("zero trust", words)          # lower case: a phrase, not a name
    assert is_junk("The Project", words)         # articles never start a name


def _doc() -> tuple[pb.Document, list[pb.Segment]]:
    doc = pb.Document(doc_id="z" * 32)
    lines = [
        ("Zero Trust Network Access (ZTNA)", "ZTNA replaces the VPN. Access is granted per request. Access is logged."),
        ("Access reviews", "Access reviews happen every quarter. Access rights expire. Network access is audited."),
        ("Network design", "The network is segmented. Network zones are isolated. Trust is never implicit."),
    ]
    for i, (title, body) in enumerate(lines, 1):
        slide = doc.slides.add(number=i, title=title)
        slide.blocks.add(text=title, role=pb.BLOCK_ROLE_TITLE)
        slide.blocks.add(text=body, role=pb.BLOCK_ROLE_BODY)
    return doc, [pb.Segment(segment_id="s0", index=0, title="ZTNA", slide_numbers=[1, 2, 3])]


def test_expansion_with_stopword_start_is_kept_with_its_acronym() -> None:
    doc, segments = _doc()
    concepts = {c.name: c for c in extract_concepts(doc, segments, language="en", languages=["en"])}
    assert "Zero Trust Network Access" in concepts
    assert list(concepts["Zero Trust Network Access"].aliases) == ["ZTNA"]
    assert "Trust Network Access" not in concepts


def test_lone_words_of_a_longer_name_are_dropped() -> None:
    doc, segments = _doc()
    names = {c.name.lower() for c in extract_concepts(doc, segments, language="en", languages=["en"])}
    assert not names & {"access", "network", "trust"}


def test_capitalised_names_keep_their_number_word() -> None:
    from osmose.services.extractor.terms import capitalised_terms

    words = stopwords("en")
    terms = capitalised_terms(["Our pilot of Zero Trust Network Access went live", "We moved to New Relic"],
                              language="en", stopwords=words, lowercase_words=set())
    assert "Zero Trust Network Access" in terms and "Trust Network Access" not in terms
    assert "New Relic" in terms
