"""The text of a slide: the string view, the lines view, word counts and the scan rule."""

from __future__ import annotations

from osmose.text.slide_text import (
    SCAN_MAX_WORDS,
    body_text,
    clean_line,
    reads_as_scan,
    slide_lines,
    slide_text,
    word_count,
)
from osmose.v1 import document_pb2 as pb


def _slide(number: int, title: str, *lines: str, notes: str = "") -> pb.Slide:
    return pb.Slide(
        number=number, title=title, notes=notes,
        blocks=[pb.TextBlock(text=title, role=pb.BLOCK_ROLE_TITLE), *(pb.TextBlock(text=t) for t in lines)],
    )


def test_slide_lines_read_every_part_once() -> None:
    slide = _slide(1, "Dashboards", "KPI per team\nDelivery lead time", notes="Mention the\u00a0Power BI refresh.")
    slide.tables.add().rows.add(cells=["Team", "Lead time"])
    chart = slide.charts.add(title="Incidents per month", categories=["January"])
    chart.series.add(name="Critical incidents")
    slide.vision.text = "A bar chart of incidents"
    text = slide_lines(slide)
    assert text.visible == ("Dashboards", "KPI per team", "Delivery lead time", "Team", "Lead time",
                            "Incidents per month", "January", "Critical incidents", "A bar chart of incidents")
    assert text.notes == ("Mention the Power BI refresh.",)


def test_slide_text_counts_new_vision_text_only() -> None:
    slide = _slide(1, "Dashboards", "KPI per team", notes="Speaker notes")
    slide.tables.add().rows.add(cells=["Team", " Lead time "])
    slide.charts.add(title="Incidents", categories=["Jan", "Feb"]).series.add(name="Critical")
    slide.pictures.add(alt_text="A team photo")
    assert body_text(slide) == "Dashboards\nKPI per team\nTeam | Lead time\nIncidents\nJan, Feb\nCritical"
    slide.vision.path = pb.VISION_PATH_DESCRIPTION
    slide.vision.text = "Slide 1: Dashboards"
    described = slide_text(slide)
    assert described.endswith("A team photo\nSpeaker notes")
    slide.vision.path = pb.VISION_PATH_OCR
    assert slide_text(slide) == described + "\nSlide 1: Dashboards"
    assert slide_text(slide, notes=False, vision=False) == described.removesuffix("\nSpeaker notes")


def test_untitled_block_gets_the_slide_title_first() -> None:
    slide = pb.Slide(number=1, title="Overview", blocks=[pb.TextBlock(text="Body")])
    assert body_text(slide) == "Overview\nBody"


def test_word_count_in_any_script() -> None:
    assert word_count("Zero trust, every request") == 4
    assert word_count("データベース管理") == 4  # 8 characters of an unspaced script
    assert word_count("SQL注入攻击") == 1 + 2
    assert word_count("ภาษาไทย") == 4


def test_scan_rule() -> None:
    assert reads_as_scan(SCAN_MAX_WORDS - 1) and not reads_as_scan(SCAN_MAX_WORDS)


def test_clean_line() -> None:
    assert clean_line(" ＳＱＬ\u00a0 Server\t") == "SQL Server"


def test_slide_lines_read_vision_text_only_when_it_is_new() -> None:
    slide = _slide(1, "Refactoring", "Floss refactoring")
    slide.pictures.add(alt_text="A sculpture")
    slide.vision.path = pb.VISION_PATH_DESCRIPTION
    slide.vision.text = "Slide 1: Refactoring\nPicture 1: described as 'A sculpture' (name 'Picture 3')"
    assert slide_lines(slide).lines == ("Refactoring", "Floss refactoring", "A sculpture")
    slide.vision.path = pb.VISION_PATH_OCR
    slide.vision.text = "Root canal refactoring"
    assert slide_lines(slide).lines[-1] == "Root canal refactoring"
