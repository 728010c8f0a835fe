"""Ruled tables on PDF pages, found only where it is cheap enough.

PyMuPDF's ``find_tables`` is pure Python and costs tens of microseconds per
character it considers, i.e. up to seconds per page. It only finds ruled
tables anyway, so:

1. the page's vector paths (collected with the text, ``TEXT_COLLECT_VECTORS``,
   at no extra cost) are reduced to horizontal and vertical rules, and rules
   that cross are clustered;
2. only a cluster that forms a lattice (rules both ways, three or more at
   distinct positions one way, three or more crossings; tables often have
   row rules and a single column separator) is a table candidate; a lattice
   that fills most of the page with few lines is a page frame, not a table;
3. a document spends at most ``MAX_TABLE_UNITS`` work units (characters
   plus vector paths of the pages searched, which is what ``find_tables``
   iterates over; about 50-70 us each, so roughly two seconds of CPU at
   most) and ``MAX_TABLE_PAGES`` pages on detection; pages with more than
   ``MAX_PATHS`` vector paths (vector art, maps) are skipped. ``find_tables``
   is not clipped to the lattice: clipping loses tables whose shaded cells
   reach past the rules.

The bounds are counts, not a stopwatch, so the same file always gives the same tables.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from osmose.documents.parsing.geometry import Rect
from osmose.documents.parsing.ooxml_text import clean_text
from osmose.documents.pymupdf_loader import pymupdf
from osmose.v1 import document_pb2 as pb

__all__ = [
    "MAX_TABLE_UNITS",
    "MAX_TABLE_PAGES",
    "Path",
    "TableBudget",
    "find_page_tables",
    "lattice_regions",
    "paths_from_drawings",
]

logger = logging.getLogger(__name__)

MAX_TABLE_PAGES = 20
MAX_TABLE_UNITS = 20_000
MAX_PATHS = 2000
MAX_TABLE_ROWS = 1000
# Rules considered per direction on one page (beyond that it is a drawing, not a table).
_MAX_RULES = 400
# A rule is at least this long (points) and at most this thick to count as a grid line.
_MIN_RULE = 8.0
_MAX_THICKNESS = 3.5
_TOUCH = 2.0
_MIN_CROSSINGS = 3
# A lattice covering this share of the page with fewer than _GRID_LINES lines one way is a frame.
_FRAME_SHARE = 0.85
_GRID_LINES = 4

# PyMuPDF >= 1.27 can gate detection by an ONNX layout model when pymupdf_layout is
# installed (seconds per page); the plain line finder is what is wanted here.
_FIND_KWARGS: dict[str, Any] = (
    {"use_layout": False} if "use_layout" in inspect.signature(pymupdf.table.find_tables).parameters else {}
)

_Rule = tuple[float, float, float]  # (position, start, end)
# A vector path reduced to its bounding box: (x0, y0, x1, y1, stroked, is_rectangle).
Path = tuple[float, float, float, float, bool, bool]


class TableBudget:
    """What one document may still spend on table detection."""

    def __init__(self, *, max_pages: int = MAX_TABLE_PAGES, max_units: int = MAX_TABLE_UNITS) -> None:
        self.pages = max_pages
        self.units = max_units
        self.skipped = 0


def paths_from_drawings(drawings: Sequence[dict[str, Any]]) -> list[Path]:
    """:data:`Path` tuples from ``page.get_cdrawings()`` (for PyMuPDF without
    ``TEXT_COLLECT_VECTORS``)."""
    out: list[Path] = []
    for drawing in drawings:
        stroked = "s" in (drawing.get("type") or "")
        for item in drawing.get("items", ()):
            if item[0] == "l":
                (x0, y0), (x1, y1) = item[1], item[2]
                out.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1), True, True))
            elif item[0] == "re":
                x0, y0, x1, y1 = item[1]
                out.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1), stroked, True))
    return out


def lattice_regions(paths: Sequence[Path], page: Rect) -> list[Rect]:
    """Bounding boxes of clusters of crossing rules that look like table grids."""
    horizontal, vertical = _rules(paths)
    if not horizontal or not vertical or len(horizontal) + len(vertical) < 4:
        return []
    horizontal, vertical = horizontal[:_MAX_RULES], vertical[:_MAX_RULES]
    parent = list(range(len(horizontal) + len(vertical)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pairs: list[int] = []
    for hi, (y, hx0, hx1) in enumerate(horizontal):
        for vi, (x, vy0, vy1) in enumerate(vertical):
            if hx0 - _TOUCH <= x <= hx1 + _TOUCH and vy0 - _TOUCH <= y <= vy1 + _TOUCH:
                a, b = find(hi), find(len(horizontal) + vi)
                if a != b:
                    parent[a] = b
                pairs.append(hi)
    crossings = Counter(find(hi) for hi in pairs)
    clusters: dict[int, tuple[set[int], set[int], list[float]]] = {}
    for hi, (y, x0, x1) in enumerate(horizontal):
        ys, xs, box = clusters.setdefault(find(hi), (set(), set(), [x0, y, x1, y]))
        ys.add(round(y))
        box[:] = [min(box[0], x0), min(box[1], y), max(box[2], x1), max(box[3], y)]
    for vi, (x, y0, y1) in enumerate(vertical):
        ys, xs, box = clusters.setdefault(find(len(horizontal) + vi), (set(), set(), [x, y0, x, y1]))
        xs.add(round(x))
        box[:] = [min(box[0], x), min(box[1], y0), max(box[2], x), max(box[3], y1)]
    regions: list[Rect] = []
    for root, (ys, xs, box) in clusters.items():
        if not ys or not xs or max(len(ys), len(xs)) < 3 or crossings.get(root, 0) < _MIN_CROSSINGS:
            continue
        rect = Rect(*box)
        if rect.area > _FRAME_SHARE * page.area and min(len(ys), len(xs)) < _GRID_LINES:
            continue
        regions.append(rect)
    return regions


def find_page_tables(
    page: pymupdf.Page, paths: Sequence[Path], budget: TableBudget, *, page_chars: int
) -> list[tuple[pb.Table, Rect]]:
    """Ruled tables of `page` as (table without box, rectangle in points).

    `paths` are the page's vector paths and `page_chars` its number of text
    characters (both already extracted by the caller), used to charge the budget.
    """
    if not paths or len(paths) > MAX_PATHS or page_chars == 0:
        return []
    bounds = page.rect
    if not lattice_regions(paths, Rect(bounds.x0, bounds.y0, bounds.x1, bounds.y1)):
        return []
    units = page_chars + len(paths)
    if budget.pages <= 0 or units > budget.units:
        budget.skipped += 1
        return []
    budget.pages -= 1
    budget.units -= units
    found = page.find_tables(**_FIND_KWARGS)
    out: list[tuple[pb.Table, Rect]] = []
    for table in found.tables:
        rows = table.extract()[:MAX_TABLE_ROWS]
        message = pb.Table(rows=[pb.TableRow(cells=[clean_text(c or "") for c in row]) for row in rows])
        if any(cell for row in message.rows for cell in row.cells):
            out.append((message, Rect(*table.bbox)))
    return out


def _rules(paths: Sequence[Path]) -> tuple[list[_Rule], list[_Rule]]:
    horizontal: list[_Rule] = []
    vertical: list[_Rule] = []
    for x0, y0, x1, y1, stroked, is_rect in paths:
        w, h = x1 - x0, y1 - y0
        if h <= _MAX_THICKNESS and w >= _MIN_RULE:
            horizontal.append(((y0 + y1) / 2, x0, x1))
        elif w <= _MAX_THICKNESS and h >= _MIN_RULE:
            vertical.append(((x0 + x1) / 2, y0, y1))
        elif stroked and is_rect and w >= _MIN_RULE and h >= _MIN_RULE:  # a cell border drawn as a box
            horizontal += [(y0, x0, x1), (y1, x0, x1)]
            vertical += [(x0, y0, y1), (x1, y0, y1)]
    return horizontal, vertical
