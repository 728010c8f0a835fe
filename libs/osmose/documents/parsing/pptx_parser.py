"""PPTX (and converted PPT) decks into :class:`pb.Slide` messages.

Per slide: text blocks in reading order with roles and boxes, the title (title
placeholder, else the largest/top-most short text), tables, charts, pictures,
speaker notes, hidden flag, section name and the share of the slide covered by
pictures, charts and other embedded graphics.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from lxml import etree
from pptx.presentation import Presentation

from osmose.config import Settings
from osmose.documents.parsing.geometry import Rect, coverage_ratio, to_box
from osmose.documents.parsing.limits import WarningLog, cap_slide_text
from osmose.documents.parsing.ooxml_package import open_presentation
from osmose.documents.parsing.ooxml_text import one_line, qn, text_of_body
from osmose.documents.parsing.pptx_pictures import PictureReader
from osmose.documents.parsing.pptx_placeholders import PlaceholderGeometry
from osmose.documents.parsing.pptx_shapes import ShapeContent, ShapeWalker
from osmose.errors import CorruptDocumentError
from osmose.v1 import document_pb2 as pb

__all__ = ["parse_pptx"]

logger = logging.getLogger(__name__)

EMU_PER_INCH = 914_400
# PowerPoint's default 4:3 size, used when presentation.xml omits sldSz.
_DEFAULT_SIZE = (9_144_000, 6_858_000)
# Text near a picture/chart (within this share of the slide height) with few words is its caption.
_CAPTION_GAP = 0.05
_CAPTION_MAX_WORDS = 25
_TITLE_MAX_CHARS = 200
_DEFAULT_FONT_PT = 18.0
# Core-properties titles that PowerPoint and converters write by default; they name nothing.
_GENERIC_TITLES = re.compile(
    r"^(|untitled|title|click to add title|presentation|"
    r"(powerpoint|office)[ -](presentation|präsentation|presentatie)|"
    r"(présentation|presentación|apresentação|presentazione|prezentacja) (de |do |di )?powerpoint|"
    r"(slide|folie|diapositive|diapositiva|dia|slajd|スライド|幻灯片|投影片)\s*\d+)$",
    re.IGNORECASE,
)
_NOTES_SKIPPED = {"sldNum", "sldImg", "hdr", "ftr", "dt"}
# Text LibreOffice leaves in notes pages converted from .ppt (empty header/footer fields).
_CONVERTER_PLACEHOLDERS = {"<number>", "<footer>", "<header>", "<date/time>"}


def parse_pptx(data: bytes, *, doc: pb.Document, settings: Settings, warnings: WarningLog) -> None:
    """Fill `doc` (slides, title, metadata) from the OOXML bytes `data`."""
    opened = open_presentation(data, limits=settings.limits, warnings=warnings)
    prs = opened.presentation
    width, height = _slide_size(prs, warnings)
    sections = _sections(prs.element)
    pictures = PictureReader(max_image_pixels=settings.limits.max_image_pixels, warnings=warnings)
    placeholders = PlaceholderGeometry()
    sld_id_lst = prs.element.find(qn("p:sldIdLst"))
    sld_ids = list(sld_id_lst.iterchildren(qn("p:sldId"))) if sld_id_lst is not None else []
    missing: list[int] = []
    for number, sld_id in enumerate(sld_ids, start=1):
        slide_pb = pb.Slide(number=number)
        try:
            slide = prs.part.related_slide(sld_id.get(qn("r:id")))
        except (KeyError, ValueError, AttributeError):
            missing.append(number)
            doc.slides.append(slide_pb)
            continue
        try:
            _fill_slide(
                slide_pb,
                slide,
                width=width,
                height=height,
                pictures=pictures,
                placeholders=placeholders,
                warnings=warnings,
            )
        except Exception as exc:  # a damaged slide must not lose the others
            logger.debug("slide %d unreadable", number, exc_info=True)
            warnings.add(f"slide {number}: unreadable ({type(exc).__name__}: {exc}); kept as an empty slide")
            slide_pb = pb.Slide(number=number)
        slide_pb.section = sections.get(_int(sld_id.get("id")), "")
        if cap_slide_text(slide_pb, settings.limits.max_page_chars):
            warnings.add(f"slide {number}: text truncated to {settings.limits.max_page_chars:,} characters")
        doc.slides.append(slide_pb)
    if missing and len(missing) == len(sld_ids):
        raise CorruptDocumentError(
            f"none of the {len(sld_ids)} slides could be read from the package",
            reason=opened.damage or "corrupt",
        )
    if missing:
        warnings.add(
            f"{len(missing)} slides missing from the package, kept as empty slides: {_ranges(missing)}"
        )
    pictures.report()
    _fill_document(doc, prs, width=width, height=height)


def _fill_slide(
    out: pb.Slide,
    slide: Any,
    *,
    width: float,
    height: float,
    pictures: PictureReader,
    placeholders: PlaceholderGeometry,
    warnings: WarningLog,
) -> None:
    where = f"slide {out.number}"
    walker = ShapeWalker(
        part=slide.part,
        slide_height=height,
        inheritance=placeholders.for_slide(slide.part),
        pictures=pictures,
        warnings=warnings,
        where=where,
    )
    sp_tree = slide.element.find(f"{qn('p:cSld')}/{qn('p:spTree')}")
    contents = walker.walk(sp_tree) if sp_tree is not None else []
    visual = [c.rect for c in contents if c.kind in ("picture", "chart", "visual") and c.rect is not None]
    texts = [c for c in contents if c.kind == "text"]
    _mark_captions(texts, visual, height)
    out.title = _choose_title(texts, height)
    for c in contents:
        box = to_box(c.rect, width, height) if c.rect is not None else None
        if c.kind == "text":
            out.blocks.append(pb.TextBlock(text=c.text, role=c.role, box=box))
        elif c.kind == "table" and c.table is not None:
            c.table.box.CopyFrom(box or pb.Box())
            out.tables.append(c.table)
        elif c.kind == "chart" and c.chart is not None:
            c.chart.box.CopyFrom(box or pb.Box())
            out.charts.append(c.chart)
        elif c.kind == "picture" and c.picture is not None:
            c.picture.box.CopyFrom(box or pb.Box())
            out.pictures.append(c.picture)
    out.visual_ratio = coverage_ratio(visual, width, height)
    out.hidden = slide.element.get("show") in ("0", "false")
    out.notes = _notes(slide, where, warnings)


def _mark_captions(texts: list[ShapeContent], visual: list[Rect], height: float) -> None:
    gap = height * _CAPTION_GAP
    for item in texts:
        rect = item.rect
        if item.placeholder or rect is None or item.role != pb.BLOCK_ROLE_BODY:
            continue
        if len(item.text.split()) > _CAPTION_MAX_WORDS:
            continue
        for v in visual:
            below, above = rect.y0 - v.y1, v.y0 - rect.y1
            close = -gap / 2 <= below <= gap or -gap / 2 <= above <= gap
            if close and rect.horizontal_overlap(v) >= 0.5 * max(rect.width, 1.0):
                item.role = pb.BLOCK_ROLE_CAPTION
                break


def _choose_title(texts: list[ShapeContent], height: float) -> str:
    for item in texts:
        if item.role == pb.BLOCK_ROLE_TITLE:
            return one_line(item.text)
    candidates = [
        t
        for t in texts
        if t.role == pb.BLOCK_ROLE_BODY
        and t.rect is not None
        and t.rect.y0 < height / 2
        and len(t.text) <= _TITLE_MAX_CHARS
        and t.text.count("\n") <= 1
    ]
    if not candidates:
        return ""
    # Inherited sizes are unknown here; PowerPoint's default text size (18 pt) stands in.
    best = max(candidates, key=lambda t: (t.font_size or _DEFAULT_FONT_PT, -t.rect.y0 if t.rect else 0.0))
    best.role = pb.BLOCK_ROLE_TITLE
    return one_line(best.text)


def _notes(slide: Any, where: str, warnings: WarningLog) -> str:
    try:
        if not slide.has_notes_slide:
            return ""
        notes_elm = slide.notes_slide.element
    except (KeyError, ValueError, AttributeError) as exc:
        warnings.add(f"{where}: speaker notes unreadable ({exc})")
        return ""
    texts: list[str] = []
    for sp in notes_elm.iter(qn("p:sp")):
        ph = sp.find(f"{qn('p:nvSpPr')}/{qn('p:nvPr')}/{qn('p:ph')}")
        if ph is not None and ph.get("type") in _NOTES_SKIPPED:
            continue
        # Fields are slide numbers, dates, headers: page furniture, not notes.
        text = text_of_body(sp.find(qn("p:txBody")), fields=False)
        if text and not (text.isdigit() and len(text) <= 4) and text not in _CONVERTER_PLACEHOLDERS:
            texts.append(text)
    return "\n".join(texts)


def _slide_size(prs: Presentation, warnings: WarningLog) -> tuple[float, float]:
    try:
        width, height = prs.slide_width, prs.slide_height
    except (ValueError, TypeError, AttributeError):
        width = height = None
    if not width or not height or width <= 0 or height <= 0:
        warnings.add("presentation declares no slide size; assumed 10x7.5 in")
        return _DEFAULT_SIZE
    return float(width), float(height)


def _sections(presentation: etree._Element) -> dict[int, str]:
    """{slide id: section name} from the p14 section list, when the deck has sections."""
    names: dict[int, str] = {}
    for section in presentation.xpath(".//*[local-name()='sectionLst']/*[local-name()='section']"):
        name = section.get("name", "")
        for sld_id in section.xpath("./*[local-name()='sldIdLst']/*[local-name()='sldId']"):
            names[_int(sld_id.get("id"))] = name
    return names


def _fill_document(doc: pb.Document, prs: Presentation, *, width: float, height: float) -> None:
    doc.metadata["slide_width_emu"] = str(int(width))
    doc.metadata["slide_height_emu"] = str(int(height))
    doc.metadata["slide_size_in"] = f"{width / EMU_PER_INCH:.2f}x{height / EMU_PER_INCH:.2f}"
    doc.metadata["slide_count"] = str(len(doc.slides))
    core_title = ""
    try:
        props = prs.core_properties
        core_title = one_line(props.title or "")
        for key, value in (
            ("author", props.author),
            ("last_modified_by", props.last_modified_by),
            ("subject", props.subject),
            ("created", props.created.isoformat() if props.created else ""),
            ("modified", props.modified.isoformat() if props.modified else ""),
        ):
            if value:
                doc.metadata[key] = str(value).strip()[:500]
    except (KeyError, ValueError, TypeError, AttributeError, etree.LxmlError) as exc:
        logger.debug("core properties unreadable: %s", exc)
    if not _GENERIC_TITLES.match(core_title):
        doc.title = core_title
    else:
        doc.title = next((s.title for s in doc.slides if s.title), "")


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 7] -> "1-3, 7"."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
