"""Opening an OOXML zip as a python-pptx presentation, safely.

Steps, in order (each one raises a typed DocumentError or records a warning):

1. Read the zip directory; if it is missing (truncated file) or damaged,
   recover the members from their local headers and rebuild the zip.
2. Bound the package: member count and declared uncompressed total
   (python-pptx inflates every member into memory).
3. Find the main part through ``_rels/.rels`` and ``[Content_Types].xml``;
   reject Word/Excel/other zips; relabel slideshow (.ppsx) and template
   (.potx) main parts as a presentation, which python-pptx otherwise refuses.
4. Count the slides declared in the main part (limits, empty decks).
5. Open with python-pptx; if member data is damaged, keep the readable
   members and try once more.
"""

from __future__ import annotations

import io
import logging
import posixpath
import zipfile
import zlib
from dataclasses import dataclass

import pptx
from lxml import etree
from pptx.exc import PythonPptxError
from pptx.presentation import Presentation

from osmose.config import Limits
from osmose.documents.parsing.limits import MAX_ZIP_ENTRIES, UNCOMPRESSED_FACTOR, WarningLog, check_page_count
from osmose.documents.parsing.ooxml_salvage import readable_members, rebuild_zip, scan_local_entries
from osmose.errors import (
    CorruptDocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    UnsupportedFormatError,
)

__all__ = ["OpenedPackage", "open_presentation"]

logger = logging.getLogger(__name__)

CONTENT_TYPES = "[Content_Types].xml"
ROOT_RELS = "_rels/.rels"
PRESENTATION_MAIN = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
_NATIVE_MAIN = {
    PRESENTATION_MAIN,
    "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml",
}
# Main parts that hold an ordinary presentation under another label.
_RELABELED_MAIN = {
    "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml": "slideshow (.ppsx)",
    "application/vnd.openxmlformats-officedocument.presentationml.template.main+xml": "template (.potx)",
    "application/vnd.ms-powerpoint.slideshow.macroEnabled.main+xml": "macro-enabled slideshow (.ppsm)",
    "application/vnd.ms-powerpoint.template.macroEnabled.main+xml": "macro-enabled template (.potm)",
}
_OFFICE_DOCUMENT_REL = "/officeDocument"
_CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
# Parser for the few package XML files read here: no entities, no network, default size bounds.
_SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
_VERIFY_CHUNK = 1 << 20
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, KeyError)
# python-pptx surfaces package damage as these (KeyError: missing part or content type).
# InvalidXmlError (a required attribute missing in [Content_Types].xml or a .rels part) was a
# fuzzing finding: it reached the caller as "unreadable" (tests/fuzz/findings/README.md).
_PPTX_ERRORS = (*_ZIP_ERRORS, etree.LxmlError, AttributeError, TypeError, IndexError, PythonPptxError)


@dataclass(frozen=True)
class OpenedPackage:
    presentation: Presentation
    declared_slides: int
    main_content_type: str
    # "" for an intact zip, else the reason code its repair would fail with ("truncated", "corrupt").
    damage: str = ""


def open_presentation(data: bytes, *, limits: Limits, warnings: WarningLog) -> OpenedPackage:
    """python-pptx presentation for OOXML `data` (see the module docstring for the steps)."""
    max_total = limits.max_file_bytes * UNCOMPRESSED_FACTOR
    damage = ""
    zf = _open_zip(data)
    if zf is None:
        damage = "truncated" if _looks_truncated(data) else "corrupt"
        data = _salvage_truncated(data, max_total, warnings)
        zf = _open_zip(data)
        if zf is None:  # pragma: no cover - rebuild_zip always writes a valid directory
            raise CorruptDocumentError("recovered zip members could not be reassembled")
    with zf:
        _check_bounds(zf, max_total)
        lying = _members_inflating_past_their_size(zf)
        main_name, content_type = _main_part(zf)
        slide_count = _declared_slide_count(zf, main_name)
        if content_type not in _NATIVE_MAIN:
            warnings.add(f"main part is a {_RELABELED_MAIN[content_type]}; read as an ordinary presentation")
            data = _relabel_main(zf, main_name)
    check_page_count(slide_count, limits, unit="slides")
    if slide_count == 0:
        raise EmptyDocumentError("presentation has no slides", reason="no-slides")
    try:
        if lying:  # python-pptx would inflate them whole: read the members one bounded chunk at a time
            raise zipfile.BadZipFile(f"members whose data does not match their declared size: {', '.join(lying[:5])}")
        prs = pptx.Presentation(io.BytesIO(data))
    except _PPTX_ERRORS as exc:
        logger.info(
            "python-pptx refused the package (%s: %s); retrying with readable members",
            type(exc).__name__,
            exc,
        )
        prs = _open_readable_members(data, max_total, warnings, first_error=exc)
        damage = damage or "corrupt"
    return OpenedPackage(
        presentation=prs, declared_slides=slide_count, main_content_type=content_type, damage=damage
    )


