"""A structured text description of a slide, built from its parsed content only.

Deterministic (same slide, same text) and bounded in size. It is what an
image-only page gets when it cannot be read by OCR, and what a visual slide gets
on the embedded default (no vision model): it spells out what the page shows
(tables cell by cell, chart data point by point, pictures with their alt text
and size) in words that extraction and search can use.
"""

from __future__ import annotations

import math

from osmose.v1 import document_pb2 as pb

__all__ = ["describe_slide"]

MAX_TABLE_ROWS = 30
MAX_TABLE_COLUMNS = 12
MAX_CATEGORIES = 40
MAX_SERIES = 12
MAX_CELL_CHARS = 80
MAX_DESCRIPTION_CHARS = 6000


def describe_slide(slide: pb.Slide, *, unit: str = "Slide", max_chars: int = MAX_DESCRIPTION_CHARS) -> str:
    """Describe `slide`; `unit` names it ("Slide" for decks, "Page" for PDFs)."""
    title = slide.title.strip() or next(
        (b.text.strip() for b in slide.blocks if b.role == pb.BLOCK_ROLE_TITLE and b.text.strip()), "")
    lines = [f"{unit} {slide.number}" + (f": {_one_line(title)}" if title else " (untitled)")]
    if slide.section:
        lines.append(f"Section: {_one_line(slide.section)}")
    body = [_one_line(b.text) for b in slide.blocks
            if b.text.strip() and not (b.role == pb.BLOCK_ROLE_TITLE and _one_line(b.text) == _one_line(title))]
    if body:
        lines.append("Text: " + " / ".join(body))
    for i, table in enumerate(slide.tables, 1):
        lines.extend(_table(i, table))
    for i, chart in enumerate(slide.charts, 1):
        lines.extend(_chart(i, chart))
    for i, picture in enumerate(slide.pictures, 1):
        lines.append(_picture(i, picture))
    if not (body or slide.tables or slide.charts or slide.pictures):
        lines.append("No text, table, chart or picture was found on this page.")
    if slide.notes.strip():
        lines.append("Speaker notes: " + _one_line(slide.notes))
    text = "\n".join(lines)
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    text = _one_line(text)
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def _share(box: pb.Box) -> str:
    area = box.width * box.height
    return f"covers {area:.0%} of the page" if area > 0 else ""


def _number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _table(index: int, table: pb.Table) -> list[str]:
    rows = [r for r in table.rows if any(c.strip() for c in r.cells)]
    columns = max((len(r.cells) for r in rows), default=0)
    lines = [f"Table {index} ({len(rows)} rows x {columns} columns):"]
    for row in rows[:MAX_TABLE_ROWS]:
        cells = [_cell(c) for c in row.cells[:MAX_TABLE_COLUMNS]]
        more = len(row.cells) - MAX_TABLE_COLUMNS
        lines.append("  " + " | ".join(cells) + (f" | … ({more} more columns)" if more > 0 else ""))
    if len(rows) > MAX_TABLE_ROWS:
        lines.append(f"  … ({len(rows) - MAX_TABLE_ROWS} more rows)")
    return lines


def _chart(index: int, chart: pb.Chart) -> list[str]:
    kind = chart.chart_type.replace("_", " ").lower().strip() or "unknown type"
    head = f"Chart {index}: {kind} chart"
    if chart.title.strip():
        head += f" titled {_one_line(chart.title)!r}"
    share = _share(chart.box)
    lines = [head + (f" ({share})" if share else "")]
    categories = [_cell(c) for c in chart.categories]
    if categories:
        more = len(categories) - MAX_CATEGORIES
        lines.append("  Categories: " + ", ".join(categories[:MAX_CATEGORIES]) + (f", … ({more} more)" if more > 0 else ""))
    for s_index, series in enumerate(chart.series[:MAX_SERIES], 1):
        name = _cell(series.name) or f"Series {s_index}"
        points = [f"{categories[i]} = {_number(v)}" if i < len(categories) else _number(v)
                  for i, v in enumerate(series.values[:MAX_CATEGORIES])]
        more = len(series.values) - MAX_CATEGORIES
        lines.append(f"  Series {name!r}: " + (", ".join(points) or "no values") +
                     (f", … ({more} more)" if more > 0 else ""))
    if len(chart.series) > MAX_SERIES:
        lines.append(f"  … ({len(chart.series) - MAX_SERIES} more series)")
    return lines


def _picture(index: int, picture: pb.Picture) -> str:
    alt = _one_line(picture.alt_text)
    details = []
    if picture.name.strip():
        details.append(f"name {_one_line(picture.name)!r}")
    if picture.width_px and picture.height_px:
        details.append(f"{picture.width_px}x{picture.height_px} px")
    share = _share(picture.box)
    if share:
        details.append(share)
    what = f"described as {alt!r}" if alt else "no alt text"
    return f"Picture {index}: {what}" + (f" ({'; '.join(details)})" if details else "")
