"""Every input fuzzing found (tests/fuzz/findings/, described in its README) replays here: each
must now get a verdict with a reason, or parse within bounds, and the recorded outcome."""

from __future__ import annotations

from pathlib import Path

import pytest

from osmose.config import Settings
from osmose.documents.parsing import parse_document_bytes
from tests.fuzz.targets import check_envelope, check_parse

FINDINGS = Path(__file__).resolve().parents[1] / "findings"
# file -> the outcome it has since its fix ("ok" or a DocumentError reason)
EXPECTED = {
    "pdf-surrogate-in-mupdf-warning.pdf": "ok",
    "pptx-override-without-contenttype.pptx": "corrupt",
    "pptx-relationship-without-target.pptx": "corrupt",
}


def test_every_finding_has_an_expected_outcome() -> None:
    files = {p.name for p in FINDINGS.iterdir() if p.is_file() and p.name != "README.md"}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_finding_replays_to_its_outcome(name: str) -> None:
    data = (FINDINGS / name).read_bytes()
    if name.startswith("envelope-"):
        assert check_envelope(data) == EXPECTED[name]
    else:
        assert check_parse(data, file_name=name) == EXPECTED[name]


def test_mupdf_warning_with_undecodable_bytes_is_kept_as_text() -> None:
    """MuPDF quoted raw bytes of a damaged content stream as surrogate escapes; protobuf refused
    them outside the parser's error translation (an uncaught UnicodeEncodeError)."""
    doc = parse_document_bytes((FINDINGS / "pdf-surrogate-in-mupdf-warning.pdf").read_bytes(),
                               settings=Settings(), file_name="x.pdf")
    assert any("unknown keyword" in w for w in doc.warnings)
    doc.SerializeToString()
