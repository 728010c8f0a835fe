"""Page rendering: page images of a document's source file, for OCR and vision models.

Public API::

    DocumentRenderer(settings, document, source_uri) -> .render(n) -> RenderedPage
    PdfPageRenderer(pdf, max_pixels=, max_image_pixels=)        one PDF, pages on demand
    RenderError, ConversionError                                  (see ``exceptions``)

Modules: ``renderer`` (the two renderers, the render cache), ``render_worker``
(the worker side: PyMuPDF, pixel budget, decompression-bomb check),
``exceptions``. Decks go through :mod:`osmose.documents.libreoffice` first.
"""

from osmose.documents.exceptions import ConversionError, RenderError, RenderingError
from osmose.documents.rendering.renderer import (
    RENDER_PIXEL_BUDGET,
    DocumentRenderer,
    PdfPageRenderer,
    RenderedPage,
    erase_render_cache,
    erase_rendered_document,
    prune_render_cache,
    render_cache_folder,
    render_cache_path,
)

__all__ = [
    "RENDER_PIXEL_BUDGET",
    "ConversionError",
    "DocumentRenderer",
    "PdfPageRenderer",
    "RenderError",
    "RenderedPage",
    "RenderingError",
    "erase_render_cache",
    "erase_rendered_document",
    "prune_render_cache",
    "render_cache_folder",
    "render_cache_path",
]
