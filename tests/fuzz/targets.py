"""Fuzz targets and their properties, shared by the bounded pytest core and `make fuzz` (atheris).

A target takes bytes and either returns or raises :class:`Finding` (an AssertionError):
a property broke. The properties:

- parsing (in-process): a :class:`pb.Document` within the documented bounds (text per page,
  warnings), or a :class:`osmose.errors.DocumentError` whose reason is not ``unreadable``
  (``unreadable`` means a parser raised something unexpected: a bug); ``ConverterMissingError``
  is accepted for legacy .ppt bytes where LibreOffice is absent;
- parsing (bounded worker): the same, plus an answer within the deadline;
- envelopes: :func:`osmose.bus.envelope.decode` returns an envelope with a job id and a stage or
  raises :class:`EnvelopeError`; :func:`unpack` returns a work item or raises an Osmose error.

The mutators are structure-aware (zip members, XML, PDF tokens) and deterministic for a seed,
so a finding is replayed from its bytes alone.
"""

from __future__ import annotations

import io
import random
import re
import warnings
import zipfile
from pathlib import Path

from osmose.config import Limits, Settings
from osmose.documents.exceptions import ConverterMissingError
from osmose.errors import DocumentError, OsmoseError
from osmose.v1 import document_pb2 as pb

__all__ = ["Finding", "check_document", "check_envelope", "check_parse", "mutate", "seeds"]

HERE = Path(__file__).resolve().parent
COMMITTED = HERE / "corpus"
# Seeds above this size are skipped (mutating and parsing a 3 MB deck thousands of times is slow).
MAX_SEED_BYTES = 400_000
MAX_WARNINGS = 51  # limits.MAX_WARNINGS plus the "... and N more" line


class Finding(AssertionError):
    """A fuzz property broke on some input."""


def fuzz_settings(**limits: object) -> Settings:
    """Settings for fuzzing: the default limits, with `limits` overridden."""
    return Settings(limits=Limits(**limits)) if limits else Settings()


def seeds(kind: str, *, shared: Path | None = None, max_bytes: int = MAX_SEED_BYTES) -> list[tuple[str, bytes]]:
    """(name, bytes) of the seeds of `kind` ("pptx", "pdf", "envelope"): the committed ones, then the
    shared corpus's small files of that kind (pptx/, pdf/ and bad/) when it is there. Legacy .ppt files
    are left out: LibreOffice converts them in a process of its own, seconds per file."""
    out: list[tuple[str, bytes]] = []
    for path in sorted((COMMITTED / kind).glob("*")):
        if path.is_file():
            out.append((f"corpus/{kind}/{path.name}", path.read_bytes()))
    if shared is not None and shared.is_dir() and kind in ("pptx", "pdf"):
        suffixes = {"pptx": (".pptx", ".pptm", ".ppsx"), "pdf": (".pdf",)}[kind]
        for folder in (kind, "bad"):
            for path in sorted((shared / folder).glob("*")):
                if path.suffix.lower() in suffixes and 0 < path.stat().st_size <= max_bytes:
                    out.append((f"shared/{folder}/{path.name}", path.read_bytes()))
    return out


# -- properties ------------------------------------------------------------------------------------

def check_document(doc: pb.Document, settings: Settings) -> None:
    """The bounds a parsed document promises (limits.py): text per page, warnings, page count."""
    limit = settings.limits.max_page_chars
    if len(doc.slides) > settings.limits.max_pages:
        raise Finding(f"{len(doc.slides)} pages above max_pages")
    if len(doc.warnings) > MAX_WARNINGS:
        raise Finding(f"{len(doc.warnings)} warnings above the cap")
    for slide in doc.slides:
        text = sum(len(b.text) for b in slide.blocks) + sum(len(c) for t in slide.tables for r in t.rows for c in r.cells)
        if text > limit:
            raise Finding(f"page {slide.number}: {text} characters above max_page_chars {limit}")
        if len(slide.notes) > limit:
            raise Finding(f"page {slide.number}: notes of {len(slide.notes)} characters above {limit}")
    doc.SerializeToString()  # must serialize (no invalid UTF-8 smuggled into a string field)


def check_parse(data: bytes, *, file_name: str, settings: Settings | None = None) -> str:
    """Parse in-process; the outcome ("ok" or the reason code), or :class:`Finding`."""
    from osmose.documents.parsing import parse_document_bytes

    settings = settings or fuzz_settings()
    try:
        doc = parse_document_bytes(data, settings=settings, file_name=file_name)
    except ConverterMissingError:
        return "converter-missing"
    except DocumentError as exc:
        if exc.reason == "unreadable":
            raise Finding(f"parser bug (reason unreadable): {exc}") from exc
        return exc.reason
    except OsmoseError as exc:
        raise Finding(f"{type(exc).__name__} is not a verdict on the document: {exc}") from exc
    except Exception as exc:
        raise Finding(f"uncaught {type(exc).__name__}: {exc}") from exc
    check_document(doc, settings)
    return "ok"


def check_envelope(data: bytes) -> str:
    """decode then unpack (inline payloads; blob references against an empty local store)."""
    import tempfile

    from osmose.bus.blobs.local import LocalBlobStore
    from osmose.bus.envelope import decode, encode, unpack
    from osmose.bus.exceptions import EnvelopeError

    try:
        envelope = decode(data)
    except EnvelopeError:
        return "rejected"
    except Exception as exc:
        raise Finding(f"decode raised {type(exc).__name__}: {exc}") from exc
    if not envelope.job_id or not envelope.stage:
        raise Finding("decode accepted an envelope without job id or stage")
    encode(envelope)
    with tempfile.TemporaryDirectory() as root:
        try:
            unpack(envelope, LocalBlobStore(Path(root)))
        except OsmoseError:
            return "unpack-rejected"
        except Exception as exc:
            raise Finding(f"unpack raised {type(exc).__name__}: {exc}") from exc
    return "ok"


