"""Render PDF pages to PNG in a separate, bounded process.

Run as ``python -m osmose.services.vision.render_worker CONFIG_JSON``; the parent
(:mod:`osmose.services.vision.renderer`) talks to it over pipes:

1. the worker caps its own address space (``RLIMIT_AS``), opens the PDF and
   writes one JSON line: ``{"page_count": N}`` or ``{"error": "..."}``;
2. for every line ``{"page": n}`` (1-based) read on stdin it renders that page
   into ``out_dir`` and answers one JSON line (``ok``, ``png``, size, dpi,
   ``blank``, ``seconds``, MuPDF ``warnings``, or ``error``);
3. it exits at end of input.

Why a process and not a thread: MuPDF keeps the GIL for the whole of a render
(so a thread would stall the event loop and could not be interrupted), it is not
thread-safe, and a decompression bomb must hit a memory ceiling that kills one
worker, not the service. The parent enforces a per-page deadline by killing it.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["PageRender", "declared_oversized_images", "page_zoom", "render_page"]

# A render never goes beyond this resolution: more does not help OCR and costs memory.
MAX_DPI = 300
_MAX_WARNINGS = 5
_MAX_WARNING_CHARS = 160


@dataclass(frozen=True)
class PageRender:
    png: bytes
    width: int
    height: int
    dpi: float
    blank: bool


def page_zoom(width_pt: float, height_pt: float, *, max_pixels: int, max_dpi: int = MAX_DPI) -> float:
    """The scale (pixels per point) that keeps the rendered page within `max_pixels`."""
    if not (width_pt > 0 and height_pt > 0) or max_pixels < 1:
        raise ValueError(f"cannot render a {width_pt}x{height_pt} pt page into {max_pixels} pixels")
    zoom = min(math.sqrt(max_pixels / (width_pt * height_pt)), max_dpi / 72.0)
    # MuPDF rounds the pixel box outwards: shrink until the rounded box fits too.
    while math.ceil(width_pt * zoom) * math.ceil(height_pt * zoom) > max_pixels:
        zoom *= 0.995
    return zoom


def declared_oversized_images(page: Any, *, max_image_pixels: int) -> list[str]:
    """Images the page uses whose declared size is above the limit (decompression bombs).

    Checked before rendering because MuPDF decodes an image at its declared size
    whatever the output resolution. Inline images are not listed here; the
    worker's memory ceiling is the backstop for those.
    """
    found = []
    for info in page.get_images(full=True):
        xref, width, height = info[0], int(info[2]), int(info[3])
        if width * height > max_image_pixels:
            found.append(f"image {xref} declares {width}x{height} pixels (limit {max_image_pixels})")
    return found


def render_page(page: Any, *, max_pixels: int, max_image_pixels: int, gray: bool = True,
                max_dpi: int = MAX_DPI) -> PageRender:
    """Render one PyMuPDF page to PNG within the pixel budget (raises ValueError for bomb pages)."""
    from osmose.pymupdf_loader import pymupdf

    oversized = declared_oversized_images(page, max_image_pixels=max_image_pixels)
    if oversized:
        raise ValueError("not rendered: " + "; ".join(oversized[:3]))
    rect = page.rect
    zoom = page_zoom(rect.width, rect.height, max_pixels=max_pixels, max_dpi=max_dpi)
    pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csGRAY if gray else pymupdf.csRGB,
                          alpha=False)
    dpi = round(zoom * 72, 1)
    pix.set_dpi(int(dpi), int(dpi))
    return PageRender(png=pix.tobytes("png"), width=pix.width, height=pix.height, dpi=dpi,
                      blank=_single_colour(pix.samples, pix.n))


def _single_colour(samples: bytes, n: int) -> bool:
    # Pixmap.is_unicolor reads pixels one by one in Python (about a second per page).
    return not samples or samples == samples[:n] * (len(samples) // n)


def _emit(out: IO[str], message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def _warnings(pymupdf: Any) -> list[str]:
    lines = [w.strip()[:_MAX_WARNING_CHARS] for w in pymupdf.TOOLS.mupdf_warnings(reset=True).splitlines()]
    return list(dict.fromkeys(w for w in lines if w))[:_MAX_WARNINGS]


def serve(config: dict[str, Any], requests: IO[str], out: IO[str]) -> None:
    """Steps 1-3 of the protocol in the module docstring."""
    limit = int(config.get("memory_limit_bytes") or 0)
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from osmose.pymupdf_loader import pymupdf  # without its slow optional add-ons

    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    try:
        doc = pymupdf.open(config["pdf"], filetype="pdf")
        if doc.needs_pass:
            raise ValueError("the PDF is encrypted")
    except Exception as exc:  # any open failure ends the worker with a reason
        _emit(out, {"error": f"cannot open PDF: {type(exc).__name__}: {exc}"})
        return
    _emit(out, {"page_count": doc.page_count})
    out_dir = Path(config["out_dir"])
    for line in requests:
        if not line.strip():
            continue
        number = int(json.loads(line)["page"])
        started = time.perf_counter()
        reply: dict[str, Any] = {"page": number}
        try:
            if not 1 <= number <= doc.page_count:
                raise ValueError(f"page {number} is outside 1..{doc.page_count}")
            result = render_page(doc[number - 1], max_pixels=int(config["max_pixels"]),
                                 max_image_pixels=int(config["max_image_pixels"]),
                                 gray=config.get("colorspace", "gray") == "gray")
            path = out_dir / f"page-{number:05d}.png"
            path.write_bytes(result.png)
            reply.update(ok=True, png=str(path), width=result.width, height=result.height, dpi=result.dpi,
                         blank=result.blank)
        except Exception as exc:  # one bad page is reported, the next request is served
            reply.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        reply.update(seconds=round(time.perf_counter() - started, 4), warnings=_warnings(pymupdf))
        _emit(out, reply)


def main() -> None:
    # The protocol gets a private copy of stdout; fd 1 then points at stderr so
    # anything a C library prints cannot corrupt the JSON stream.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    serve(json.loads(sys.argv[1]), sys.stdin, out)


if __name__ == "__main__":
    main()
