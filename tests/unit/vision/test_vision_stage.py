"""The vision stage end to end on small files: which path each flagged page takes, and why."""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pymupdf
import pytest

from osmose.config import Settings
from osmose.documents.rendering import render_cache_path
from osmose.services.vision import VisionConfig, VisionStage
from osmose.services.vision.ocr import OcrResult, Tesseract
from osmose.stage import PipelineStage
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb
from tests.fixtures.pdf_pages import OCR_WORDS, add_declared_bomb_page, add_image_only_page, text_pixmap
from tests.unit.vision.builders import (
    deck_bytes,
    image_slide,
    make_item,
    needs_soffice,
    needs_tesseract,
    visual_slide,
)

pytestmark = pytest.mark.anyio

BOMB = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "bad" / "pdfjs-bomb-giant.pdf"


async def run(stage: VisionStage, item: ppb.WorkItem) -> ppb.WorkItem:
    return await stage.process(item)


def test_is_a_pipeline_stage(settings: Settings) -> None:
    stage = VisionStage(VisionConfig.from_settings(settings))
    assert isinstance(stage, PipelineStage)
    assert stage.name == "vision"


@needs_tesseract
async def test_image_only_page_is_rendered_and_read(settings: Settings, scan_pdf: Path) -> None:
    item = await run(VisionStage(VisionConfig.from_settings(settings)), make_item(scan_pdf, [image_slide(1)]))
    vision = item.document.slides[0].vision
    assert vision.path == pb.VISION_PATH_OCR
    for word in OCR_WORDS:
        assert word in vision.text
    assert vision.renderer == "pymupdf"
    assert not vision.degraded
    assert vision.notes[0].startswith("OCR (eng) of the page rendered at ")
    assert (item.counters.rendered_pages, item.counters.ocr_pages) == (1, 1)
    assert list(item.warnings) == []


async def test_text_rich_visual_slide_is_described_without_rendering(settings: Settings, scan_pdf: Path) -> None:
    item = await run(VisionStage(VisionConfig.from_settings(settings)), make_item(scan_pdf, [visual_slide(1)]))
    vision = item.document.slides[0].vision
    assert vision.path == pb.VISION_PATH_DESCRIPTION
    assert not vision.degraded
    assert vision.renderer == ""
    assert vision.text.startswith("Page 1: Quarterly revenue by region")
    assert "Series 'Americas': Q1 = 12.5" in vision.text
    assert "World map with sales offices" in vision.text
    assert list(vision.notes) == ["described from parsed content: 37 words of text on the page"]
    assert (item.counters.rendered_pages, item.counters.ocr_pages) == (0, 0)


async def test_slides_not_flagged_are_untouched(settings: Settings, scan_pdf: Path) -> None:
    item = make_item(scan_pdf, [image_slide(1, needed=False)])
    before = item.SerializeToString(deterministic=True)
    after = await run(VisionStage(VisionConfig.from_settings(settings)), item)
    assert after.SerializeToString(deterministic=True) == before
    assert not after.document.slides[0].HasField("vision")


async def test_missing_tesseract_degrades_to_a_description(tmp_path: Path, scan_pdf: Path) -> None:
    settings = Settings(data_dir=tmp_path, tesseract=str(tmp_path / "bin" / "tesseract"))
    item = await run(VisionStage(VisionConfig.from_settings(settings)), make_item(scan_pdf, [image_slide(1), visual_slide(2)]))
    scan, visual = item.document.slides
    assert scan.vision.path == pb.VISION_PATH_DESCRIPTION
    assert scan.vision.degraded
    assert scan.vision.renderer == ""
    assert scan.vision.notes[0] == (f"OCR wanted (0 words of text) but Tesseract not found at configured path "
                                    f"{settings.tesseract!r}")
    assert scan.vision.text.startswith("Page 1 (untitled)\nPicture 1: no alt text")
    assert not visual.vision.degraded  # it never needed OCR
    assert (item.counters.rendered_pages, item.counters.ocr_pages) == (0, 0)
    assert any("OCR unavailable" in w and "1 image-only pages" in w for w in item.warnings)


async def test_missing_libreoffice_degrades_a_deck(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, soffice=str(tmp_path / "bin" / "soffice"))
    deck = tmp_path / "deck.pptx"
    deck.write_bytes(deck_bytes([text_pixmap().tobytes("png")]))
    item = await run(VisionStage(VisionConfig.from_settings(settings)), make_item(deck, [image_slide(1)], fmt=pb.SOURCE_FORMAT_PPTX))
    vision = item.document.slides[0].vision
    assert vision.path == pb.VISION_PATH_DESCRIPTION
    assert vision.degraded
    assert "LibreOffice not found at configured path" in vision.notes[0]
    assert vision.text.startswith("Slide 1 (untitled)")
    assert any("OCR unavailable" in w for w in item.warnings)


