"""What a file really is, from its bytes (the name's extension is only a hint).

* OOXML zip (``PK\\x03\\x04``)  -> PPTX; the zip's main part is checked later by
  :mod:`osmose.documents.parsing.ooxml_package` (Word/Excel zips are rejected there).
* ``%PDF-`` in the first KiB   -> PDF.
* OLE2 compound file           -> legacy .ppt when it has a ``PowerPoint Document``
  stream; rejected when encrypted (``EncryptedSummary``: password-protected .ppt;
  ``EncryptedPackage``: password-protected OOXML), PowerPoint 4.0 (``PP40``),
  or another Office binary.
* anything else (HTML, text, images...) -> ``not-a-presentation``.
"""

from __future__ import annotations

import io
import logging
from pathlib import PurePath

import olefile

from osmose.documents.parsing.limits import is_blank
from osmose.errors import (
    CorruptDocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    UnsupportedFormatError,
)
from osmose.v1 import document_pb2 as pb

__all__ = ["EXTENSIONS", "classify_ole_streams", "describe_bytes", "detect_format", "extension_warning"]

logger = logging.getLogger(__name__)

OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
PDF_MAGIC = b"%PDF-"
# The PDF header may follow some junk bytes; readers accept it within the first KiB.
_PDF_HEADER_WINDOW = 1024

# File-name extensions that agree with each detected format.
EXTENSIONS: dict[int, frozenset[str]] = {
    pb.SOURCE_FORMAT_PPTX: frozenset({".pptx", ".pptm", ".ppsx", ".ppsm", ".potx", ".potm"}),
    pb.SOURCE_FORMAT_PDF: frozenset({".pdf"}),
    pb.SOURCE_FORMAT_PPT: frozenset({".ppt", ".pps", ".pot"}),
}
_FORMAT_LABEL = {
    pb.SOURCE_FORMAT_PPTX: "an OOXML presentation (PPTX)",
    pb.SOURCE_FORMAT_PDF: "a PDF",
    pb.SOURCE_FORMAT_PPT: "a legacy PowerPoint 97-2003 file (PPT)",
}

_OTHER_OLE_KINDS = {
    "WordDocument": "a Word 97-2003 document",
    "Workbook": "an Excel 97-2003 workbook",
    "Book": "an Excel 5 workbook",
    "VisioDocument": "a Visio drawing",
}


def detect_format(data: bytes) -> pb.SourceFormat:
    """PPTX, PDF or PPT for content that may be a presentation; otherwise raise a
    :class:`~osmose.errors.DocumentError` that says what the bytes are."""
    if is_blank(data):
        raise EmptyDocumentError("file is empty" if not data else "file holds only whitespace/NUL bytes")
    if data.startswith(OLE2_MAGIC):
        return _classify_ole2(data)
    if data[:4] in ZIP_MAGICS:
        return pb.SOURCE_FORMAT_PPTX
    if PDF_MAGIC in data[:_PDF_HEADER_WINDOW]:
        return pb.SOURCE_FORMAT_PDF
    raise UnsupportedFormatError(
        f"content is {describe_bytes(data)}, not a presentation or PDF", reason="not-a-presentation"
    )


def extension_warning(file_name: str, fmt: pb.SourceFormat) -> str | None:
    """A warning when the file name's extension disagrees with the detected content."""
    ext = PurePath(file_name).suffix.lower()
    if not ext or ext in EXTENSIONS.get(fmt, frozenset()):
        return None
    return f"file name ends in {ext} but the content is {_FORMAT_LABEL[fmt]}; parsed as such"


def describe_bytes(data: bytes) -> str:
    """A short human description of unrecognised content, for error messages."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:256]:
        return "an HTML page"
    if head.startswith(b"<?xml"):
        return "an XML file"
    if head.startswith(b"{\\rtf"):
        return "an RTF document"
    for magic, label in (
        (b"\x89png", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"gif8", "a GIF image"),
        (b"\x1f\x8b", "a gzip archive"),
        (b"7z\xbc\xaf", "a 7-Zip archive"),
        (b"rar!", "a RAR archive"),
    ):
        if head.startswith(magic):
            return label
    try:
        data[:2048].decode("utf-8")
    except UnicodeDecodeError:
        return f"unrecognised binary data (starts with {data[:8].hex()})"
    return "plain text"


def classify_ole_streams(names: set[str]) -> pb.SourceFormat:
    """Decide from the top-level stream names of an OLE2 file; raise when it is
    not a readable PowerPoint 97-2003 file. Order matters: an encrypted .ppt also
    has a 'PowerPoint Document' stream."""
    if "EncryptedPackage" in names:
        raise EncryptedDocumentError(
            "password-protected Office file (OOXML content inside an encrypted OLE2 container); "
            "remove the password and resubmit"
        )
    if "EncryptedSummary" in names:
        raise EncryptedDocumentError(
            "password-protected PowerPoint 97-2003 file; remove the password and resubmit"
        )
    if "PowerPoint Document" in names:
        return pb.SOURCE_FORMAT_PPT
    if "PP40" in names:
        raise UnsupportedFormatError(
            "PowerPoint 4.0 binary (pre-97, no 'PowerPoint Document' stream); "
            "save it as .pptx with a newer PowerPoint and resubmit",
            reason="unsupported-legacy-format",
        )
    for stream, label in _OTHER_OLE_KINDS.items():
        if stream in names:
            raise UnsupportedFormatError(
                f"content is {label}, not a presentation", reason="not-a-presentation"
            )
    raise UnsupportedFormatError(
        f"OLE2 compound file without a PowerPoint stream (streams: {sorted(names)[:8]})",
        reason="not-a-presentation",
    )


def _classify_ole2(data: bytes) -> pb.SourceFormat:
    try:
        # Always a stream: olefile treats short bytes objects as a file name.
        ole = olefile.OleFileIO(io.BytesIO(data))
        try:
            names = {entry[0] for entry in ole.listdir(streams=True, storages=True) if entry}
        finally:
            ole.close()
    except Exception as exc:  # olefile raises OSError, ValueError, struct.error... on damage
        raise CorruptDocumentError(f"damaged OLE2 compound file: {type(exc).__name__}: {exc}") from exc
    return classify_ole_streams(names)
