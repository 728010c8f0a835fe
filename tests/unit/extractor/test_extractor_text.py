"""What the extractor reads: segments without footers and source code, keyphrase filters."""

from __future__ import annotations

from osmose.services.extractor.keyphrases import _extractor, drop_nested, ends_before_article, keyphrases
from osmose.services.extractor.segment_text import document_slides, is_code_line, segment_texts
from osmose.text.stopwords import stopwords
from osmose.v1 import document_pb2 as pb


def _slide(number: int, title: str, *lines: str, notes: str = "") -> pb.Slide:
    return pb.Slide(
        number=number, title=title, notes=notes,
        blocks=[pb.TextBlock(text=title, role=pb.BLOCK_ROLE_TITLE), *(pb.TextBlock(text=t) for t in lines)],
    )


def test_footers_and_code_are_not_read() -> None:
    doc = pb.Document(doc_id="d", slides=[
        _slide(i, f"Locks {i}", "Art of Multiprocessor Programming", "while (!lock.get()) {}", f"Spin lock number {i}")
        for i in range(1, 7)
    ])
    slides = document_slides(doc)
    assert all(s.visible == (f"Locks {n}", f"Spin lock number {n}") for n, s in slides.items())
    assert is_code_line("return lock.tryAcquire();") and is_code_line("x = y + 1")
    assert not is_code_line("Code review and static analysis catch defects early")
    assert not is_code_line("Key Performance Indicators (KPI) for the Product Owner")


def test_keyphrase_budget_prefers_visible_text() -> None:
    doc = pb.Document(doc_id="d", slides=[_slide(1, "Title words", "one two three", notes="notes " * 50)])
    (segment,) = segment_texts(doc, [])
    assert segment.lines_within(5) == ["Title words", "one two three"]
    assert segment.lines_within(6) == ["Title words", "one two three", "notes " * 49 + "notes"]
    assert segment.lines_within(2) == ["Title words"]


def test_keyphrases_drop_junk_and_nested_phrases() -> None:
    lines = ["Secure Coding Practices", "Developers must validate all input",
             "Use parameterized queries in SQL Server", "Call https://example.com or 555-0100"]
    found = [k.text for k in keyphrases(lines, "en", top=20, stopwords=stopwords("en"))]
    assert "Secure Coding Practices" in found
    assert not any("https" in k or k[0].isdigit() for k in found)
    text = "\n".join(lines)
    kept = drop_nested(["Secure Coding Practices", "Coding Practices", "Secure", "SQL Server", "SQL"], text)
    assert kept == ["Secure Coding Practices", "SQL Server"]


def test_phrase_before_an_article_ends_in_a_verb() -> None:
    text = "The CISO reviews the budget. The CISO reviews every plan. Threat models matter."
    assert ends_before_article("CISO reviews", text, "en")
    assert not ends_before_article("Threat models", text, "en")


def test_keyphrase_stopwords_for_a_language_yake_lacks() -> None:
    # Hebrew has no YAKE list: the language-neutral one plus English, not Norwegian ("og" = "and").
    assert "the" in stopwords("he") and "og" not in _extractor("", 10).stopword_set