async def test_missing_source_file_degrades(settings: Settings, tmp_path: Path) -> None:
    item = await run(VisionStage(VisionConfig.from_settings(settings)), make_item(tmp_path / "gone.pdf", [image_slide(1)]))
    vision = item.document.slides[0].vision
    assert vision.degraded and vision.path == pb.VISION_PATH_DESCRIPTION
    assert "source file not available" in vision.notes[0]


@needs_tesseract
async def test_one_bad_page_does_not_fail_the_document(settings: Settings, tmp_path: Path) -> None:
    pdf = tmp_path / "mixed.pdf"
    doc = pymupdf.open()
    add_image_only_page(doc, text_pixmap())
    add_declared_bomb_page(doc)
    doc.new_page()  # blank
    doc.save(pdf)
    item = await run(VisionStage(VisionConfig.from_settings(settings)), make_item(pdf, [image_slide(1), image_slide(2), image_slide(3)]))
    good, bomb, blank = (s.vision for s in item.document.slides)
    assert good.path == pb.VISION_PATH_OCR and "INVOICE" in good.text
    assert bomb.path == pb.VISION_PATH_DESCRIPTION and bomb.degraded
    assert "render failed (pymupdf)" in bomb.notes[0] and "declares 100000x100000 pixels" in bomb.notes[0]
    assert bomb.renderer == ""
    assert blank.path == pb.VISION_PATH_DESCRIPTION and blank.degraded
    assert blank.notes[0] == "OCR wanted but the rendered page is blank"
    assert blank.renderer == "pymupdf"
    assert [w for w in item.warnings if w.startswith("vision: page 2: render failed")]
    assert (item.counters.rendered_pages, item.counters.ocr_pages) == (2, 1)


@needs_tesseract
async def test_ocr_that_finds_nothing_degrades(settings: Settings, tmp_path: Path) -> None:
    pdf = tmp_path / "shapes.pdf"
    doc = pymupdf.open()
    page = doc.new_page()
    page.draw_rect(pymupdf.Rect(100, 100, 400, 300), color=(0, 0, 0), fill=(0.5, 0.5, 0.5))
    doc.save(pdf)
    item = await run(VisionStage(VisionConfig.from_settings(settings)), make_item(pdf, [image_slide(1)]))
    vision = item.document.slides[0].vision
    assert vision.path == pb.VISION_PATH_DESCRIPTION and vision.degraded
    assert vision.notes[0] == "OCR (eng) found no text"
    assert vision.renderer == "pymupdf"
    assert (item.counters.rendered_pages, item.counters.ocr_pages) == (1, 1)


@needs_tesseract
async def test_ocr_language_follows_the_plan(settings: Settings, tmp_path: Path) -> None:
    pdf = tmp_path / "fr.pdf"
    doc = pymupdf.open()
    add_image_only_page(doc, text_pixmap("Réunion de l'équipe à Genève", fontsize=30))
    doc.save(pdf)
    item = await run(VisionStage(VisionConfig.from_settings(settings)), make_item(pdf, [image_slide(1)], languages=["fr", "en"]))
    vision = item.document.slides[0].vision
    assert vision.path == pb.VISION_PATH_OCR
    assert vision.notes[0].startswith("OCR (fra+eng)")
    assert "Genève" in vision.text


