"""One PDF page into a :class:`pb.Slide`: text blocks in reading order, a title,
ruled tables, and pictures (boxes and declared sizes; pixels never decoded).

Reading order: MuPDF's text blocks by columns (see :func:`geometry.column_order`).
The title is the largest line in the top 40% of the page when it stands out
from the body text (>= 1.15x the page's typical size); header/footer lines and
"Figure 3"-style lines are captions.
"""

from __future__ import annotations

import hashlib
import logging
import re
import statistics
from dataclasses import dataclass, field
from typing import Any

from osmose.documents.parsing.geometry import Rect, column_order, coverage_ratio, to_box
from osmose.documents.parsing.limits import WarningLog
from osmose.documents.parsing.ooxml_text import clean_text, one_line
from osmose.documents.parsing.pdf_tables import Path, TableBudget, find_page_tables, paths_from_drawings
from osmose.documents.pymupdf_loader import pymupdf
from osmose.v1 import document_pb2 as pb

__all__ = ["ImageHashes", "read_page"]

logger = logging.getLogger(__name__)

# No TEXT_PRESERVE_IMAGES: image blocks would carry decoded image bytes. Vector paths
# come with the text in one pass where PyMuPDF can collect them (table detection uses them).
_COLLECT_VECTORS: int = getattr(pymupdf, "TEXT_COLLECT_VECTORS", 0)
TEXT_FLAGS = (
    pymupdf.TEXT_PRESERVE_WHITESPACE
    | pymupdf.TEXT_PRESERVE_LIGATURES
    | pymupdf.TEXT_MEDIABOX_CLIP
    | pymupdf.TEXT_DEHYPHENATE
    | _COLLECT_VECTORS
)
_VECTOR_BLOCK = 3
_TITLE_ZONE = 0.4
_TITLE_MIN_RATIO = 1.15
_TITLE_MAX_CHARS = 200
_MARGIN_ZONE = 0.06
_MARGIN_MAX_CHARS = 120
_MIN_PICTURE_PT = 4.0
# Share of the covered blocks' characters a table must hold before those blocks are dropped.
_TABLE_CAPTURE = 0.9
_TABLE_MAX_CELL = 500
MAX_PICTURES_PER_PAGE = 200
# Characters on a page above which it is read as plain text blocks (see _text_blocks).
MAX_LAYOUT_CHARS = 100_000
_CAPTION_START = re.compile(
    r"^(fig(ure|\.)?|table|tab\.|abb(ildung|\.)|tableau|tabla|tabelle|figura|chart|graph)\s*\.?\s*[0-9IVX]+",
    re.IGNORECASE,
)
_FILTER_TYPES = {
    "DCTDecode": "image/jpeg",
    "JPXDecode": "image/jp2",
    "JBIG2Decode": "image/x-jbig2",
    "CCITTFaxDecode": "image/x-ccitt-fax",
}
# Raw samples (Flate, LZW, uncompressed): not an image file format of their own.
_RAW_SAMPLES = "image/x-pdf-samples"


@dataclass
class _Line:
    text: str
    size: float
    rect: Rect
    horizontal: bool = True


@dataclass
class _Block:
    rect: Rect
    lines: list[_Line] = field(default_factory=list)
    role: pb.BlockRole = pb.BLOCK_ROLE_BODY

    @property
    def text(self) -> str:
        return clean_text("\n".join(line.text for line in self.lines))


class ImageHashes:
    """sha256 of each image's raw (still compressed) stream, computed once per xref."""

    def __init__(self, pdf: pymupdf.Document) -> None:
        self._pdf = pdf
        self._hashes: dict[int, str] = {}

    def get(self, xref: int) -> str:
        if xref not in self._hashes:
            try:
                self._hashes[xref] = hashlib.sha256(self._pdf.xref_stream_raw(xref) or b"").hexdigest()
            except (RuntimeError, ValueError):
                self._hashes[xref] = ""
        return self._hashes[xref]


