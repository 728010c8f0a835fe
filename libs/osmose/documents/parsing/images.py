"""Image dimensions from the header bytes only, never by decoding pixels.

Pictures in decks and PDFs may declare absurd sizes (decompression bombs), so
the parser reads width/height from the container header (PNG, GIF, BMP, JPEG
here; Pillow's lazy ``open`` for the rest, which also stops at the header).
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
from dataclasses import dataclass

__all__ = ["ImageHeader", "read_image_header"]

logger = logging.getLogger(__name__)

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# JPEG segments scanned before giving up (a real SOF comes within the first few).
_JPEG_MAX_SEGMENTS = 256


@dataclass(frozen=True, slots=True)
class ImageHeader:
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_image_header(blob: bytes) -> ImageHeader | None:
    """Width and height declared by the image in `blob`, or None when unknown."""
    try:
        if blob.startswith(b"\x89PNG\r\n\x1a\n") and len(blob) >= 24:
            w, h = struct.unpack(">II", blob[16:24])
            return ImageHeader(w, h)
        if blob[:6] in (b"GIF87a", b"GIF89a") and len(blob) >= 10:
            w, h = struct.unpack("<HH", blob[6:10])
            return ImageHeader(w, h)
        if blob.startswith(b"BM") and len(blob) >= 26:
            w, h = struct.unpack("<ii", blob[18:26])
            return ImageHeader(abs(w), abs(h))
        if blob.startswith(b"\xff\xd8"):
            return _jpeg_header(blob)
        return _pillow_header(blob)
    except (struct.error, ValueError, IndexError):
        return None


def _jpeg_header(blob: bytes) -> ImageHeader | None:
    pos = 2
    for _ in range(_JPEG_MAX_SEGMENTS):
        while pos < len(blob) and blob[pos] == 0xFF:
            pos += 1
        if pos + 3 > len(blob):
            return None
        marker = blob[pos]
        pos += 1
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue  # markers without a length field
        (length,) = struct.unpack(">H", blob[pos : pos + 2])
        if marker in _JPEG_SOF:
            h, w = struct.unpack(">HH", blob[pos + 3 : pos + 7])
            return ImageHeader(w, h)
        pos += length
    return None


def _pillow_header(blob: bytes) -> ImageHeader | None:
    # Pillow's open() parses the header only; pixels are decoded on load(), never called here.
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(blob)) as im:
                w, h = im.size
        except Image.DecompressionBombError as exc:
            logger.debug("image header refused by Pillow: %s", exc)
            return None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
            return None
    return ImageHeader(int(w), int(h))
