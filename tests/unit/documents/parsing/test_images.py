from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from osmose.documents.parsing.images import read_image_header


def _encode(fmt: str, size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_reads_size_from_headers(fmt: str) -> None:
    header = read_image_header(_encode(fmt, (123, 45)))
    assert header is not None
    assert (header.width, header.height) == (123, 45)


def test_declared_giant_png_is_measured_without_decoding() -> None:
    # IHDR says 100000 x 100000; the pixel data is a few bytes.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    blob = b"\x89PNG\r\n\x1a\n" + chunk
    header = read_image_header(blob)
    assert header is not None and header.pixels == 10**10


@pytest.mark.parametrize("blob", [b"", b"not an image", b"\xff\xd8\xff\xe0\x00"])
def test_unknown_or_truncated_images_give_none(blob: bytes) -> None:
    assert read_image_header(blob) is None
