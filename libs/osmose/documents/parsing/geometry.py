"""Rectangles, page-relative boxes, covered area and reading order.

Units are whatever the caller uses (EMU for PPTX, points for PDF); only ratios
leave this module (:func:`to_box`, :func:`coverage_ratio`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from osmose.v1 import document_pb2 as pb

__all__ = ["Rect", "column_order", "coverage_ratio", "row_order", "to_box"]

T = TypeVar("T")

# Resolution of the coverage raster: 200x200 cells keeps the error of the union
# area under 1% of the page while costing microseconds per rectangle.
_COVERAGE_GRID = 200


@dataclass(frozen=True, slots=True)
class Rect:
    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float) -> Rect:
        return cls(x, y, x + w, y + h)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def intersection(self, other: Rect) -> Rect | None:
        x0, y0 = max(self.x0, other.x0), max(self.y0, other.y0)
        x1, y1 = min(self.x1, other.x1), min(self.y1, other.y1)
        if x1 <= x0 or y1 <= y0:
            return None
        return Rect(x0, y0, x1, y1)

    def horizontal_overlap(self, other: Rect) -> float:
        return max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))


def to_box(rect: Rect, page_width: float, page_height: float) -> pb.Box:
    """`rect` as fractions of the page, clipped to the page (0..1 on both axes)."""
    if page_width <= 0 or page_height <= 0:
        return pb.Box()
    x0 = min(max(rect.x0 / page_width, 0.0), 1.0)
    y0 = min(max(rect.y0 / page_height, 0.0), 1.0)
    x1 = min(max(rect.x1 / page_width, 0.0), 1.0)
    y1 = min(max(rect.y1 / page_height, 0.0), 1.0)
    return pb.Box(x=x0, y=y0, width=max(x1 - x0, 0.0), height=max(y1 - y0, 0.0))


def coverage_ratio(rects: Sequence[Rect], page_width: float, page_height: float) -> float:
    """Share of the page covered by the union of `rects` (0..1), on a raster so
    overlapping pictures are not counted twice."""
    if not rects or page_width <= 0 or page_height <= 0:
        return 0.0
    grid = np.zeros((_COVERAGE_GRID, _COVERAGE_GRID), dtype=bool)
    sx, sy = _COVERAGE_GRID / page_width, _COVERAGE_GRID / page_height
    for r in rects:
        x0 = int(np.clip(round(r.x0 * sx), 0, _COVERAGE_GRID))
        x1 = int(np.clip(round(r.x1 * sx), 0, _COVERAGE_GRID))
        y0 = int(np.clip(round(r.y0 * sy), 0, _COVERAGE_GRID))
        y1 = int(np.clip(round(r.y1 * sy), 0, _COVERAGE_GRID))
        if x1 > x0 and y1 > y0:
            grid[y0:y1, x0:x1] = True
    return float(min(max(grid.mean(), 0.0), 1.0))


def row_order(items: Sequence[T], rect_of: Callable[[T], Rect | None], *, tolerance: float) -> list[T]:
    """Top-to-bottom, then left-to-right: items whose tops lie within `tolerance`
    of the first item of a row share that row and are read left to right.

    Items without a position keep their document order, after the placed ones.
    """
    placed = [(rect, i, it) for i, it in enumerate(items) if (rect := rect_of(it)) is not None]
    unplaced = [it for it in items if rect_of(it) is None]
    placed.sort(key=lambda t: (t[0].y0, t[0].x0, t[1]))
    ordered: list[T] = []
    row: list[tuple[Rect, int, T]] = []
    row_top = 0.0
    for entry in placed:
        if row and entry[0].y0 - row_top > tolerance:
            ordered.extend(it for _, _, it in sorted(row, key=lambda t: (t[0].x0, t[1])))
            row = []
        if not row:
            row_top = entry[0].y0
        row.append(entry)
    ordered.extend(it for _, _, it in sorted(row, key=lambda t: (t[0].x0, t[1])))
    return ordered + unplaced


def column_order(rects: Sequence[Rect], *, min_column_gap: float, spanning_share: float = 0.55) -> list[int]:
    """Reading order of text blocks on a page that may have columns.

    1. Blocks narrower than `spanning_share` of the text width reveal the
       column gutters: vertical white gaps wider than `min_column_gap` in
       their horizontal projection.
    2. Blocks that cross a gutter (titles, full-width figures, footers) are
       separators; between two separators, columns are read left to right,
       each top-down.

    Without gutters this is top-down, left-to-right. Paragraph gaps that line
    up across columns do not interleave the columns (the weakness of a plain
    XY-cut). Returns indexes into `rects`.
    """
    if not rects:
        return []
    left, right = min(r.x0 for r in rects), max(r.x1 for r in rects)
    narrow = [r for r in rects if r.width < spanning_share * (right - left)]
    gutters: list[tuple[float, float]] = []
    reach = None
    for r in sorted(narrow, key=lambda r: r.x0):
        if reach is not None and r.x0 - reach > min_column_gap:
            gutters.append((reach, r.x0))
        reach = r.x1 if reach is None else max(reach, r.x1)
    by_top = sorted(range(len(rects)), key=lambda i: (rects[i].y0, rects[i].x0))
    if not gutters:
        return by_top
    order: list[int] = []
    segment: list[int] = []

    def flush() -> None:
        columns: dict[int, list[int]] = {}
        for i in segment:
            column = sum(1 for g0, _ in gutters if rects[i].x0 >= g0)
            columns.setdefault(column, []).append(i)
        for column in sorted(columns):
            order.extend(columns[column])
        segment.clear()

    for i in by_top:
        r = rects[i]
        if any(r.x0 < g1 and r.x1 > g0 for g0, g1 in gutters):
            flush()
            order.append(i)
        else:
            segment.append(i)
    flush()
    return order
