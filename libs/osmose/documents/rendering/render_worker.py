"""Render PDF pages to PNG in a bounded worker process.

The worker side of :mod:`osmose.documents.rendering.renderer`: an
:mod:`osmose.documents.worker_process` worker running :func:`render_handler`.

1. at start the worker opens the PDF and says ``{"page_count": N}`` or ``{"error": "..."}``;
2. for every request ``{"page": n}`` (1-based) it renders that page and answers
   ``ok``, size, dpi, ``blank``, ``seconds`` and MuPDF ``warnings`` with the PNG as
   body, or ``ok: false`` with the ``error``; one bad page does not stop it.

Why a process and not a thread: MuPDF keeps the GIL for the whole of a render
(so a thread would stall the event loop and could not be interrupted), it is not
thread-safe, and a decompression bomb must hit a memory ceiling that kills one
worker, not the service. The parent enforces a per-page deadline by killing it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_DPI", "PageRender", "declared_oversized_images", "page_zoom", "render_handler", "render_page"]

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
    from osmose.documents.pymupdf_loader import pymupdf

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


def _warnings(pymupdf: Any) -> list[str]:
    lines = [w.strip()[:_MAX_WARNING_CHARS] for w in pymupdf.TOOLS.mupdf_warnings(reset=True).splitlines()]
    return list(dict.fromkeys(w for w in lines if w))[:_MAX_WARNINGS]


class _RenderHandler:
    """One open PDF; renders its pages on request (steps 1 and 2 of the module docstring)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        # Imported here, under the worker's memory ceiling: a ceiling too low to load
        # PyMuPDF ends the worker before its hello ("did not start").
        from osmose.documents.pymupdf_loader import pymupdf  # without its slow optional add-ons

        pymupdf.TOOLS.mupdf_display_errors(False)
        pymupdf.TOOLS.mupdf_display_warnings(False)
        self._pymupdf = pymupdf
        self._max_pixels = int(config["max_pixels"])
        self._max_image_pixels = int(config["max_image_pixels"])
        self._gray = config.get("colorspace", "gray") == "gray"
        self._doc: Any = None
        self._error = ""
        try:
            doc = pymupdf.open(config["pdf"], filetype="pdf")
            if doc.needs_pass:
                raise ValueError("the PDF is encrypted")
            self._doc = doc
        except Exception as exc:  # any open failure is the worker's one answer
            self._error = f"cannot open PDF: {type(exc).__name__}: {exc}"

    def hello(self) -> dict[str, Any]:
        return {"error": self._error} if self._error else {"page_count": self._doc.page_count}

    def handle(self, header: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        number = int(header["page"])
        started = time.perf_counter()
        reply: dict[str, Any] = {"page": number}
        png = b""
        try:
            if self._doc is None:
                raise ValueError(self._error)
            if not 1 <= number <= self._doc.page_count:
                raise ValueError(f"page {number} is outside 1..{self._doc.page_count}")
            result = render_page(self._doc[number - 1], max_pixels=self._max_pixels,
                                 max_image_pixels=self._max_image_pixels, gray=self._gray)
            png = result.png
            reply.update(ok=True, width=result.width, height=result.height, dpi=result.dpi, blank=result.blank)
        except Exception as exc:  # one bad page is reported, the next request is served
            reply.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        reply.update(seconds=round(time.perf_counter() - started, 4), warnings=_warnings(self._pymupdf))
        return reply, png


def render_handler(config: Mapping[str, Any]) -> _RenderHandler:
    """The worker-side factory: `config` has ``pdf``, ``max_pixels``, ``max_image_pixels``, ``colorspace``."""
    return _RenderHandler(config)
