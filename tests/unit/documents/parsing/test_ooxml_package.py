from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from osmose.documents.parsing.ooxml_salvage import rebuild_zip, scan_local_entries
from osmose.errors import (
    CorruptDocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    UnsupportedFormatError,
)
from osmose.v1 import document_pb2 as pb
from tests.fixtures.builders import (
    build_docx_like_zip,
    build_many_slides_pptx,
    build_slideshow_ppsx,
    build_title_body_pptx,
    build_zip_bomb_pptx,
    write_truncated_copy,
)

Parse = Callable[..., pb.Document]


def _rewrite(path: Path, edit: Callable[[dict[str, bytes]], None]) -> Path:
    with zipfile.ZipFile(path) as zf:
        entries = {i.filename: zf.read(i) for i in zf.infolist()}
    edit(entries)
    path.write_bytes(rebuild_zip(entries))
    return path


def test_slideshow_main_part_is_read_as_a_presentation(tmp_path: Path, parse: Parse) -> None:
    doc = parse(build_slideshow_ppsx(tmp_path))
    assert [s.title for s in doc.slides] == ["Slideshow", "Agenda"]
    assert any("slideshow (.ppsx)" in w for w in doc.warnings)


def test_truncated_deck_keeps_the_slides_it_still_has(tmp_path: Path, parse: Parse) -> None:
    source = build_many_slides_pptx(tmp_path, count=20)
    doc = parse(write_truncated_copy(source, tmp_path / "cut.pptx", keep_fraction=0.6))
    assert len(doc.slides) == 20  # numbering of the original deck is kept
    readable = [s for s in doc.slides if s.title]
    assert 0 < len(readable) < 20
    assert readable[0].title == "Slide 1: topic 1"
    assert any("no central directory" in w for w in doc.warnings)
    assert any("slides missing from the package" in w for w in doc.warnings)


def test_truncated_deck_without_any_slide_is_rejected_as_truncated(tmp_path: Path, parse: Parse) -> None:
    source = build_many_slides_pptx(tmp_path, count=20)
    with pytest.raises(CorruptDocumentError) as info:
        parse(write_truncated_copy(source, tmp_path / "cut.pptx", keep_fraction=0.3))
    assert info.value.reason == "truncated"


def test_truncated_before_the_package_index_is_truncated(tmp_path: Path, parse: Parse) -> None:
    source = build_title_body_pptx(tmp_path)
    with pytest.raises(CorruptDocumentError) as info:
        parse(write_truncated_copy(source, tmp_path / "cut.pptx", keep_fraction=0.02))
    assert info.value.reason == "truncated"


def test_damaged_member_is_dropped_and_the_rest_parsed(tmp_path: Path, parse: Parse) -> None:
    path = build_title_body_pptx(tmp_path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("docProps/app.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start : start + 8] = b"\xff" * 8  # corrupt the deflate stream of one member
    path.write_bytes(bytes(data))
    doc = parse(path)
    assert [s.title for s in doc.slides] == ["Quarterly Review", "Agenda"]
    assert any("docProps/app.xml" in w for w in doc.warnings)


def test_zip_bomb_is_refused_before_inflating(tmp_path: Path, parse: Parse) -> None:
    path = build_zip_bomb_pptx(tmp_path, uncompressed_bytes=20_000_000)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(DocumentTooLargeError) as info:
        parse(path, max_file_bytes=2_000_000)
    assert info.value.reason == "uncompressed-too-large"


def test_word_document_is_not_a_presentation(tmp_path: Path, parse: Parse) -> None:
    with pytest.raises(UnsupportedFormatError) as info:
        parse(build_docx_like_zip(tmp_path))
    assert info.value.reason == "not-a-presentation"
    assert "Word" in str(info.value)


def test_plain_zip_is_not_a_presentation(tmp_path: Path, parse: Parse) -> None:
    path = tmp_path / "archive.pptx"
    path.write_bytes(rebuild_zip({"readme.txt": b"hello"}))
    with pytest.raises(UnsupportedFormatError) as info:
        parse(path)
    assert info.value.reason == "not-a-presentation"


def test_deck_without_slides_is_empty(tmp_path: Path, parse: Parse) -> None:
    def drop_slides(entries: dict[str, bytes]) -> None:
        xml = entries["ppt/presentation.xml"]
        start, end = xml.index(b"<p:sldIdLst>"), xml.index(b"</p:sldIdLst>") + len(b"</p:sldIdLst>")
        entries["ppt/presentation.xml"] = xml[:start] + xml[end:]

    path = _rewrite(build_title_body_pptx(tmp_path), drop_slides)
    with pytest.raises(EmptyDocumentError) as info:
        parse(path)
    assert info.value.reason == "no-slides"


def test_missing_slide_part_keeps_numbering(tmp_path: Path, parse: Parse) -> None:
    path = _rewrite(build_title_body_pptx(tmp_path), lambda e: e.pop("ppt/slides/slide1.xml"))
    doc = parse(path)
    assert [(s.number, s.title) for s in doc.slides] == [(1, ""), (2, "Agenda")]
    assert "1 slides missing from the package, kept as empty slides: 1" in doc.warnings


def test_malformed_xml_in_main_part_is_corrupt(tmp_path: Path, parse: Parse) -> None:
    def break_xml(entries: dict[str, bytes]) -> None:
        entries["ppt/presentation.xml"] = entries["ppt/presentation.xml"][:200]

    with pytest.raises(CorruptDocumentError):
        parse(_rewrite(build_title_body_pptx(tmp_path), break_xml))


def test_scan_local_entries_recovers_members_in_order(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.xml", b"<a/>" * 100)
        zf.writestr("b.xml", b"<b/>" * 100)
    data = path.read_bytes()
    result = scan_local_entries(data[: len(data) - 60], max_total_bytes=10_000)
    assert result.entries == {"a.xml": b"<a/>" * 100, "b.xml": b"<b/>" * 100}


def test_scan_local_entries_respects_the_memory_bound(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(1_000_000))
    result = scan_local_entries(path.read_bytes(), max_total_bytes=10_000)
    assert result.entries == {}
    assert result.problems
