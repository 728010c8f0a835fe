from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path

import pymupdf
import pytest

from osmose import ids
from osmose.errors import CorruptDocumentError, DocumentTooLargeError, EncryptedDocumentError
from osmose.v1 import document_pb2 as pb
from tests.fixtures.builders import (
    TABLE_ROWS,
    build_encrypted_pdf,
    build_giant_image_pdf,
    build_image_only_pdf,
    build_table_pdf,
    build_text_pdf,
    build_two_column_pdf,
    write_truncated_copy,
)

Parse = Callable[..., pb.Document]


def test_one_slide_per_page_with_title_and_body(tmp_path: Path, parse: Parse) -> None:
    path = build_text_pdf(tmp_path, pages=3)
    doc = parse(path)
    assert doc.format == pb.SOURCE_FORMAT_PDF
    assert doc.doc_id == ids.doc_id_for_bytes(path.read_bytes())
    assert [s.number for s in doc.slides] == [1, 2, 3]
    assert [s.title for s in doc.slides] == ["Chapter 1", "Chapter 2", "Chapter 3"]
    second = doc.slides[1]
    assert [b.role for b in second.blocks] == [pb.BLOCK_ROLE_TITLE, pb.BLOCK_ROLE_BODY]
    assert second.blocks[1].text == "Body line 1 of page 2.\nBody line 2 of page 2.\nBody line 3 of page 2."
    assert 0.1 < second.blocks[0].box.x < 0.15 and second.blocks[0].box.y < 0.1
    assert doc.title == "Chapter 1"  # the metadata title is empty
    assert doc.metadata["author"] == "Test Writer"
    assert doc.metadata["page_count"] == "3"
    assert list(doc.warnings) == []


def test_columns_are_read_one_after_the_other(tmp_path: Path, parse: Parse) -> None:
    slide = parse(build_two_column_pdf(tmp_path)).slides[0]
    starts = [b.text.split(".")[0] for b in slide.blocks]
    assert starts == [
        "Two columns",
        "Left one",
        "Left two",
        "Left three",
        "Right one",
        "Right two",
        "Right three",
    ]


def test_ruled_table_becomes_rows_and_leaves_the_blocks(tmp_path: Path, parse: Parse) -> None:
    slide = parse(build_table_pdf(tmp_path)).slides[0]
    (table,) = slide.tables
    assert [list(r.cells) for r in table.rows] == TABLE_ROWS
    assert table.box.x == pytest.approx(72 / 595, abs=0.01)
    assert [b.text for b in slide.blocks] == ["Results table", "Text after the table."]


def test_image_only_page_is_all_visual(tmp_path: Path, parse: Parse) -> None:
    slide = parse(build_image_only_pdf(tmp_path)).slides[0]
    assert list(slide.blocks) == []
    (picture,) = slide.pictures
    assert (picture.width_px, picture.height_px) == (850, 1100)
    assert len(picture.image_sha256) == 64
    assert slide.visual_ratio == pytest.approx(1.0, abs=0.01)


def test_giant_declared_image_is_reported_and_never_decoded(tmp_path: Path, parse: Parse) -> None:
    path = build_giant_image_pdf(tmp_path, side=100_000)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    doc = parse(path)
    assert time.perf_counter() - started < 5
    # Decoding would need 10 GB; the peak resident size must not move by more than a little.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 200 * 1024
    picture = doc.slides[0].pictures[0]
    assert (picture.width_px, picture.height_px) == (100_000, 100_000)
    assert any("100000x100000" in w and "not be decoded" in w for w in doc.warnings)
    assert doc.slides[0].blocks[0].text == "Giant image"


def test_password_protected_pdf_is_encrypted(tmp_path: Path, parse: Parse) -> None:
    with pytest.raises(EncryptedDocumentError) as info:
        parse(build_encrypted_pdf(tmp_path))
    assert info.value.reason == "encrypted"


def test_truncated_pdf_without_pages_is_truncated(tmp_path: Path, parse: Parse) -> None:
    source = build_text_pdf(tmp_path, pages=40)
    with pytest.raises(CorruptDocumentError) as info:
        parse(write_truncated_copy(source, tmp_path / "cut.pdf", keep_fraction=0.05))
    assert info.value.reason == "truncated"
    assert "cut short" in str(info.value)


def _without_xref(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: data.rindex(b"\nxref") + 1])  # objects intact, xref and trailer gone
    return target


def test_pdf_cut_before_its_xref_is_repaired_with_a_warning(tmp_path: Path, parse: Parse) -> None:
    doc = parse(_without_xref(build_text_pdf(tmp_path, pages=40), tmp_path / "cut.pdf"))
    assert len(doc.slides) == 40
    assert doc.slides[39].title == "Chapter 40"
    assert any("repaired" in w for w in doc.warnings)


def test_pdf_with_an_empty_page_tree_has_no_pages(tmp_path: Path, parse: Parse) -> None:
    path = tmp_path / "empty.pdf"
    path.write_bytes(
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )
    with pytest.raises(Exception) as info:
        parse(path)
    assert getattr(info.value, "reason", None) in {"no-pages", "corrupt"}


def test_more_pages_than_allowed_is_too_large(tmp_path: Path, parse: Parse) -> None:
    with pytest.raises(DocumentTooLargeError) as info:
        parse(build_text_pdf(tmp_path, pages=5), max_pages=4)
    assert info.value.reason == "too-many-pages"


def test_garbage_after_pdf_header_is_corrupt(tmp_path: Path, parse: Parse) -> None:
    path = tmp_path / "junk.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 4)
    with pytest.raises(CorruptDocumentError):
        parse(path)


def test_mupdf_messages_do_not_leak_to_stderr(
    tmp_path: Path, parse: Parse, capfd: pytest.CaptureFixture[str]
) -> None:
    parse(_without_xref(build_text_pdf(tmp_path, pages=5), tmp_path / "cut.pdf"))
    captured = capfd.readouterr()
    assert "MuPDF" not in captured.err and "mupdf" not in captured.err.lower()
    assert pymupdf.TOOLS.mupdf_warnings(reset=False) == ""
