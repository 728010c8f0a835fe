from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from osmose import ids
from osmose.errors import DocumentTooLargeError
from osmose.v1 import document_pb2 as pb
from tests.fixtures.builders import (
    CHART_CATEGORIES,
    CHART_SERIES,
    GROUPED_READING_ORDER,
    NOTES_TEXT,
    PICTURE_ALT_TEXT,
    TABLE_ROWS,
    build_chart_pptx,
    build_grouped_shapes_pptx,
    build_hidden_slide_pptx,
    build_many_slides_pptx,
    build_notes_pptx,
    build_picture_pptx,
    build_sections_pptx,
    build_table_pptx,
    build_title_body_pptx,
    png_bytes,
)

Parse = Callable[..., pb.Document]


def _box(box: pb.Box) -> tuple[float, float, float, float]:
    return (box.x, box.y, box.width, box.height)


def test_document_identity_and_metadata(tmp_path: Path, parse: Parse) -> None:
    path = build_title_body_pptx(tmp_path)
    data = path.read_bytes()
    doc = parse(path)
    assert doc.format == pb.SOURCE_FORMAT_PPTX
    assert doc.doc_id == ids.doc_id_for_bytes(data)
    assert doc.sha256 == hashlib.sha256(data).hexdigest()
    assert doc.size_bytes == len(data)
    assert doc.file_name == "title_body.pptx"
    assert doc.title == "Quarterly Review"
    assert doc.metadata["author"] == "Ada Lovelace"
    assert doc.metadata["slide_size_in"] == "10.00x7.50"
    assert [s.number for s in doc.slides] == [1, 2]
    assert [s.slide_id for s in doc.slides] == [ids.slide_id(doc.doc_id, 1), ids.slide_id(doc.doc_id, 2)]
    assert list(doc.warnings) == []


def test_placeholders_give_roles_titles_and_inherited_boxes(tmp_path: Path, parse: Parse) -> None:
    doc = parse(build_title_body_pptx(tmp_path))
    first, second = doc.slides
    assert first.title == "Quarterly Review"
    assert [(b.role, b.text) for b in first.blocks] == [
        (pb.BLOCK_ROLE_TITLE, "Quarterly Review"),
        (pb.BLOCK_ROLE_SUBTITLE, "Finance team"),
    ]
    assert second.title == "Agenda"
    assert [(b.role, b.text) for b in second.blocks] == [
        (pb.BLOCK_ROLE_TITLE, "Agenda"),
        (pb.BLOCK_ROLE_BODY, "Revenue grew\nCosts were flat"),
    ]
    # The slide's placeholders have no position of their own: the layout's is used.
    assert _box(second.blocks[0].box) == pytest.approx((0.05, 0.04, 0.9, 0.1667), abs=1e-3)
    assert _box(second.blocks[1].box) == pytest.approx((0.05, 0.2333, 0.9, 0.66), abs=1e-3)


def test_speaker_notes_without_slide_number(tmp_path: Path, parse: Parse) -> None:
    doc = parse(build_notes_pptx(tmp_path))
    assert doc.slides[0].notes == NOTES_TEXT


def test_table_rows_and_box(tmp_path: Path, parse: Parse) -> None:
    slide = parse(build_table_pptx(tmp_path)).slides[0]
    assert [list(r.cells) for r in slide.tables[0].rows] == TABLE_ROWS
    assert _box(slide.tables[0].box)[:2] == pytest.approx((0.1, 2 / 7.5), abs=1e-3)
    # Table text lives in the table, not duplicated in the blocks.
    assert [b.text for b in slide.blocks] == ["Sales"]


def test_chart_type_title_categories_and_series(tmp_path: Path, parse: Parse) -> None:
    slide = parse(build_chart_pptx(tmp_path)).slides[0]
    (chart,) = slide.charts
    assert chart.chart_type == "COLUMN_CLUSTERED"
    assert chart.title == "Money"
    assert list(chart.categories) == CHART_CATEGORIES
    assert {s.name: list(s.values) for s in chart.series} == CHART_SERIES
    assert _box(chart.box) == pytest.approx((0.1, 2 / 7.5, 0.8, 5 / 7.5), abs=1e-3)
    assert slide.visual_ratio == pytest.approx(0.8 * 5 / 7.5, abs=0.01)