def _open_zip(data: bytes) -> zipfile.ZipFile | None:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS:
        return None


def _looks_truncated(data: bytes) -> bool:
    """A zip ends with its end-of-central-directory record (within the last 64 KiB)."""
    return b"PK\x05\x06" not in data[-(65536 + 22) :]


def _salvage_truncated(data: bytes, max_total: int, warnings: WarningLog) -> bytes:
    truncated = _looks_truncated(data)
    what = (
        "has no central directory (the file was cut short)"
        if truncated
        else "has a damaged central directory"
    )
    result = scan_local_entries(data, max_total_bytes=max_total)
    names = set(result.entries)
    if CONTENT_TYPES not in names or ROOT_RELS not in names:
        raise CorruptDocumentError(
            f"zip archive {what}; the package's [Content_Types].xml or _rels/.rels "
            f"is not among the {len(names)} recoverable members",
            reason="truncated" if truncated else "corrupt",
        )
    warnings.add(f"zip archive {what}; recovered {len(names)} members from their local headers")
    for problem in result.problems[:10]:
        warnings.add(problem)
    return rebuild_zip(result.entries)


def _check_bounds(zf: zipfile.ZipFile, max_total: int) -> None:
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise DocumentTooLargeError(
            f"zip archive has {len(infos):,} members (limit {MAX_ZIP_ENTRIES:,})",
            reason="uncompressed-too-large",
        )
    total = sum(i.file_size for i in infos)
    if total > max_total:
        raise DocumentTooLargeError(
            f"zip members expand to {total:,} bytes, above the bound of {max_total:,} "
            f"({UNCOMPRESSED_FACTOR}x limits.max_file_bytes)",
            reason="uncompressed-too-large",
        )


def _members_inflating_past_their_size(zf: zipfile.ZipFile) -> list[str]:
    """Deflated members whose data is damaged or does not end at its declared size.

    zipfile trusts the declared size only to cut the output: ``ZipFile.read`` inflates a
    member's whole compressed data in one call first, so a member declaring 100 bytes whose
    1 MB of deflate inflates to 1 GiB allocates 1 GiB (fuzzing finding, see
    tests/fuzz/findings/README.md). Each member is read here in chunks (bounded memory, at
    most its declared size of work); python-pptx only sees packages that pass.
    """
    bad: list[str] = []
    for info in zf.infolist():
        if info.compress_type != zipfile.ZIP_DEFLATED or info.is_dir():
            continue
        try:
            with zf.open(info) as member:
                while member.read(_VERIFY_CHUNK):
                    pass
        except _ZIP_ERRORS:
            bad.append(info.filename)
    return bad


