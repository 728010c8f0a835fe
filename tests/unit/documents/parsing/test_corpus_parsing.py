"""The parser against the shared corpus of real decks and PDFs (../shared/corpus).

Every file in ``pptx/`` and ``pdf/`` must parse with exactly the MANIFEST's
slide/page count and carry the speaker notes the MANIFEST lists; every file in
``bad/`` must either be rejected with a specific reason or parse its valid part
with warnings, as listed in :data:`BAD_OUTCOMES`. Skipped with a reason when the
corpus is absent.
"""

from __future__ import annotations

import csv
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from osmose.config import Settings
from osmose.documents.parsing import parse_document
from osmose.errors import DocumentError
from osmose.v1 import document_pb2 as pb
from tests.support import CORPUS

pytestmark = pytest.mark.corpus

MANIFEST = CORPUS / "MANIFEST.tsv"
# LibreOffice drops this deck's notes when converting it to PPTX (documented in the MANIFEST).
NOTES_LOST_IN_CONVERSION = {"pptx/poi-41246-fr.ppt"}
# Warnings that would mean the parser lost content of a sound file.
_LOSS = re.compile(r"skipped \(|unreadable|missing from the package")


@dataclass(frozen=True)
class Rejected:
    reasons: frozenset[str]


@dataclass(frozen=True)
class Salvaged:
    slides: int
    warning: str  # a fragment one of the warnings must contain
    min_notes: int = 0


BAD_OUTCOMES: dict[str, Rejected | Salvaged] = {
    "owasp-2010-rc1-html-as-pptx.pptx": Rejected(frozenset({"not-a-presentation"})),
    "owasp-top10-2017-en-truncated-upload.pdf": Rejected(frozenset({"truncated"})),
    "pdfjs-bomb-giant.pdf": Salvaged(1, "image only stream"),
    "pdfjs-ghostscript-698804-fuzzed.pdf": Rejected(frozenset({"corrupt"})),
    "pdfjs-pages-tree-cycle.pdf": Salvaged(2, "cycle in page tree"),
    "pdfjs-poppler-67295-0.pdf": Rejected(frozenset({"corrupt"})),
    "poi-divino-revelado-truncated.pptx": Salvaged(12, "no central directory"),
    "poi-password-protected.ppt": Rejected(frozenset({"encrypted"})),
    "poi-pp40only.ppt": Rejected(frozenset({"unsupported-legacy-format"})),
    "poi-stress022-ppsx-as-pptx.pptx": Salvaged(45, "slideshow (.ppsx)"),
    "poi-xslf-fuzz-5471515212382208.pptx": Salvaged(1, "damaged central directory"),
    "pypdf-02voc-1byte.pdf": Rejected(frozenset({"empty"})),
    "pypdfsf-libreoffice-password.pdf": Rejected(frozenset({"encrypted"})),
    "tika-protected-passtika.pptx": Rejected(frozenset({"encrypted"})),
    "truncated-pdfjs-tracemonkey.pdf": Rejected(frozenset({"truncated"})),
    "truncated-sql2019-modern-data-platform.pptx": Rejected(frozenset({"truncated"})),
    "unst-eng-spa-mult-pptx-as-ppt.ppt": Salvaged(6, "file name ends in .ppt", min_notes=1),
}


def _rows(kind: str) -> list[object]:
    if not MANIFEST.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"corpus not found at {CORPUS}"))]
    with MANIFEST.open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["path"].startswith(kind)]
    return [pytest.param(r, id=r["path"]) for r in rows]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("corpus-data"))


def _expected_notes(has_notes: str) -> int | None:
    """Slides with notes per the MANIFEST: a number, 0 for "no", None when unspecified."""
    if has_notes.startswith("no"):
        return 0
    match = re.search(r"\((\d+) (?:slides with notes|notes pages)", has_notes)
    return int(match.group(1)) if match else None


@pytest.mark.parametrize("row", _rows("pptx/") + _rows("pdf/"))
def test_good_file_parses_completely(row: dict[str, str], settings: Settings) -> None:
    path = CORPUS / row["path"]
    started = time.perf_counter()
    doc = parse_document(path, settings=settings)
    elapsed = time.perf_counter() - started
    expected_pages = int(row["slides_or_pages"])
    assert len(doc.slides) == expected_pages
    assert [s.number for s in doc.slides] == list(range(1, expected_pages + 1))
    assert len({s.slide_id for s in doc.slides}) == expected_pages
    assert doc.size_bytes == int(row["bytes"])
    assert doc.sha256 == row["sha256"]
    assert not [w for w in doc.warnings if _LOSS.search(w)], list(doc.warnings)
    if row["kind"] != "pdf" and row["path"] not in NOTES_LOST_IN_CONVERSION:
        with_notes = sum(1 for s in doc.slides if s.notes.strip())
        expected = _expected_notes(row["has_notes"])
        if expected is None:
            assert with_notes > 0
        else:
            assert with_notes == expected
    if row["kind"] == "ppt":
        assert doc.format == pb.SOURCE_FORMAT_PPT
    for slide in doc.slides:
        assert 0.0 <= slide.visual_ratio <= 1.0
        for block in slide.blocks:
            assert block.text.strip()
            assert 0.0 <= block.box.x <= 1.0 and 0.0 <= block.box.y <= 1.0
    assert elapsed < 120, f"{row['path']} took {elapsed:.1f}s"


@pytest.mark.parametrize("row", _rows("bad/"))
def test_bad_file_is_rejected_or_salvaged(row: dict[str, str], settings: Settings) -> None:
    name = Path(row["path"]).name
    expected = BAD_OUTCOMES[name]
    path = CORPUS / row["path"]
    if isinstance(expected, Rejected):
        with pytest.raises(DocumentError) as info:
            parse_document(path, settings=settings)
        assert info.value.reason in expected.reasons, str(info.value)
        assert str(info.value).split(": ", 1)[1], "the message says what happened"
        return
    doc = parse_document(path, settings=settings)
    assert len(doc.slides) == expected.slides
    assert any(expected.warning in w for w in doc.warnings), list(doc.warnings)
    assert sum(1 for s in doc.slides if s.notes) >= expected.min_notes


def test_every_bad_file_has_an_expected_outcome() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS}")
    assert sorted(p.name for p in (CORPUS / "bad").iterdir()) == sorted(BAD_OUTCOMES)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "cpu_budget_s"),
    [("pptx/amp-lecture06.pptx", 6.0), ("pdf/unst-da-619p.pdf", 20.0)],
)
def test_large_files_parse_within_budget(name: str, cpu_budget_s: float, settings: Settings) -> None:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus file not found: {path}")
    started = time.process_time()
    doc = parse_document(path, settings=settings)
    cpu = time.process_time() - started
    assert doc.slides
    assert cpu < cpu_budget_s, f"{name}: {cpu:.1f}s of CPU"
