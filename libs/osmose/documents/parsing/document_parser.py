"""The parsing boundary: bytes in, :class:`pb.Document` or a typed error out.

Steps:

1. Bound the input (size before reading, empty files).
2. Detect the real format from the bytes; warn when the name disagrees.
3. Parse with the format's parser (legacy .ppt: LibreOffice to PPTX first).
4. Stamp content-derived ids, hashes, and collected warnings.

Every exception a dependency raises on bad input (zipfile, lxml, python-pptx,
PyMuPDF, olefile...) is translated here into the :mod:`osmose.errors` tree:
DocumentError subclasses for the input, ConfigurationError for a missing tool,
RetryableError for I/O trouble of the machine while parsing. Only OSError from
reading `path` itself (missing file, permissions) leaves unchanged.
"""

from __future__ import annotations

import logging
import struct
import time
import zipfile
import zlib
from pathlib import Path, PurePath

from lxml import etree
from pptx.exc import PythonPptxError

from osmose import ids
from osmose.config import Settings
from osmose.documents.libreoffice import convert_ppt_to_pptx
from osmose.documents.parsing.limits import WarningLog, read_bounded
from osmose.documents.parsing.pptx_parser import parse_pptx
from osmose.documents.parsing.sniff import detect_format, extension_warning
from osmose.errors import (
    CorruptDocumentError,
    DocumentError,
    DocumentTooLargeError,
    OsmoseError,
    RetryableError,
)
from osmose.v1 import document_pb2 as pb

__all__ = ["parse_document", "parse_document_bytes"]

logger = logging.getLogger(__name__)

# What dependencies raise on malformed input; anything else is a bug in a parser,
# still reported as a DocumentError (reason "unreadable") but logged with a traceback.
_INPUT_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    etree.LxmlError,
    KeyError,
    ValueError,
    IndexError,
    RuntimeError,
    EOFError,
    struct.error,
    UnicodeError,
    NotImplementedError,
    PythonPptxError,  # InvalidXmlError: a required attribute is missing (python-pptx reads parts lazily)
)


def parse_document(path: Path, *, settings: Settings, file_name: str | None = None) -> pb.Document:
    """Parse the presentation or PDF at `path`.

    `file_name` is the name as submitted (defaults to ``path.name``); it is
    recorded and used only to warn when its extension disagrees with the content.
    Raises :class:`~osmose.errors.DocumentError` subclasses for rejected input and
    :class:`~osmose.errors.ConfigurationError` when LibreOffice is needed but absent.
    """
    data = read_bounded(path, settings.limits)
    return parse_document_bytes(data, settings=settings, file_name=file_name or path.name)


def parse_document_bytes(data: bytes, *, settings: Settings, file_name: str) -> pb.Document:
    """Same as :func:`parse_document` for bytes already in memory."""
    if len(data) > settings.limits.max_file_bytes:
        raise DocumentTooLargeError(
            f"file is {len(data):,} bytes, above the limit of {settings.limits.max_file_bytes:,} bytes"
        )
    started = time.perf_counter()
    warnings = WarningLog()
    doc = pb.Document(
        doc_id=ids.doc_id_for_bytes(data),
        sha256=ids.sha256_hex(data),
        size_bytes=len(data),
        file_name=PurePath(file_name).name,
    )
    try:
        doc.format = detect_format(data)
        mismatch = extension_warning(doc.file_name, doc.format)
        if mismatch:
            warnings.add(mismatch)
        _parse_format(data, doc=doc, settings=settings, warnings=warnings)
    except OsmoseError:
        raise
    except MemoryError as exc:
        raise DocumentTooLargeError("parsing ran out of memory", reason="out-of-memory") from exc
    except _INPUT_ERRORS as exc:
        raise CorruptDocumentError(f"{type(exc).__name__}: {exc}") from exc
    except OSError as exc:
        # Parsers catch the OSErrors bad input causes; what is left is the machine
        # (temporary directory full or unwritable): the same file may parse later.
        raise RetryableError(f"I/O error while parsing {doc.file_name}: {exc}") from exc
    except Exception as exc:
        logger.exception("parser failed unexpectedly on %s", doc.file_name)
        raise DocumentError(
            f"parser failed on this file: {type(exc).__name__}: {exc}", reason="unreadable"
        ) from exc
    for number, slide in enumerate(doc.slides, start=1):
        slide.number = number
        slide.slide_id = ids.slide_id(doc.doc_id, number)
    doc.warnings.extend(warnings.as_list())
    logger.info(
        "parsed %s: %s, %d slides, %d warnings in %.2fs",
        doc.file_name,
        pb.SourceFormat.Name(doc.format),
        len(doc.slides),
        len(doc.warnings),
        time.perf_counter() - started,
    )
    return doc


def _parse_format(data: bytes, *, doc: pb.Document, settings: Settings, warnings: WarningLog) -> None:
    if doc.format == pb.SOURCE_FORMAT_PDF:
        # Imported here: PyMuPDF takes seconds to import when pymupdf_layout is installed.
        from osmose.documents.parsing.pdf_parser import parse_pdf

        parse_pdf(data, doc=doc, settings=settings, warnings=warnings)
    elif doc.format == pb.SOURCE_FORMAT_PPT:
        converted = convert_ppt_to_pptx(data, settings=settings)
        warnings.add("legacy PowerPoint 97-2003 file converted to PPTX with LibreOffice before parsing")
        parse_pptx(converted, doc=doc, settings=settings, warnings=warnings)
        doc.metadata["converted_with"] = "libreoffice"
    else:
        parse_pptx(data, doc=doc, settings=settings, warnings=warnings)