def _main_part(zf: zipfile.ZipFile) -> tuple[str, str]:
    """(member name, content type) of the package's main part."""
    names = set(zf.namelist())
    if CONTENT_TYPES not in names:
        if "mimetype" in names and zf.read("mimetype").startswith(b"application/vnd.oasis.opendocument"):
            kind = zf.read("mimetype").decode("ascii", "replace")
            raise UnsupportedFormatError(
                f"content is an OpenDocument file ({kind}), not a PowerPoint file",
                reason="not-a-presentation",
            )
        raise UnsupportedFormatError(
            "content is a zip archive that is not an Office document", reason="not-a-presentation"
        )
    if ROOT_RELS not in names:
        raise CorruptDocumentError("OOXML package without _rels/.rels (cannot find the main part)")
    rels = _parse(zf.read(ROOT_RELS), ROOT_RELS)
    target = next(
        (
            r.get("Target", "")
            for r in rels.iter(f"{{{_REL_NS}}}Relationship")
            if r.get("Type", "").endswith(_OFFICE_DOCUMENT_REL) and r.get("TargetMode") != "External"
        ),
        "",
    )
    if not target:
        raise CorruptDocumentError("OOXML package has no officeDocument relationship (no main part)")
    member = posixpath.normpath(target.lstrip("/"))
    types = _parse(zf.read(CONTENT_TYPES), CONTENT_TYPES)
    content_type = ""
    for override in types.iter(f"{{{_CT_NS}}}Override"):
        if override.get("PartName", "").lstrip("/").lower() == member.lower():
            content_type = override.get("ContentType", "")
    if not content_type:
        ext = posixpath.splitext(member)[1].lstrip(".").lower()
        for default in types.iter(f"{{{_CT_NS}}}Default"):
            if default.get("Extension", "").lower() == ext:
                content_type = default.get("ContentType", "")
    if content_type in _NATIVE_MAIN or content_type in _RELABELED_MAIN:
        return member, content_type
    if "wordprocessingml" in content_type or "ms-word" in content_type:
        label = "a Word document"
    elif "spreadsheetml" in content_type or "ms-excel" in content_type:
        label = "an Excel workbook"
    else:
        label = f"an OOXML package of type {content_type or 'unknown'}"
    raise UnsupportedFormatError(f"content is {label}, not a presentation", reason="not-a-presentation")


def _declared_slide_count(zf: zipfile.ZipFile, main_name: str) -> int:
    try:
        root = _parse(zf.read(main_name), main_name)
    except KeyError:
        raise CorruptDocumentError(f"main part {main_name} is missing from the package") from None
    return int(root.xpath("count(./*[local-name()='sldIdLst']/*[local-name()='sldId'])"))


def _relabel_main(zf: zipfile.ZipFile, main_name: str) -> bytes:
    types = _parse(zf.read(CONTENT_TYPES), CONTENT_TYPES)
    for override in types.iter(f"{{{_CT_NS}}}Override"):
        if override.get("PartName", "").lstrip("/").lower() == main_name.lower():
            override.set("ContentType", PRESENTATION_MAIN)
    entries = {info.filename: zf.read(info) for info in zf.infolist() if not info.is_dir()}
    entries[CONTENT_TYPES] = etree.tostring(types, xml_declaration=True, encoding="UTF-8", standalone=True)
    return rebuild_zip(entries)


def _open_readable_members(
    data: bytes, max_total: int, warnings: WarningLog, *, first_error: Exception
) -> Presentation:
    try:
        result = readable_members(data, max_total_bytes=max_total)
    except _ZIP_ERRORS as exc:
        raise CorruptDocumentError(f"python-pptx could not read the package: {first_error}") from exc
    if not result.problems:
        raise CorruptDocumentError(
            f"python-pptx could not read the package: {type(first_error).__name__}: {first_error}"
        ) from first_error
    try:
        prs = pptx.Presentation(io.BytesIO(rebuild_zip(result.entries)))
    except _PPTX_ERRORS as exc:
        raise CorruptDocumentError(
            f"package is damaged beyond repair: {type(exc).__name__}: {exc} ({'; '.join(result.problems[:3])})"
        ) from exc
    for problem in result.problems[:10]:
        warnings.add(problem)
    return prs


def _parse(blob: bytes, name: str) -> etree._Element:
    try:
        return etree.fromstring(blob, parser=_SAFE_XML)
    except etree.XMLSyntaxError as exc:
        raise CorruptDocumentError(f"{name} is not well-formed XML: {exc}") from exc
