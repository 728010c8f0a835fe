"""Resource bounds applied while parsing: file size, page count, text per page,
and the warning list itself.

Everything here runs before or around the format parsers so one hostile file
(huge, zip bomb, a million broken shapes) costs bounded time and memory.
"""

from __future__ import annotations

import logging
from pathlib import Path

from osmose.config import Limits
from osmose.errors import DocumentTooLargeError, EmptyDocumentError
from osmose.v1 import document_pb2 as pb

__all__ = [
    "MAX_WARNINGS",
    "MAX_ZIP_ENTRIES",
    "UNCOMPRESSED_FACTOR",
    "WarningLog",
    "cap_slide_text",
    "check_page_count",
    "is_blank",
    "read_bounded",
    "utf8_safe",
]

logger = logging.getLogger(__name__)

# Warnings kept per document; beyond this one summary line says how many were dropped.
MAX_WARNINGS = 50
# Zip members an OOXML package may hold (real decks have a few thousand at most).
MAX_ZIP_ENTRIES = 20_000
# python-pptx inflates every zip member into memory, so the declared uncompressed
# total is bounded by this multiple of limits.max_file_bytes (zip bombs stop here).
UNCOMPRESSED_FACTOR = 4

_BLANK_BYTES = b" \t\r\n\x0b\x0c\x00"
# Characters kept of one warning (a library's message may quote megabytes of a damaged file).
MAX_WARNING_CHARS = 500


def utf8_safe(text: str) -> str:
    """`text` with lone surrogates replaced: protobuf string fields refuse them (UnicodeEncodeError).

    Libraries hand back undecodable bytes of a damaged file as surrogate escapes (MuPDF's
    warnings did: fuzzing finding, tests/fuzz/findings/README.md).
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


class WarningLog:
    """Problems found while parsing the valid part of a file (``Document.warnings``).

    Messages are deduplicated and capped at ``limit`` so a damaged file cannot
    blow up the message that carries the document through the pipeline.
    """

    def __init__(self, limit: int = MAX_WARNINGS) -> None:
        self._limit = limit
        self._messages: list[str] = []
        self._seen: set[str] = set()
        self._dropped = 0

    def add(self, message: str) -> None:
        message = utf8_safe(message[:MAX_WARNING_CHARS])
        if message in self._seen:
            return
        self._seen.add(message)
        if len(self._messages) < self._limit:
            self._messages.append(message)
            logger.debug("parse warning: %s", message)
        else:
            self._dropped += 1

    def __len__(self) -> int:
        return len(self._messages) + self._dropped

    def as_list(self) -> list[str]:
        if not self._dropped:
            return list(self._messages)
        return [*self._messages, f"... and {self._dropped} more warnings"]


def read_bounded(path: Path, limits: Limits) -> bytes:
    """Read `path` whole, refusing files above ``max_file_bytes`` before reading them.

    The size is checked from ``stat`` first, then again while reading (the file
    may grow in between). OSError (missing file, permissions) is the caller's
    problem and propagates unchanged.
    """
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise DocumentTooLargeError(
            f"file is {size:,} bytes, above the limit of {limits.max_file_bytes:,} bytes",
        )
    with path.open("rb") as fh:
        data = fh.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        raise DocumentTooLargeError(f"file grew above the limit of {limits.max_file_bytes:,} bytes")
    if is_blank(data):
        raise EmptyDocumentError(
            "file is empty" if not data else f"file holds only {len(data)} whitespace/NUL bytes"
        )
    return data


def is_blank(data: bytes) -> bool:
    """True for b"" and for content made only of whitespace or NUL bytes."""
    if data[:4096].strip(_BLANK_BYTES):
        return False
    return not data.translate(None, _BLANK_BYTES)


def check_page_count(count: int, limits: Limits, *, unit: str) -> None:
    if count > limits.max_pages:
        raise DocumentTooLargeError(
            f"document has {count:,} {unit}, above the limit of {limits.max_pages:,}",
            reason="too-many-pages",
        )


def cap_slide_text(slide: pb.Slide, max_chars: int) -> bool:
    """Trim a slide's blocks and table cells to `max_chars` characters in reading
    order (notes get their own budget of the same size). True if anything was cut."""
    budget = max_chars
    cut = False
    keep: list[pb.TextBlock] = []
    for block in slide.blocks:
        if budget <= 0:
            cut = True
            break
        if len(block.text) > budget:
            block.text = block.text[:budget]
            cut = True
        budget -= len(block.text)
        keep.append(block)
    if cut:
        del slide.blocks[len(keep) :]
    for table in slide.tables:
        for row in table.rows:
            for i, cell in enumerate(row.cells):
                if len(cell) > budget:
                    row.cells[i] = cell[: max(budget, 0)]
                    cut = True
                budget -= len(row.cells[i])
    if len(slide.notes) > max_chars:
        slide.notes = slide.notes[:max_chars]
        cut = True
    return cut