def read_page(
    page: pymupdf.Page,
    *,
    number: int,
    hashes: ImageHashes,
    tables: TableBudget,
    max_image_pixels: int,
    warnings: WarningLog,
    max_chars: int = 200_000,
) -> pb.Slide:
    out = pb.Slide(number=number)
    bounds = page.rect
    width, height = float(bounds.width), float(bounds.height)
    page_rect = Rect(float(bounds.x0), float(bounds.y0), float(bounds.x1), float(bounds.y1))
    blocks, paths = _text_blocks(page, number=number, max_chars=max_chars, warnings=warnings)
    page_chars = sum(len(line.text) for block in blocks for line in block.lines)
    for table, rect in find_page_tables(page, paths, tables, page_chars=page_chars):
        table.box.CopyFrom(to_box(_shift(rect, page_rect), width, height))
        out.tables.append(table)
        blocks = _without_table_text(blocks, table, rect)
    order = column_order([b.rect for b in blocks], min_column_gap=max(6.0, 0.015 * width))
    blocks = [blocks[i] for i in order]
    out.title = _assign_roles(blocks, page_rect)
    for block in blocks:
        text = block.text
        if text:
            out.blocks.append(
                pb.TextBlock(
                    text=text, role=block.role, box=to_box(_shift(block.rect, page_rect), width, height)
                )
            )
    visual = _pictures(
        page, out, page_rect, hashes=hashes, max_image_pixels=max_image_pixels, warnings=warnings
    )
    out.visual_ratio = coverage_ratio([_shift(r, page_rect) for r in visual], width, height)
    return out


def _text_blocks(
    page: pymupdf.Page, *, number: int, max_chars: int, warnings: WarningLog
) -> tuple[list[_Block], list[Path]]:
    """Text blocks, and the page's vector paths (bounding boxes) for table detection.

    MuPDF's text page is cheap; turning it into Python dicts costs about 20 us per span, so a
    122 KB PDF whose page shows two million short runs took 110 s and 4 GB (fuzzing finding,
    tests/fuzz/findings/README.md). Above :data:`MAX_LAYOUT_CHARS` characters a page gets
    plain text blocks (no font sizes, no table detection), one line each, and only the first
    `max_chars` characters (the page keeps no more anyway).
    """
    blocks: list[_Block] = []
    paths: list[Path] = []
    textpage = page.get_textpage(flags=TEXT_FLAGS)
    plain = [b for b in textpage.extractBLOCKS() if b[6] == 0]
    chars = sum(len(b[4]) for b in plain)
    if chars > MAX_LAYOUT_CHARS:
        warnings.add(f"page {number}: {chars:,} characters of text, above {MAX_LAYOUT_CHARS:,}; "
                     "read as plain text blocks (no layout, no tables)")
        budget = max_chars
        for x0, y0, x1, y1, text, *_ in plain:
            if budget <= 0:
                break
            line = " ".join(str(text)[:budget].split())
            if line:
                rect = Rect(x0, y0, x1, y1)
                blocks.append(_Block(rect=rect, lines=[_Line(line, 0.0, rect)]))
                budget -= len(line)
        return blocks, paths
    for raw in page.get_text("dict", flags=TEXT_FLAGS, textpage=textpage)["blocks"]:
        kind = raw.get("type")
        if kind == _VECTOR_BLOCK:
            x0, y0, x1, y1 = raw["bbox"]
            paths.append((x0, y0, x1, y1, bool(raw.get("stroked")), bool(raw.get("isrect"))))
            continue
        if kind != 0:
            continue
        block = _Block(rect=Rect(*raw["bbox"]))
        for line in raw.get("lines", ()):
            spans = line.get("spans", ())
            text = "".join(s.get("text", "") for s in spans).strip()
            if text:
                size = max((float(s.get("size", 0.0)) for s in spans), default=0.0)
                direction = line.get("dir", (1.0, 0.0))
                horizontal = abs(direction[1]) < 0.01 and direction[0] > 0
                block.lines.append(_Line(text, size, Rect(*line["bbox"]), horizontal))
        if block.lines:
            blocks.append(block)
    if not _COLLECT_VECTORS:
        paths = paths_from_drawings(page.get_cdrawings())
    return blocks, paths


