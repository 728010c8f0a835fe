from __future__ import annotations

from pathlib import Path

import pytest

from osmose.config import Limits
from osmose.documents.parsing.limits import (
    WarningLog,
    cap_slide_text,
    check_page_count,
    is_blank,
    read_bounded,
)
from osmose.errors import DocumentTooLargeError, EmptyDocumentError
from osmose.v1 import document_pb2 as pb


def test_file_above_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.pdf"
    path.write_bytes(b"%PDF-1.4\n" + b"x" * 2000)
    with pytest.raises(DocumentTooLargeError) as info:
        read_bounded(path, Limits(max_file_bytes=1000))
    assert info.value.reason == "too-large"


@pytest.mark.parametrize("content", [b"", b" \r\n\t", b"\x00\x00\n"])
def test_blank_files_are_empty(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "blank.pptx"
    path.write_bytes(content)
    with pytest.raises(EmptyDocumentError) as info:
        read_bounded(path, Limits())
    assert info.value.reason == "empty"


def test_is_blank_looks_past_the_first_kilobytes() -> None:
    assert is_blank(b" " * 10_000)
    assert not is_blank(b" " * 10_000 + b"x")


def test_page_count_limit() -> None:
    check_page_count(5, Limits(max_pages=5), unit="slides")
    with pytest.raises(DocumentTooLargeError) as info:
        check_page_count(6, Limits(max_pages=5), unit="slides")
    assert info.value.reason == "too-many-pages"
    assert "6 slides" in str(info.value)


def test_warning_log_deduplicates_and_caps() -> None:
    log = WarningLog(limit=3)
    for message in ["a", "a", "b", "c", "d", "e"]:
        log.add(message)
    assert log.as_list() == ["a", "b", "c", "... and 2 more warnings"]
    assert len(log) == 5


def test_cap_slide_text_trims_in_reading_order() -> None:
    slide = pb.Slide(
        blocks=[pb.TextBlock(text="a" * 6), pb.TextBlock(text="b" * 6), pb.TextBlock(text="c" * 6)],
        tables=[pb.Table(rows=[pb.TableRow(cells=["xyz"])])],
        notes="n" * 20,
    )
    assert cap_slide_text(slide, 10)
    assert [b.text for b in slide.blocks] == ["a" * 6, "b" * 4]
    assert list(slide.tables[0].rows[0].cells) == [""]
    assert slide.notes == "n" * 10


def test_cap_slide_text_leaves_small_slides_alone() -> None:
    slide = pb.Slide(blocks=[pb.TextBlock(text="short")], notes="fine")
    assert not cap_slide_text(slide, 100)
    assert slide.blocks[0].text == "short"
