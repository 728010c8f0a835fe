"""The structured description built from a slide's parsed content."""

from __future__ import annotations

from osmose.services.vision.describe import MAX_TABLE_ROWS, describe_slide
from osmose.v1 import document_pb2 as pb
from tests.unit.vision.builders import visual_slide


def test_describes_title_text_chart_table_picture_and_notes() -> None:
    text = describe_slide(visual_slide(7))
    lines = text.splitlines()
    assert lines[0] == "Slide 7: Quarterly revenue by region"
    # the title is not repeated as body text
    assert "Text: Revenue grew in every region except EMEA" in text
    assert "Quarterly revenue by region /" not in text
    assert "Chart 1: bar clustered chart titled 'Revenue (M€)' (covers 30% of the page)" in text
    assert "  Categories: Q1, Q2, Q3" in lines
    assert "  Series 'Americas': Q1 = 12.5, Q2 = 14, Q3 = 15.25" in lines
    assert "  Series 'EMEA': Q1 = 9, Q2 = 8, Q3 = n/a" in lines
    assert "Table 1 (2 rows x 2 columns):" in lines
    assert "  EMEA | Zoë Martin" in lines
    assert ("Picture 1: described as 'World map with sales offices' "
            "(name 'Picture 4'; 1200x800 px; covers 20% of the page)") in lines
    assert lines[-1] == "Speaker notes: Mention the EMEA slowdown."


def test_is_deterministic() -> None:
    assert describe_slide(visual_slide(3)) == describe_slide(visual_slide(3))


def test_image_only_page_without_alt_text() -> None:
    slide = pb.Slide(number=2, pictures=[pb.Picture(name="", width_px=1654, height_px=2339,
                                                    box=pb.Box(width=1.0, height=1.0))])
    assert describe_slide(slide, unit="Page") == ("Page 2 (untitled)\n"
                                                  "Picture 1: no alt text (1654x2339 px; covers 100% of the page)")


def test_empty_page_says_so() -> None:
    assert "No text, table, chart or picture" in describe_slide(pb.Slide(number=1))


def test_unnamed_series_and_missing_categories() -> None:
    slide = pb.Slide(number=1, charts=[pb.Chart(chart_type="PIE", series=[pb.ChartSeries(values=[0.25, 1e20])])])
    text = describe_slide(slide)
    assert "Chart 1: pie chart" in text
    assert "Series 'Series 1': 0.25, 1e+20" in text


def test_large_content_is_bounded() -> None:
    rows = [pb.TableRow(cells=[f"r{i}c{j}" for j in range(20)]) for i in range(100)]
    slide = pb.Slide(number=1, tables=[pb.Table(rows=rows)], notes="x" * 50_000)
    text = describe_slide(slide)
    assert f"… ({100 - MAX_TABLE_ROWS} more rows)" in text
    assert "… (8 more columns)" in text
    assert "r99c0" not in text
    assert len(describe_slide(slide, max_chars=500)) == 500
