"""Mentions: case-insensitive, word-boundary aware, CJK-safe, per slide."""

from __future__ import annotations

from osmose.services.extractor.form_matcher import mention_pattern
from osmose.services.extractor.mentions import MentionIndex
from osmose.text.scripts import space_cjk
from osmose.text.slide_text import SlideLines


def _index(*slides: tuple[str, ...]) -> MentionIndex:
    return MentionIndex([SlideLines(number=i, title="", visible=lines) for i, lines in enumerate(slides, 1)])


def test_case_insensitive_whole_words_per_slide() -> None:
    index = _index(("SQL and sql", "MySQL is not SQL"), ("SQLite neither",), ("SQL注入攻击",))
    found = index.find("SQL")
    assert found.per_slide == ((1, 3), (3, 1))
    assert found.surface == "SQL"


def test_phrases_match_across_spaces_but_not_across_lines_or_slides() -> None:
    index = _index(("Key  Performance Indicator", "Key Performance"), ("Indicator",))
    assert index.find("key performance indicator").per_slide == ((1, 1),)


def test_cjk_forms_match_inside_unspaced_text() -> None:
    index = _index(("データベースを管理する", "データベース"), ("개발자는 코드를 작성합니다",))
    assert index.find("データベース").per_slide == ((1, 2),)
    assert index.find("개발자").per_slide == ((2, 1),)


def test_surface_prefers_the_spelling_used_mid_sentence() -> None:
    index = _index(("Developer tools", "every developer needs", "a developer"),)
    assert index.find("DEVELOPER").surface == "developer"


def test_pattern_helpers() -> None:
    assert mention_pattern("C++") is not None and mention_pattern("C++").count("C++ and xC++") == 1
    assert mention_pattern("   ") is None
    assert space_cjk("SQL注入") == "SQL 注入"