def _assign_roles(blocks: list[_Block], page: Rect) -> str:
    """Mark title and caption blocks; return the page title ("" when none stands out)."""
    h = page.height
    for block in blocks:
        top, bottom = block.rect.y1 <= page.y0 + _MARGIN_ZONE * h, block.rect.y0 >= page.y1 - _MARGIN_ZONE * h
        text = block.text
        if ((top or bottom) and len(text) <= _MARGIN_MAX_CHARS) or _CAPTION_START.match(text):
            block.role = pb.BLOCK_ROLE_CAPTION
    sizes = [line.size for b in blocks for line in b.lines for _ in range(min(len(line.text), 200))]
    if not sizes:
        return ""
    body_size = statistics.median(sizes)
    best: tuple[float, float, _Block, int] | None = None
    for block in blocks:
        if block.role == pb.BLOCK_ROLE_CAPTION:
            continue
        for i, line in enumerate(block.lines):
            if line.rect.y0 > page.y0 + _TITLE_ZONE * h or line.size < _TITLE_MIN_RATIO * body_size:
                continue
            if not line.horizontal:  # margin stamps such as arXiv identifiers run vertically
                continue
            if not (2 <= len(line.text) <= _TITLE_MAX_CHARS) or not any(c.isalpha() for c in line.text):
                continue
            if best is None or (line.size, -line.rect.y0) > (best[0], best[1]):
                best = (line.size, -line.rect.y0, block, i)
    if best is None:
        return ""
    size, _, block, first = best
    parts = [block.lines[first].text]
    for line in block.lines[first + 1 :]:
        if abs(line.size - size) > 0.05 * size:
            break
        parts.append(line.text)
    if all(line.size >= 0.95 * size for line in block.lines):
        block.role = pb.BLOCK_ROLE_TITLE
    return one_line(" ".join(parts))[:_TITLE_MAX_CHARS]


def _pictures(
    page: pymupdf.Page,
    out: pb.Slide,
    page_rect: Rect,
    *,
    hashes: ImageHashes,
    max_image_pixels: int,
    warnings: WarningLog,
) -> list[Rect]:
    declared = page.get_images(full=True)
    if not declared:
        return []  # get_image_info runs a device over the page: skip it when nothing is there
    by_size: dict[tuple[int, int], list[tuple[Any, ...]]] = {}
    for item in declared:
        by_size.setdefault((int(item[2]), int(item[3])), []).append(item)
    rects: list[Rect] = []
    for info in page.get_image_info(hashes=False, xrefs=False):
        clipped = Rect(*info["bbox"]).intersection(page_rect)
        if clipped is None or clipped.width < _MIN_PICTURE_PT or clipped.height < _MIN_PICTURE_PT:
            continue
        if len(out.pictures) >= MAX_PICTURES_PER_PAGE:
            warnings.add(
                f"page {out.number}: more than {MAX_PICTURES_PER_PAGE} pictures; the rest were ignored"
            )
            break
        w, h = int(info.get("width", 0)), int(info.get("height", 0))
        picture = pb.Picture(width_px=min(w, 2**32 - 1), height_px=min(h, 2**32 - 1))
        matches = by_size.get((w, h), [])
        if len(matches) == 1:  # the xref is known only when the size is unambiguous
            xref, _, _, _, _, _, _, name, filters = matches[0][:9]
            picture.name = name or f"image-{xref}"
            picture.content_type = _FILTER_TYPES.get(
                str(filters).split()[-1] if filters else "", _RAW_SAMPLES
            )
            picture.image_sha256 = hashes.get(int(xref))
        else:
            picture.name = f"image-{info.get('number', len(out.pictures))}"
        if w * h > max_image_pixels:
            warnings.add(
                f"page {out.number}: image '{picture.name}' declares {w}x{h} pixels, above "
                f"limits.max_image_pixels ({max_image_pixels:,}); it will not be decoded"
            )
        picture.box.CopyFrom(to_box(_shift(clipped, page_rect), page_rect.width, page_rect.height))
        out.pictures.append(picture)
        rects.append(clipped)
    return rects


def _without_table_text(blocks: list[_Block], table: pb.Table, rect: Rect) -> list[_Block]:
    """Drop the blocks a table holds, but only when the table really captured
    their text (a wrong table over a figure must not lose the page's words)."""
    if any(len(cell) > _TABLE_MAX_CELL for row in table.rows for cell in row.cells):
        return blocks  # page-sized "cells": a figure or a frame, not a table
    inside = [b for b in blocks if _mostly_inside(b.rect, rect)]
    block_chars = sum(len("".join(b.text.split())) for b in inside)
    table_chars = sum(len("".join(cell.split())) for row in table.rows for cell in row.cells)
    if not inside or table_chars < _TABLE_CAPTURE * block_chars:
        return blocks
    return [b for b in blocks if not any(b is i for i in inside)]


def _mostly_inside(inner: Rect, outer: Rect) -> bool:
    common = inner.intersection(outer)
    return common is not None and common.area >= 0.8 * max(inner.area, 1e-6)


def _shift(rect: Rect, page: Rect) -> Rect:
    """Rectangle relative to the page's top-left corner (MediaBox may not start at 0,0)."""
    return Rect(rect.x0 - page.x0, rect.y0 - page.y0, rect.x1 - page.x0, rect.y1 - page.y0)
