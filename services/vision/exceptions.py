"""Errors of the vision stage.

They never leave the stage: a page that cannot be rendered or read is described
from its parsed content instead, and the reason goes to ``vision.notes`` and the
work item's warnings::

    OsmoseError
    └── VisionError        a page could not be rendered or read
        ├── ConversionError    LibreOffice could not turn the deck into a PDF
        └── RenderError        a page could not be rendered to an image
"""

from __future__ import annotations

from osmose.errors import OsmoseError

__all__ = ["ConversionError", "RenderError", "VisionError"]


class VisionError(OsmoseError):
    """A page could not be rendered or read (the page degrades, the document goes on)."""


class ConversionError(VisionError):
    """LibreOffice failed, timed out or produced no PDF."""


class RenderError(VisionError):
    """A page could not be rendered (timeout, crash, decompression bomb, bad page)."""
