"""Builders for the vision tests: PDFs, decks and slides made on the fly (no parser involved).

Imported as ``tests.unit.vision.builders``, like ``tests.support``; the PDF page builders
shared with the rendering tests live in ``tests.fixtures.pdf_pages``."""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb

FULL_PAGE = pb.Box(x=0.0, y=0.0, width=1.0, height=1.0)

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")
needs_soffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")


def image_slide(number: int, *, needed: bool = True, words: str = "") -> pb.Slide:
    """A page covered by a picture, with `words` of text of its own."""
    slide = pb.Slide(number=number, pictures=[pb.Picture(name="scan", width_px=1275, height_px=1650, box=FULL_PAGE)],
                     visual_ratio=1.0)
    if words:
        slide.blocks.add(text=words, role=pb.BLOCK_ROLE_BODY)
    slide.vision_decision.needed = needed
    slide.vision_decision.reason = "image-only page" if needed else "text only"
    return slide


def visual_slide(number: int) -> pb.Slide:
    """A slide with a title, a chart, a table, a picture and notes: enough text to need no OCR."""
    slide = pb.Slide(number=number, title="Quarterly revenue by region", notes="Mention the EMEA slowdown.")
    slide.blocks.add(text="Quarterly revenue by region", role=pb.BLOCK_ROLE_TITLE)
    slide.blocks.add(text="Revenue grew in every region except EMEA, where the new pricing model "
                          "slowed renewals during the second quarter of the year", role=pb.BLOCK_ROLE_BODY)
    slide.charts.add(chart_type="BAR_CLUSTERED", title="Revenue (M€)", categories=["Q1", "Q2", "Q3"],
                     series=[pb.ChartSeries(name="Americas", values=[12.5, 14.0, 15.25]),
                             pb.ChartSeries(name="EMEA", values=[9, 8, float("nan")])],
                     box=pb.Box(x=0.05, y=0.3, width=0.5, height=0.6))
    slide.tables.add(rows=[pb.TableRow(cells=["Region", "Owner"]), pb.TableRow(cells=["EMEA", "Zoë Martin"])])
    slide.pictures.add(name="Picture 4", alt_text="World map with sales offices", width_px=1200, height_px=800,
                       box=pb.Box(x=0.6, y=0.3, width=0.4, height=0.5))
    slide.vision_decision.needed = True
    slide.vision_decision.reason = "visual slide"
    return slide


def deck_bytes(slides: Sequence[str | bytes], *, hidden: Sequence[int] = ()) -> bytes:
    """A 16:9 deck: a str makes a title slide, bytes (a PNG) a slide that is only that picture."""
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    for index, content in enumerate(slides, start=1):
        if isinstance(content, str):
            slide = prs.slides.add_slide(prs.slide_layouts[5])
            slide.shapes.title.text = content
        else:
            slide = prs.slides.add_slide(prs.slide_layouts[6])
            slide.shapes.add_picture(io.BytesIO(content), 0, 0, prs.slide_width, prs.slide_height)
        if index in hidden:
            slide._element.set("show", "0")
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()


def make_item(source: Path | str, slides: Sequence[pb.Slide], *, fmt: int = pb.SOURCE_FORMAT_PDF,
              languages: Sequence[str] = ("en",), doc_id: str = "0123456789abcdef0123456789abcdef") -> ppb.WorkItem:
    """A planned work item for `source` whose parsed document is `slides`."""
    doc = pb.Document(doc_id=doc_id, file_name=Path(source).name, format=fmt, slides=list(slides),
                      language=languages[0] if languages else "")
    return ppb.WorkItem(job_id="job-vision", tenant="acme", document=doc, source_uri=str(source),
                        plan=ppb.TriagePlan(tier=pb.TIER_DEEP, language=doc.language, languages=list(languages)))
