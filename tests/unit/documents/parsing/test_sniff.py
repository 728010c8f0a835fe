from __future__ import annotations

from pathlib import Path

import pytest

from osmose.documents.parsing import detect_format
from osmose.documents.parsing.sniff import classify_ole_streams, describe_bytes, extension_warning
from osmose.errors import (
    CorruptDocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    UnsupportedFormatError,
)
from osmose.v1 import document_pb2 as pb
from tests.fixtures.builders import build_ole2_file, build_text_pdf, build_title_body_pptx


def test_detects_pptx_and_pdf_from_content(tmp_path: Path) -> None:
    assert detect_format(build_title_body_pptx(tmp_path).read_bytes()) == pb.SOURCE_FORMAT_PPTX
    assert detect_format(build_text_pdf(tmp_path).read_bytes()) == pb.SOURCE_FORMAT_PDF


def test_pdf_header_after_leading_junk_is_still_pdf(tmp_path: Path) -> None:
    data = b"\r\n   garbage\n" + build_text_pdf(tmp_path).read_bytes()
    assert detect_format(data) == pb.SOURCE_FORMAT_PDF


def test_legacy_ppt_is_an_ole2_file_with_a_powerpoint_stream(tmp_path: Path) -> None:
    path = build_ole2_file(tmp_path / "deck.ppt", {"PowerPoint Document": b"x", "Current User": b"u"})
    assert detect_format(path.read_bytes()) == pb.SOURCE_FORMAT_PPT


@pytest.mark.parametrize(
    ("streams", "error", "reason"),
    [
        ({"EncryptedPackage": b"e", "EncryptionInfo": b"i"}, EncryptedDocumentError, "encrypted"),
        ({"PowerPoint Document": b"p", "EncryptedSummary": b"s"}, EncryptedDocumentError, "encrypted"),
        ({"PP40": b"p", "\x05SummaryInformation": b"s"}, UnsupportedFormatError, "unsupported-legacy-format"),
        ({"WordDocument": b"w"}, UnsupportedFormatError, "not-a-presentation"),
        ({"Something": b"s"}, UnsupportedFormatError, "not-a-presentation"),
    ],
)
def test_ole2_files_that_are_not_readable_decks_are_rejected(
    tmp_path: Path, streams: dict[str, bytes], error: type[Exception], reason: str
) -> None:
    path = build_ole2_file(tmp_path / "file.ppt", streams)
    with pytest.raises(error) as info:
        detect_format(path.read_bytes())
    assert info.value.reason == reason  # type: ignore[attr-defined]


def test_damaged_ole2_container_is_corrupt() -> None:
    data = bytes.fromhex("D0CF11E0A1B11AE1") + b"\xff" * 600
    with pytest.raises(CorruptDocumentError):
        detect_format(data)


def test_short_ole2_bytes_are_never_taken_for_a_file_name() -> None:
    # olefile treats a short bytes object as a path; the sniffer must not.
    with pytest.raises(CorruptDocumentError):
        detect_format(bytes.fromhex("D0CF11E0A1B11AE1") + b"/etc/passwd")


@pytest.mark.parametrize("data", [b"", b"   \n\t ", b"\x00" * 100])
def test_empty_content_is_empty(data: bytes) -> None:
    with pytest.raises(EmptyDocumentError):
        detect_format(data)


@pytest.mark.parametrize(
    ("data", "label"),
    [
        (b"<!DOCTYPE html>\n<html><body>hi</body></html>", "an HTML page"),
        (b"\xef\xbb\xbf<html><head></head></html>", "an HTML page"),
        (b"just some notes\nin a text file\n", "plain text"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 30, "a PNG image"),
    ],
)
def test_other_content_is_not_a_presentation(data: bytes, label: str) -> None:
    assert describe_bytes(data) == label
    with pytest.raises(UnsupportedFormatError) as info:
        detect_format(data)
    assert info.value.reason == "not-a-presentation"
    assert label in str(info.value)


def test_extension_warning_only_when_name_and_content_disagree() -> None:
    assert extension_warning("deck.pptx", pb.SOURCE_FORMAT_PPTX) is None
    assert extension_warning("deck.PPSX", pb.SOURCE_FORMAT_PPTX) is None
    assert extension_warning("no-extension", pb.SOURCE_FORMAT_PDF) is None
    warning = extension_warning("deck.ppt", pb.SOURCE_FORMAT_PPTX)
    assert warning is not None and ".ppt" in warning and "PPTX" in warning


def test_encryption_wins_over_powerpoint_stream() -> None:
    with pytest.raises(EncryptedDocumentError):
        classify_ole_streams({"PowerPoint Document", "EncryptedSummary", "Current User"})
    assert classify_ole_streams({"PowerPoint Document", "Current User"}) == pb.SOURCE_FORMAT_PPT
