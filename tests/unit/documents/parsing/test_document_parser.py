from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from osmose.config import Limits, Settings
from osmose.documents.parsing import document_parser, parse_document, parse_document_bytes
from osmose.errors import CorruptDocumentError, DocumentError, DocumentTooLargeError, RetryableError
from osmose.v1 import document_pb2 as pb
from tests.fixtures.builders import build_title_body_pptx

Parse = Callable[..., pb.Document]


def test_submitted_name_is_recorded_as_a_base_name(tmp_path: Path, settings: Settings) -> None:
    path = build_title_body_pptx(tmp_path, name="x.pptx")
    doc = parse_document(path, settings=settings, file_name="uploads/2024/Board Deck.pptx")
    assert doc.file_name == "Board Deck.pptx"
    assert list(doc.warnings) == []


def test_content_wins_over_the_extension(tmp_path: Path, settings: Settings) -> None:
    path = build_title_body_pptx(tmp_path, name="misnamed.ppt")
    doc = parse_document(path, settings=settings)
    assert doc.format == pb.SOURCE_FORMAT_PPTX
    assert len(doc.slides) == 2
    assert any(".ppt" in w and "PPTX" in w for w in doc.warnings)


def test_bytes_api_applies_the_size_limit(settings: Settings) -> None:
    small = Settings(data_dir=settings.data_dir, limits=Limits(max_file_bytes=10))
    with pytest.raises(DocumentTooLargeError):
        parse_document_bytes(b"%PDF-1.4 " * 10, settings=small, file_name="a.pdf")


@pytest.mark.parametrize(
    ("raised", "expected", "reason"),
    [
        (KeyError("no member 'ppt/slides/slide9.xml'"), CorruptDocumentError, "corrupt"),
        (ValueError("bad value"), CorruptDocumentError, "corrupt"),
        (RuntimeError("code=7: broken"), CorruptDocumentError, "corrupt"),
        (MemoryError(), DocumentTooLargeError, "out-of-memory"),
        (OSError(28, "No space left on device"), RetryableError, None),
        (AttributeError("'NoneType' object has no attribute 'x'"), DocumentError, "unreadable"),
    ],
)
def test_dependency_exceptions_are_translated(
    tmp_path: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    raised: BaseException,
    expected: type[Exception],
    reason: str | None,
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise raised

    monkeypatch.setattr(document_parser, "parse_pptx", explode)
    with caplog.at_level(logging.ERROR), pytest.raises(expected) as info:
        parse_document(build_title_body_pptx(tmp_path), settings=settings)
    assert getattr(info.value, "reason", None) == reason
    assert info.value.__cause__ is raised
    # Only the unexpected kind is logged with a traceback (it may be a parser bug).
    assert any(r.exc_info for r in caplog.records) == (reason == "unreadable")


def test_missing_file_is_an_os_error(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(FileNotFoundError):
        parse_document(tmp_path / "nope.pptx", settings=settings)
