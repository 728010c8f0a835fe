"""Recovering the readable members of a damaged zip (OOXML package).

Two kinds of damage are common in the wild:

* the file was cut short: the central directory at the end of the zip is gone,
  but each member still starts with a local header, so members can be read
  front to back (:func:`scan_local_entries`);
* one member's compressed data is damaged (bad CRC, broken deflate stream):
  the other members are fine (:func:`readable_members`).

Either way the survivors are written into a fresh in-memory zip
(:func:`rebuild_zip`) that python-pptx can open; relationships to parts that
did not survive are skipped by python-pptx itself.
"""

from __future__ import annotations

import io
import logging
import struct
import zipfile
import zlib

__all__ = ["SalvageResult", "readable_members", "rebuild_zip", "scan_local_entries"]

logger = logging.getLogger(__name__)

_LOCAL_HEADER = b"PK\x03\x04"
_LOCAL_HEADER_LEN = 30
_CHUNK = 64 * 1024
_MAX_NAME_LEN = 1024
_FLAG_ENCRYPTED = 0x1
_FLAG_DATA_DESCRIPTOR = 0x8
_FLAG_UTF8 = 0x800
_STORED, _DEFLATED = 0, 8
# A fixed timestamp keeps rebuilt zips byte-identical across runs.
_EPOCH = (1980, 1, 1, 0, 0, 0)


class SalvageResult:
    """Members recovered from a damaged zip, and what was lost."""

    def __init__(self) -> None:
        self.entries: dict[str, bytes] = {}
        self.problems: list[str] = []
        self.total_bytes = 0


def scan_local_entries(data: bytes, *, max_total_bytes: int) -> SalvageResult:
    """Read members front to back from their local headers (no central directory).

    Stops at the first member whose data is cut short; skips members that are
    encrypted, use unknown compression, have unusable names or a wrong CRC.
    """
    result = SalvageResult()
    pos = 0
    view = memoryview(data)
    while True:
        at = data.find(_LOCAL_HEADER, pos)
        if at < 0 or at + _LOCAL_HEADER_LEN > len(data):
            break
        (_, _, flag, method, _, _, crc, csize, _, name_len, extra_len) = struct.unpack(
            "<IHHHHHIIIHH", data[at : at + _LOCAL_HEADER_LEN]
        )
        start = at + _LOCAL_HEADER_LEN + name_len + extra_len
        name = _member_name(data[at + _LOCAL_HEADER_LEN : at + _LOCAL_HEADER_LEN + name_len], flag)
        if name is None or flag & _FLAG_ENCRYPTED or method not in (_STORED, _DEFLATED):
            pos = at + 4
            continue
        budget = max_total_bytes - result.total_bytes
        if flag & _FLAG_DATA_DESCRIPTOR:
            if method != _DEFLATED:
                pos = at + 4  # a stored member of unknown length cannot be delimited
                continue
            content, consumed = _inflate_until_end(view[start:], budget)
            check_crc = False  # the CRC sits in the descriptor after the data
        else:
            if start + csize > len(data):
                result.problems.append(f"zip member {name} is cut short (file truncated)")
                break
            raw = data[start : start + csize]
            content, consumed = (raw, csize) if method == _STORED else _inflate_until_end(raw, budget)
            check_crc = True
        if content is None:
            result.problems.append(f"zip member {name} has damaged or oversized data")
            pos = at + 4
            continue
        if check_crc and zlib.crc32(content) != crc:
            result.problems.append(f"zip member {name} fails its CRC check")
        else:
            result.entries.setdefault(name, content)
            result.total_bytes += len(content)
        pos = start + max(consumed, 1)
    return result


def readable_members(data: bytes, *, max_total_bytes: int) -> SalvageResult:
    """Every member of an intact zip directory whose data reads back correctly."""
    result = SalvageResult()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            if result.total_bytes + info.file_size > max_total_bytes:
                result.problems.append(
                    f"zip member {info.filename} skipped: uncompressed size over the bound"
                )
                continue
            try:
                content = _read_bounded(zf, info)
            except (
                zipfile.BadZipFile,
                zlib.error,
                EOFError,
                OSError,
                NotImplementedError,
                ValueError,
            ) as exc:
                result.problems.append(f"zip member {info.filename} is unreadable ({exc})")
                continue
            result.entries[info.filename] = content
            result.total_bytes += len(content)
    return result


def _read_bounded(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's content read in chunks: ``zf.read`` inflates all the compressed data in one
    call, whatever the declared size (a lying member of 1 MB can allocate 1 GiB)."""
    parts: list[bytes] = []
    with zf.open(info) as member:
        while chunk := member.read(_CHUNK):
            parts.append(chunk)
    return b"".join(parts)


def rebuild_zip(entries: dict[str, bytes]) -> bytes:
    """A fresh zip holding `entries`, stored without compression (it only lives in memory)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, content in entries.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=_EPOCH), content)
    return out.getvalue()


def _member_name(raw: bytes, flag: int) -> str | None:
    if not raw or len(raw) > _MAX_NAME_LEN or b"\x00" in raw:
        return None
    try:
        name = raw.decode("utf-8" if flag & _FLAG_UTF8 else "cp437")
    except UnicodeDecodeError:
        return None
    if not name.isprintable() or name.endswith("/"):
        return None
    return name


def _inflate_until_end(compressed: bytes | memoryview, budget: int) -> tuple[bytes | None, int]:
    """Inflate a raw deflate stream that ends by itself; (content, bytes consumed).

    Content is None when the stream is damaged, unfinished or inflates beyond `budget`.
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    parts: list[bytes] = []
    produced = 0
    offset = 0
    try:
        while offset < len(compressed) and not inflater.eof:
            chunk = compressed[offset : offset + _CHUNK]
            piece = inflater.decompress(chunk, max(budget - produced, 0) + 1)
            produced += len(piece)
            if produced > budget:
                return None, 0
            parts.append(piece)
            if inflater.eof:
                offset += len(chunk) - len(inflater.unused_data)
                break
            if inflater.unconsumed_tail:
                return None, 0  # output budget reached before the input was used up
            offset += len(chunk)
    except zlib.error:
        return None, 0
    if not inflater.eof:
        return None, 0
    return b"".join(parts), offset