async def test_pages_run_concurrently_but_bounded(settings: Settings, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    pdf = tmp_path / "six.pdf"
    doc = pymupdf.open()
    for _ in range(6):
        add_image_only_page(doc, text_pixmap())
    doc.save(pdf)
    in_flight, peak = 0, 0
    both_in = asyncio.Event()   # the first two pages wait here for each other: overlap by construction

    async def fake_recognize(self: Tesseract, png: bytes, *, languages: str = "eng",
                             dpi: int | None = None) -> OcrResult:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 2:
            both_in.set()
        # a bound of 1 would leave the first page here alone: fail, do not hang
        await asyncio.wait_for(both_in.wait(), timeout=30)
        in_flight -= 1
        return OcrResult("INVOICE", languages, 0.2)

    monkeypatch.setattr(Tesseract, "recognize", fake_recognize)
    monkeypatch.setattr(Tesseract, "available", property(lambda self: True))
    monkeypatch.setattr(Tesseract, "missing", property(lambda self: ""))
    item = await run(VisionStage(replace(VisionConfig.from_settings(settings), concurrency=2)), make_item(pdf, [image_slide(n) for n in range(1, 7)]))
    assert peak == 2
    assert all(s.vision.path == pb.VISION_PATH_OCR for s in item.document.slides)
    assert item.counters.ocr_pages == 6


async def test_a_crash_inside_one_page_is_recorded_not_raised(settings: Settings, scan_pdf: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # The description raises once (the page's own path), then works (the fallback).
    calls = iter([RuntimeError("boom"), "fallback text"])

    def flaky(slide: pb.Slide, *, unit: str = "Slide") -> str:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    monkeypatch.setattr("osmose.services.vision.stage.describe_slide", flaky)
    item = await run(VisionStage(VisionConfig.from_settings(settings)), make_item(scan_pdf, [visual_slide(1)]))
    vision = item.document.slides[0].vision
    assert vision.path == pb.VISION_PATH_DESCRIPTION and vision.degraded
    assert vision.text == "fallback text"
    assert vision.notes[0] == "vision failed: RuntimeError: boom"
    assert "vision: page 1: RuntimeError: boom" in item.warnings


class _FakeDescriber:
    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.images: list[bytes] = []

    async def describe(self, slide: pb.Slide, png: bytes) -> str:
        self.images.append(png)
        if self.fail:
            raise ConnectionError("model down")
        return f"a picture on slide {slide.number}"


async def test_describer_seam_is_used_when_injected(settings: Settings, scan_pdf: Path) -> None:
    describer = _FakeDescriber()
    item = await run(VisionStage(VisionConfig.from_settings(settings), describer=describer), make_item(scan_pdf, [visual_slide(1)]))
    vision = item.document.slides[0].vision
    assert vision.path == pb.VISION_PATH_LLM
    assert vision.text == "a picture on slide 1"
    assert vision.renderer == "pymupdf" and not vision.degraded
    assert describer.images[0].startswith(b"\x89PNG")
    assert pymupdf.Pixmap(describer.images[0]).n == 3  # colour for a model, not grey


async def test_describer_failure_falls_back_and_is_marked_degraded(settings: Settings, scan_pdf: Path) -> None:
    item = await run(VisionStage(VisionConfig.from_settings(settings), describer=_FakeDescriber(fail=True)), make_item(scan_pdf, [visual_slide(1)]))
    vision = item.document.slides[0].vision
    assert vision.path == pb.VISION_PATH_DESCRIPTION
    assert vision.degraded
    assert vision.notes[0].startswith("vision model failed: ConnectionError: model down")
    assert vision.renderer == "pymupdf"  # the page was rendered for the model
    assert any("vision model failed" in w for w in item.warnings)


async def test_replay_gives_the_same_document(settings: Settings, scan_pdf: Path) -> None:
    first = await run(VisionStage(VisionConfig.from_settings(settings)), make_item(scan_pdf, [visual_slide(1), image_slide(2, needed=False)]))
    again = await run(VisionStage(VisionConfig.from_settings(settings)), make_item(scan_pdf, [visual_slide(1), image_slide(2, needed=False)]))
    assert first.document.SerializeToString(deterministic=True) == again.document.SerializeToString(deterministic=True)


@pytest.mark.skipif(not BOMB.exists(), reason=f"corpus bomb not found at {BOMB}")
async def test_corpus_bomb_page_is_handled_in_bounded_time(settings: Settings) -> None:
    started = time.perf_counter()
    item = await run(VisionStage(VisionConfig.from_settings(settings)), make_item(BOMB, [image_slide(1)]))
    assert time.perf_counter() - started < 60
    vision = item.document.slides[0].vision
    assert vision.path in (pb.VISION_PATH_OCR, pb.VISION_PATH_DESCRIPTION)
    assert vision.notes


@pytest.mark.slow
@needs_soffice
@needs_tesseract
async def test_deck_is_rendered_through_libreoffice_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    deck = tmp_path / "deck.pptx"
    # Slide 2 is hidden: LibreOffice must still export it, or slide 3 would get page 2's image.
    picture = text_pixmap(width=800, height=450, fontsize=48, dpi=100).tobytes("png")
    deck.write_bytes(deck_bytes(["Agenda for the quarterly review", "Backup numbers", picture], hidden=[2]))
    slides = [pb.Slide(number=1, title="Agenda for the quarterly review"),
              pb.Slide(number=2, title="Backup numbers", hidden=True), image_slide(3)]
    item = await run(VisionStage(VisionConfig.from_settings(settings)), make_item(deck, slides, fmt=pb.SOURCE_FORMAT_PPTX,
                                                doc_id="fedcba9876543210fedcba9876543210"))
    vision = item.document.slides[2].vision
    assert vision.path == pb.VISION_PATH_OCR, list(vision.notes)
    assert vision.renderer == "libreoffice+pymupdf"
    for word in OCR_WORDS:
        assert word in vision.text
    assert not item.document.slides[0].HasField("vision")
    cached = render_cache_path(settings.data_dir, "fedcba9876543210fedcba9876543210", "acme")
    assert pymupdf.open(cached).page_count == 3

    # Second run: served from the cache, so it works even without LibreOffice.
    offline = Settings(data_dir=settings.data_dir, soffice=str(tmp_path / "no-soffice"))
    again = await run(VisionStage(VisionConfig.from_settings(offline)), make_item(deck, slides, fmt=pb.SOURCE_FORMAT_PPTX,
                                                doc_id="fedcba9876543210fedcba9876543210"))
    assert again.document.slides[2].vision.path == pb.VISION_PATH_OCR
    assert shutil.which("soffice")  # (the first run really used it)
