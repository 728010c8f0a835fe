"""PyMuPDF, imported without its optional add-ons.

When ``pymupdf_layout``/``pymupdf4llm`` are installed (PyMuPDF 2 pulls them in),
``import pymupdf`` loads them and their ONNX models: ~1.9 s instead of ~0.2 s on
every process that touches a PDF. Osmose uses neither (table detection runs with
the layout model off), so a None entry in ``sys.modules`` makes those imports fail
fast and PyMuPDF carries on without them. Import PyMuPDF through this module.
"""

from __future__ import annotations

import sys

for _addon in ("pymupdf.layout", "pymupdf4llm"):
    sys.modules.setdefault(_addon, None)  # type: ignore[arg-type]

import pymupdf  # noqa: E402

__all__ = ["pymupdf"]