# -- mutators --------------------------------------------------------------------------------------

_NUMBER = re.compile(rb"-?\d+")
_HOSTILE_NUMBERS = [b"0", b"-1", b"-2147483649", b"2147483648", b"99999999999999999999", b"1e308", b"NaN", b""]
_XML_JUNK = [
    b"<", b"&", b"&#0;", b"&#xD800;", b"\xff\xfe", b"\xc3\x28", b"<![CDATA[", b"]]>", b"<!--", b"\x00",
    b'<!DOCTYPE x [<!ENTITY a "aaaa">]>', b"&a;", b"</a:p>", b"<a:p>", b"xmlns:a=\"urn:x\"",
]
_PDF_JUNK = [
    b"obj", b"endobj", b"stream\n", b"endstream", b"<<", b">>", b"[", b"]", b"/Type /Pages", b"/Kids [1 0 R]",
    b"/Length 999999999", b"/Filter /FlateDecode", b"/Count 2147483647", b"R", b"trailer", b"xref", b"%%EOF",
    b"/MediaBox [0 0 1e30 1e30]", b"(\\", b"<ff", b"/Root 1 0 R",
]


def mutate(data: bytes, rng: random.Random, *, other: bytes | None = None) -> bytes:
    """One to three structure-aware mutations of `data` (a zip, a PDF or anything)."""
    for _ in range(rng.randint(1, 3)):
        if data[:2] == b"PK" and rng.random() < 0.8:
            data = _mutate_zip(data, rng)
        elif data[:5] == b"%PDF-" and rng.random() < 0.7:
            data = _mutate_text(data, rng, _PDF_JUNK)
        else:
            data = _mutate_bytes(data, rng, other)
    return data


def _mutate_bytes(data: bytes, rng: random.Random, other: bytes | None) -> bytes:
    if not data:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    i = rng.randrange(len(data))
    j = min(len(data), i + rng.randint(1, 64))
    choice = rng.randrange(7)
    if choice == 0:  # flip bits
        return data[:i] + bytes(b ^ (1 << rng.randrange(8)) for b in data[i:j]) + data[j:]
    if choice == 1:  # delete
        return data[:i] + data[j:]
    if choice == 2:  # duplicate
        return data[:j] + data[i:j] * rng.randint(1, 8) + data[j:]
    if choice == 3:  # truncate
        return data[:i]
    if choice == 4:  # random bytes
        return data[:i] + bytes(rng.randrange(256) for _ in range(j - i)) + data[j:]
    if choice == 5 and other:  # splice with another seed
        k = rng.randrange(len(other))
        return data[:i] + other[k : k + rng.randint(1, 4096)] + data[j:]
    return data[:i] + bytes([rng.choice([0, 0xFF, 0x7F, 0x80])]) * (j - i) + data[j:]


def _mutate_text(data: bytes, rng: random.Random, junk: list[bytes]) -> bytes:
    """Token-level: a number made hostile, a token inserted, a region duplicated or cut."""
    choice = rng.randrange(4)
    if choice == 0:
        numbers = list(_NUMBER.finditer(data[:2_000_000]))
        if numbers:
            m = rng.choice(numbers)
            return data[: m.start()] + rng.choice(_HOSTILE_NUMBERS) + data[m.end() :]
    if choice == 1 and data:
        i = rng.randrange(len(data))
        return data[:i] + rng.choice(junk) + data[i:]
    if choice == 2 and data:  # duplicate an element/object-sized region
        i = rng.randrange(len(data))
        return data[:i] + data[i : i + rng.randint(1, 2048)] * rng.randint(2, 50) + data[i:]
    return _mutate_bytes(data, rng, None)


def _mutate_zip(data: bytes, rng: random.Random) -> bytes:
    """Mutate one member's content (XML-aware), drop/rename/duplicate members, or the raw zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            entries = [(info.filename, zf.read(info)) for info in zf.infolist()]
    except Exception:
        return _mutate_bytes(data, rng, None)
    if not entries:
        return _mutate_bytes(data, rng, None)
    xml = [i for i, (name, _) in enumerate(entries) if name.endswith((".xml", ".rels"))]
    choice = rng.randrange(10)
    if choice < 6 and xml:
        i = rng.choice(xml)
        name, blob = entries[i]
        entries[i] = (name, _mutate_text(blob, rng, _XML_JUNK))
    elif choice == 6:
        entries.pop(rng.randrange(len(entries)))
    elif choice == 7:
        i = rng.randrange(len(entries))
        entries[i] = (rng.choice(["", "../evil.xml", "ppt/slides/slide1.xml", "a" * 300, "ppt/\x00x.xml"]),
                      entries[i][1])
    elif choice == 8:
        entries.append(rng.choice(entries))
    else:
        return _mutate_bytes(data, rng, None)
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w", rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])) as zf:
        warnings.simplefilter("ignore")  # duplicate names are the point
        for name, blob in entries:
            try:
                zf.writestr(zipfile.ZipInfo(name or "x", date_time=(1980, 1, 1, 0, 0, 0)), blob)
            except (ValueError, UserWarning):
                continue
    return out.getvalue()
