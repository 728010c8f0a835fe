"""Pictures of a PPTX slide: name, alt text, image type, content hash, pixel size.

The image bytes are hashed (the vision stage caches on that hash) and their
size read from the header; pixels are never decoded here. One image part is
often shown on many slides (logos), so results are cached per part.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from lxml import etree
from pptx.opc.package import Part

from osmose.documents.parsing.images import read_image_header
from osmose.documents.parsing.limits import WarningLog
from osmose.documents.parsing.ooxml_text import qn
from osmose.v1 import document_pb2 as pb

__all__ = ["PictureReader"]

logger = logging.getLogger(__name__)

_R_EMBED = qn("r:embed")


@dataclass(frozen=True, slots=True)
class _ImageFacts:
    sha256: str
    content_type: str
    width: int
    height: int


class PictureReader:
    """Reads ``p:pic`` elements of one document, caching facts per image part."""

    def __init__(self, *, max_image_pixels: int, warnings: WarningLog) -> None:
        self._max_pixels = max_image_pixels
        self._warnings = warnings
        self._cache: dict[str, _ImageFacts | None] = {}
        self._missing: list[str] = []

    def read(self, pic: etree._Element, part: Part, *, where: str) -> pb.Picture:
        """Picture facts for `pic`, an element of `part` (the slide part). `where`
        names the slide in warnings."""
        out = pb.Picture()
        c_nv_pr = next(pic.iter(qn("p:cNvPr")), None)
        if c_nv_pr is not None:
            out.name = c_nv_pr.get("name", "")
            out.alt_text = (c_nv_pr.get("descr") or c_nv_pr.get("title") or "").strip()
        blip = next(pic.iter(qn("a:blip")), None)
        rid = blip.get(_R_EMBED) if blip is not None else None
        if not rid:
            return out  # linked (external) or missing image: nothing to hash
        facts = self._facts(part, rid, where=where, name=out.name)
        if facts is not None:
            out.image_sha256 = facts.sha256
            out.content_type = facts.content_type
            out.width_px = facts.width
            out.height_px = facts.height
        return out

    def report(self) -> None:
        """Add one summary warning for pictures whose image part is missing."""
        if self._missing:
            places = sorted(set(self._missing), key=lambda w: (len(w), w))
            shown = ", ".join(places[:10]) + (", ..." if len(places) > 10 else "")
            self._warnings.add(f"{len(self._missing)} pictures point to missing image parts ({shown})")

    def _facts(self, part: Part, rid: str, *, where: str, name: str) -> _ImageFacts | None:
        try:
            image_part = part.related_part(rid)
        except (KeyError, ValueError, AttributeError):
            self._missing.append(where)
            return None
        key = str(image_part.partname)
        if key in self._cache:
            return self._cache[key]
        blob = image_part.blob
        header = read_image_header(blob) if blob else None
        facts = _ImageFacts(
            sha256=hashlib.sha256(blob).hexdigest() if blob else "",
            content_type=image_part.content_type or "",
            width=min(header.width, 2**32 - 1) if header else 0,
            height=min(header.height, 2**32 - 1) if header else 0,
        )
        if header is not None and header.pixels > self._max_pixels:
            self._warnings.add(
                f"{where}: picture '{name}' declares {header.width}x{header.height} pixels, above "
                f"limits.max_image_pixels ({self._max_pixels:,}); it will not be decoded"
            )
        self._cache[key] = facts
        return facts
