from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from osmose.config import Limits, Settings
from osmose.documents.parsing import ConverterMissingError, parse_document
from osmose.errors import ConfigurationError, CorruptDocumentError, DocumentError
from osmose.v1 import document_pb2 as pb
from tests.fixtures.builders import NOTES_TEXT, build_legacy_ppt, build_ole2_file

Parse = Callable[..., pb.Document]
SOFFICE = shutil.which("soffice")
needs_soffice = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed")


def _fake_ppt(tmp_path: Path) -> Path:
    return build_ole2_file(
        tmp_path / "fake.ppt", {"PowerPoint Document": b"garbage" * 100, "Current User": b"u"}
    )


def test_missing_soffice_on_path_is_a_configuration_error(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConverterMissingError) as info:
        parse_document(_fake_ppt(tmp_path), settings=settings)
    assert isinstance(info.value, ConfigurationError)
    assert "LibreOffice" in str(info.value) and "make setup" in str(info.value)


def test_configured_soffice_that_does_not_exist(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, soffice=str(tmp_path / "no-such-soffice"))
    with pytest.raises(ConverterMissingError, match="OSMOSE_SOFFICE"):
        parse_document(_fake_ppt(tmp_path), settings=settings)


def test_conversion_timeout_kills_the_converter(tmp_path: Path) -> None:
    fake = tmp_path / "soffice"
    fake.write_text("#!/bin/sh\nsleep 30 &\nsleep 30\n")
    fake.chmod(0o755)
    settings = Settings(data_dir=tmp_path, soffice=str(fake), limits=Limits(convert_timeout_s=0.5))
    started = time.perf_counter()
    with pytest.raises(DocumentError) as info:
        parse_document(_fake_ppt(tmp_path), settings=settings)
    assert info.value.reason == "conversion-timeout"
    assert time.perf_counter() - started < 10


@needs_soffice
@pytest.mark.slow
def test_unreadable_powerpoint_stream_fails_conversion(tmp_path: Path, parse: Parse) -> None:
    with pytest.raises(CorruptDocumentError) as info:
        parse(_fake_ppt(tmp_path))
    assert info.value.reason == "conversion-failed"
    assert "javaldx" not in str(info.value)


@needs_soffice
@pytest.mark.slow
def test_legacy_ppt_is_converted_then_parsed(tmp_path: Path, parse: Parse) -> None:
    path = build_legacy_ppt(tmp_path, soffice=SOFFICE or "soffice")
    doc = parse(path)
    assert doc.format == pb.SOURCE_FORMAT_PPT
    assert doc.file_name == "legacy.ppt"
    assert [s.title for s in doc.slides] == ["Quarterly Review", "Agenda"]
    assert doc.slides[1].notes == NOTES_TEXT
    assert doc.metadata["converted_with"] == "libreoffice"
    assert any("converted to PPTX with LibreOffice" in w for w in doc.warnings)
