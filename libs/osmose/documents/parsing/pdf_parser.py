"""PDF files into :class:`pb.Slide` messages, one per page (PyMuPDF).

MuPDF repairs what it can when opening (broken xref, page-tree cycles); its
warnings become document warnings. A page that fails to load stays in the
document as an empty slide with a warning, so page numbers and the page count
are exact. Files that yield no page at all are rejected with a reason.

PyMuPDF is not thread-safe, and its warning store is process-global, so all
PyMuPDF work in this module runs under :data:`PYMUPDF_LOCK` (other users of
PyMuPDF in the same process should take it too).
"""

from __future__ import annotations

import logging
import re
import threading

from osmose.config import Settings
from osmose.documents.parsing.limits import WarningLog, cap_slide_text, check_page_count, utf8_safe
from osmose.documents.parsing.ooxml_text import one_line
from osmose.documents.parsing.pdf_page import ImageHashes, read_page
from osmose.documents.parsing.pdf_tables import TableBudget
from osmose.documents.pymupdf_loader import pymupdf
from osmose.errors import CorruptDocumentError, EmptyDocumentError, EncryptedDocumentError
from osmose.v1 import document_pb2 as pb

__all__ = ["PYMUPDF_LOCK", "parse_pdf"]

logger = logging.getLogger(__name__)

PYMUPDF_LOCK = threading.RLock()
MAX_MUPDF_WARNINGS = 10
# Exceptions PyMuPDF raises for damaged input (FileDataError is a RuntimeError).
_MUPDF_ERRORS: tuple[type[Exception], ...] = (RuntimeError, ValueError, IndexError, pymupdf.mupdf.FzErrorBase)
# Metadata titles that are file names or tool defaults rather than titles.
_JUNK_TITLE = re.compile(
    r"^(untitled|microsoft (word|powerpoint) - .*|.*\.(docx?|pptx?|pdf|indd|tex|dvi|qxd))$", re.I
)
# A page object (/Type /Page, not /Pages) in the raw bytes.
_PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_quiet = False


def parse_pdf(data: bytes, *, doc: pb.Document, settings: Settings, warnings: WarningLog) -> None:
    """Fill `doc` (slides, title, metadata) from the PDF bytes `data`."""
    with PYMUPDF_LOCK:
        _silence_mupdf_console()
        pymupdf.TOOLS.reset_mupdf_warnings()
        try:
            pdf = pymupdf.open(stream=data, filetype="pdf")
        except _MUPDF_ERRORS as exc:
            if _looks_truncated(data):
                raise CorruptDocumentError(
                    f"PDF ends without its cross-reference table and trailer (it was cut short) "
                    f"and MuPDF cannot open what remains: {exc}",
                    reason="truncated",
                ) from exc
            raise CorruptDocumentError(f"MuPDF cannot open this PDF: {exc}") from exc
        try:
            _parse_open_pdf(pdf, data, doc=doc, settings=settings, warnings=warnings)
        finally:
            pdf.close()
            for line in _mupdf_warnings()[:MAX_MUPDF_WARNINGS]:
                warnings.add(f"mupdf: {line}")


def _parse_open_pdf(
    pdf: pymupdf.Document, data: bytes, *, doc: pb.Document, settings: Settings, warnings: WarningLog
) -> None:
    if pdf.needs_pass:
        raise EncryptedDocumentError("PDF is password-protected; remove the password and resubmit")
    try:
        count = pdf.page_count
    except _MUPDF_ERRORS as exc:
        if _looks_truncated(data):
            raise CorruptDocumentError(
                f"PDF ends without its cross-reference table and trailer (it was cut short) "
                f"and its page tree is unreadable: {exc}",
                reason="truncated",
            ) from exc
        raise CorruptDocumentError(f"PDF page tree is unreadable: {exc}") from exc
    if count == 0:
        _reject_pageless(pdf, data)
    check_page_count(count, settings.limits, unit="pages")
    if pdf.is_repaired:
        warnings.add("PDF structure was damaged and repaired by MuPDF; some content may be missing")
    hashes = ImageHashes(pdf)
    tables = TableBudget()
    for index in range(count):
        number = index + 1
        try:
            slide = read_page(
                pdf.load_page(index),
                number=number,
                hashes=hashes,
                tables=tables,
                max_image_pixels=settings.limits.max_image_pixels,
                warnings=warnings,
                max_chars=settings.limits.max_page_chars,
            )
        except _MUPDF_ERRORS as exc:
            logger.debug("page %d unreadable", number, exc_info=True)
            warnings.add(f"page {number}: unreadable ({exc}); kept as an empty page")
            slide = pb.Slide(number=number)
        if cap_slide_text(slide, settings.limits.max_page_chars):
            warnings.add(f"page {number}: text truncated to {settings.limits.max_page_chars:,} characters")
        doc.slides.append(slide)
    if tables.skipped:
        warnings.add(
            f"table detection skipped on {tables.skipped} ruled pages (bound of pages per document reached)"
        )
    _fill_metadata(pdf, doc)


def _reject_pageless(pdf: pymupdf.Document, data: bytes) -> None:
    if _looks_truncated(data):
        raise CorruptDocumentError(
            "PDF has no readable page: the file ends without its cross-reference table and trailer "
            "(it was cut short) and MuPDF's repair recovered no page",
            reason="truncated",
        )
    if pdf.is_repaired or _has_mupdf_warnings() or _PAGE_OBJECT.search(data):
        raise CorruptDocumentError(
            "PDF has no readable page although it holds page objects: its cross-reference table "
            "or page tree is damaged"
        )
    raise EmptyDocumentError("PDF has no pages", reason="no-pages")


def _fill_metadata(pdf: pymupdf.Document, doc: pb.Document) -> None:
    meta = pdf.metadata or {}
    for key in ("author", "creator", "producer", "subject", "format", "encryption"):
        value = meta.get(key)
        if value:
            doc.metadata[key] = utf8_safe(str(value).strip()[:500])
    doc.metadata["page_count"] = str(len(doc.slides))
    try:
        first = pdf.load_page(0).rect
        doc.metadata["page_size_pt"] = f"{first.width:.0f}x{first.height:.0f}"
    except _MUPDF_ERRORS:
        pass
    title = utf8_safe(one_line(meta.get("title") or ""))
    if title and not _JUNK_TITLE.match(title):
        doc.title = title
    else:
        doc.title = next((s.title for s in doc.slides if s.title), "")


def _looks_truncated(data: bytes) -> bool:
    """A complete PDF ends with ``startxref`` and ``%%EOF`` (allowing trailing junk)."""
    tail = data[-2048:]
    return b"%%EOF" not in tail and b"startxref" not in tail


def _has_mupdf_warnings() -> bool:
    return bool(pymupdf.TOOLS.mupdf_warnings(reset=False))


def _mupdf_warnings() -> list[str]:
    raw = pymupdf.TOOLS.mupdf_warnings(reset=True) or ""
    lines: list[str] = []
    for line in raw.splitlines():
        line = line.strip()
        if line and line not in lines:
            lines.append(line)
    return lines


def _silence_mupdf_console() -> None:
    # MuPDF prints errors to stderr by default; they are collected as warnings instead.
    global _quiet
    if not _quiet:
        pymupdf.TOOLS.mupdf_display_errors(False)
        pymupdf.TOOLS.mupdf_display_warnings(False)
        recommend = getattr(pymupdf, "no_recommend_layout", None)
        if callable(recommend):
            recommend()  # find_tables would otherwise print an advert for pymupdf_layout
        _quiet = True