def test_picture_facts_caption_and_visual_ratio(tmp_path: Path, parse: Parse) -> None:
    image = png_bytes(64, 48)
    slide = parse(build_picture_pptx(tmp_path, image=image)).slides[0]
    (picture,) = slide.pictures
    assert picture.name == "Logo"
    assert picture.alt_text == PICTURE_ALT_TEXT
    assert picture.content_type == "image/png"
    assert (picture.width_px, picture.height_px) == (64, 48)
    assert picture.image_sha256 == hashlib.sha256(image).hexdigest()
    assert _box(picture.box) == pytest.approx((0.1, 1 / 7.5, 0.5, 0.5), abs=1e-3)
    assert slide.visual_ratio == pytest.approx(0.25, abs=0.01)
    assert [(b.role, b.text) for b in slide.blocks] == [(pb.BLOCK_ROLE_CAPTION, "Figure 1: our logo")]
    assert slide.title == ""  # a caption is not a title


def test_picture_above_pixel_limit_is_reported(tmp_path: Path, parse: Parse) -> None:
    doc = parse(build_picture_pptx(tmp_path, image=png_bytes(64, 48)), max_image_pixels=1000)
    assert doc.slides[0].pictures[0].width_px == 64
    assert any("64x48" in w and "max_image_pixels" in w for w in doc.warnings)


def test_grouped_shapes_reading_order_and_transformed_boxes(tmp_path: Path, parse: Parse) -> None:
    slide = parse(build_grouped_shapes_pptx(tmp_path)).slides[0]
    assert [b.text for b in slide.blocks] == GROUPED_READING_ORDER
    boxes = {b.text: _box(b.box) for b in slide.blocks}
    w, h = 10.0, 7.5
    assert boxes["Group A"] == pytest.approx((1 / w, 2 / h, 2 / w, 0.5 / h), abs=1e-4)
    assert boxes["Nested B"] == pytest.approx((1 / w, 3 / h, 2 / w, 0.5 / h), abs=1e-4)
    assert boxes["Nested C"] == pytest.approx((3 / w, 3 / h, 2 / w, 0.5 / h), abs=1e-4)
    # No title placeholder: the top-most short text stands in.
    assert slide.title == "Top left"


def test_hidden_slide_flag(tmp_path: Path, parse: Parse) -> None:
    doc = parse(build_hidden_slide_pptx(tmp_path))
    assert [(s.title, s.hidden) for s in doc.slides] == [("One", False), ("Two", True), ("Three", False)]


def test_section_names(tmp_path: Path, parse: Parse) -> None:
    doc = parse(build_sections_pptx(tmp_path))
    assert [s.section for s in doc.slides] == ["Intro", "Details", "Details"]


def test_text_per_slide_is_capped_with_a_warning(tmp_path: Path, parse: Parse) -> None:
    body = ("x" * 400,)
    doc = parse(build_title_body_pptx(tmp_path, body=body), max_page_chars=50)
    second = doc.slides[1]
    assert sum(len(b.text) for b in second.blocks) == 50
    assert any("slide 2: text truncated to 50 characters" in w for w in doc.warnings)


def test_more_slides_than_allowed_is_too_large(tmp_path: Path, parse: Parse) -> None:
    with pytest.raises(DocumentTooLargeError) as info:
        parse(build_hidden_slide_pptx(tmp_path), max_pages=2)
    assert info.value.reason == "too-many-pages"


@pytest.mark.slow
def test_a_250_slide_deck_parses_in_a_few_seconds(tmp_path: Path, parse: Parse) -> None:
    path = build_many_slides_pptx(tmp_path, count=250)
    started = time.process_time()
    doc = parse(path)
    cpu = time.process_time() - started
    assert len(doc.slides) == 250
    assert all(s.notes.startswith("Speaker notes") for s in doc.slides)
    assert sum(len(s.tables) for s in doc.slides) == 25
    assert sum(len(s.pictures) for s in doc.slides) == 50
    assert cpu < 5.0, f"parsing took {cpu:.1f}s of CPU"
