"""The vision stage: text for the slides triage flagged as visual.

For each flagged slide, one of three paths (``slide.vision.path``):

* **OCR** — the page has (almost) no text of its own (a scan, a slide made of a
  picture): it is rendered and read by Tesseract.
* **DESCRIPTION** — the page has text, or OCR was wanted but could not run or
  found nothing (then ``degraded`` is set and a note says what was missing): a
  structured description built from the parsed content.
* **LLM** — when a vision model is configured (a model runtime serving the
  ``vision_summary`` task: :class:`~osmose.services.vision.llm_describer.ModelDescriber`)
  or a :class:`SlideDescriber` is injected: the page is rendered in colour and
  summarised by the model. When the model cannot answer (server down, breaker
  open, retries spent) the page takes OCR or the description, marked degraded.
  The embedded default (no model configured) never takes this path.

A page that fails is noted in ``vision.notes`` and the work item's warnings and
falls back to its description; the document always goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from osmose.config import DEFAULT_DATA_DIR, Limits, Settings
from osmose.documents.rendering import RENDER_PIXEL_BUDGET, DocumentRenderer, RenderedPage, RenderError
from osmose.services.vision.describe import describe_slide
from osmose.services.vision.llm_describer import TASK as VISION_TASK
from osmose.services.vision.llm_describer import ModelDescriber
from osmose.services.vision.ocr import Tesseract
from osmose.text.slide_text import body_text, reads_as_scan, word_count
from osmose.v1 import document_pb2 as pb
from osmose.v1 import pipeline_pb2 as ppb

if TYPE_CHECKING:
    from osmose.models import ModelRuntime, ModelSession

__all__ = ["DEFAULT_CONCURRENCY", "SlideDescriber", "VisionConfig", "VisionStage"]

logger = logging.getLogger(__name__)

# Pages in flight per document: one renders while another is read (2 cores).
DEFAULT_CONCURRENCY = 2


class SlideDescriber(Protocol):
    """Seam for a vision language model: text for one slide from its rendered image.

    :class:`~osmose.services.vision.llm_describer.ModelDescriber` is the implementation
    (retries, caching by image hash and circuit breaking happen in its model session);
    any exception it raises makes the stage fall back to OCR/description and mark the
    page degraded. An implementation may also have ``available() -> bool``: when it
    says False the page is not even rendered for the model.
    """

    async def describe(self, slide: pb.Slide, png: bytes) -> str: ...


@dataclass
class _Page:
    """What happened to one flagged page, applied to the slide once it is done."""

    result: pb.VisionResult = field(default_factory=pb.VisionResult)
    # Why a better path was not taken ("render failed ...", "vision model failed ..."), in order.
    fallbacks: list[str] = field(default_factory=list)
    ocr_unavailable: bool = False  # OCR was wanted but Tesseract or the renderer is missing
    render_tried: bool = False
    rendered: bool = False
    ocr_run: bool = False
    warnings: list[str] = field(default_factory=list)
    render_s: float = 0.0  # rendering itself, as the worker measured it
    wait_s: float = 0.0  # from request to image: + queue, worker start, deck conversion
    ocr_s: float = 0.0


@dataclass(frozen=True)
class _Context:
    renderer: DocumentRenderer | None
    tesseract: Tesseract
    languages: str
    unit: str
    describer: SlideDescriber | None = None
    # OCR runs on this machine's cores: bounded even when every page is in flight for the model.
    cpu: asyncio.Semaphore | None = None


@dataclass(frozen=True, kw_only=True)
class VisionConfig:
    # Where rendered pages are cached (DATA_DIR/render-cache).
    data_dir: Path = DEFAULT_DATA_DIR
    limits: Limits = field(default_factory=Limits)
    # LibreOffice and Tesseract; None = looked up on PATH.
    soffice: str | None = None
    tesseract: str | None = None
    # Flagged slides worked on at once (rendering and OCR are CPU-bound).
    concurrency: int = DEFAULT_CONCURRENCY
    render_pixels: int = RENDER_PIXEL_BUDGET

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")

    @classmethod
    def from_settings(cls, settings: Settings) -> VisionConfig:
        return cls(data_dir=settings.data_dir, limits=settings.limits, soffice=settings.soffice,
                   tesseract=settings.tesseract)


class VisionStage:
    name = "vision"

    Config = VisionConfig

    def __init__(self, config: VisionConfig = VisionConfig(), *, models: ModelRuntime | None = None,
                 describer: SlideDescriber | None = None) -> None:
        self.config = config
        self.describer = describer
        # Used only when it serves vision_summary (a vision endpoint is configured).
        self.models = models if models is not None and models.serves(VISION_TASK) else None
        self.concurrency = config.concurrency
        self.render_pixels = config.render_pixels
        # What the renderer and Tesseract read, in the form they take.
        self._tools = Settings(data_dir=config.data_dir, limits=config.limits, soffice=config.soffice,
                               tesseract=config.tesseract)

    async def process(self, item: ppb.WorkItem) -> ppb.WorkItem:
        doc = item.document
        flagged = [s for s in doc.slides if s.vision_decision.needed]
        if not flagged:
            return item
        started = time.perf_counter()
        unit = "Page" if doc.format == pb.SOURCE_FORMAT_PDF else "Slide"
        session: ModelSession | None = None
        describer = self.describer
        if describer is None and self.models is not None:
            session = self.models.session(label=doc.file_name or doc.doc_id, scope=item.tenant)
            describer = ModelDescriber(session, unit=unit)
        tesseract = Tesseract.from_settings(self._tools)
        wants_ocr = any(self._wants_ocr(s) for s in flagged)
        codes = [c for c in (list(item.plan.languages) or [item.plan.language or doc.language]) if c]
        languages = await tesseract.languages_for(codes) if wants_ocr and tesseract.available else ""
        needs_render = describer is not None or wants_ocr
        renderer = (DocumentRenderer(self._tools, doc, item.source_uri, tenant=item.tenant,
                                     max_pixels=self.render_pixels,
                                     gray=describer is None) if needs_render else None)
        ctx = _Context(renderer, tesseract, languages, unit, describer, asyncio.Semaphore(self.concurrency))
        # With a model, pages wait on the GPU pool, not on this machine's cores: keep all of
        # them in flight (the model backend's own limit bounds the calls).
        semaphore = asyncio.Semaphore(len(flagged) if session is not None else self.concurrency)

        async def bounded(slide: pb.Slide) -> _Page:
            async with semaphore:
                return await self._page_or_fallback(slide, ctx)

        try:
            pages = await asyncio.gather(*(bounded(s) for s in flagged))
        finally:
            if renderer is not None:
                await renderer.aclose()

        for slide, page in zip(flagged, pages, strict=True):
            slide.vision.CopyFrom(page.result)
            item.warnings.extend(page.warnings)
            item.counters.rendered_pages += int(page.rendered)
            item.counters.ocr_pages += int(page.ocr_run)
        if session is not None:
            unused = sum(1 for page in pages if page.result.path != pb.VISION_PATH_LLM)
            session.fallback(VISION_TASK, unused)
            session.add_to(item)
            if unused:
                item.warnings.append(f"vision: the vision model did not describe {unused} of {len(pages)} "
                                     "flagged pages; they got OCR or a description instead (degraded)")
        unread = sum(1 for page in pages if page.ocr_unavailable)
        if unread:
            missing = "; ".join(m for m in (tesseract.missing, renderer.missing if renderer else "") if m)
            item.warnings.append(f"vision: OCR unavailable ({missing}): {unread} image-only pages described "
                                 "from their parsed content instead")
        logger.info("vision %s: %d flagged pages in %.2fs (%s)", doc.file_name or doc.doc_id, len(flagged),
                    time.perf_counter() - started, _path_counts(pages))
        return item

    def _wants_ocr(self, slide: pb.Slide) -> bool:
        return reads_as_scan(word_count(body_text(slide)))

    async def _page_or_fallback(self, slide: pb.Slide, ctx: _Context) -> _Page:
        try:
            page = await self._page(slide, ctx)
        except Exception as exc:  # one page never fails the document: record it and describe instead
            logger.exception("vision failed on page %d", slide.number)
            page = _Page()
            page.warnings.append(f"vision: page {slide.number}: {type(exc).__name__}: {exc}")
            _describe(page, slide, ctx, f"vision failed: {type(exc).__name__}: {exc}", degraded=True)
        if page.rendered and ctx.renderer is not None and not page.result.renderer:
            page.result.renderer = ctx.renderer.name
        logger.info("vision page %d: %s%s, render %.3fs (%.3fs until the image was ready), ocr %.3fs",
                    slide.number, pb.VisionPath.Name(page.result.path),
                    " (degraded)" if page.result.degraded else "", page.render_s, page.wait_s, page.ocr_s,
                    extra={"page": slide.number, "render_s": page.render_s, "render_wait_s": page.wait_s,
                           "ocr_s": page.ocr_s})
        return page

    async def _page(self, slide: pb.Slide, ctx: _Context) -> _Page:
        page = _Page()
        words = word_count(body_text(slide))
        image: RenderedPage | None = None
        if ctx.describer is not None:
            image = await self._model_path(page, slide, ctx)
            if page.result.path == pb.VISION_PATH_LLM:
                return page
        if not reads_as_scan(words):
            _describe(page, slide, ctx, f"described from parsed content: {words} words of text on the page")
        else:
            await self._ocr_path(page, slide, ctx, words=words, image=image)
        return page

    async def _model_path(self, page: _Page, slide: pb.Slide, ctx: _Context) -> RenderedPage | None:
        """Ask the injected model; when it cannot answer, say why in ``page.fallbacks``.

        Returns the image rendered for the model so OCR can reuse it.
        """
        describer = ctx.describer
        assert describer is not None
        available = getattr(describer, "available", None)
        if available is not None and not available():
            page.fallbacks.append("vision model unavailable (circuit open)")
            return None
        if ctx.renderer is None or ctx.renderer.missing:
            page.fallbacks.append(f"vision model not used: {ctx.renderer.missing if ctx.renderer else 'no renderer'}")
            return None
        image = await self._render(page, slide, ctx.renderer)
        if image is None:
            return None
        try:
            text = (await describer.describe(slide, image.png)).strip()
        except Exception as exc:  # the model is optional: fall back, and say so
            page.fallbacks.append(f"vision model failed: {type(exc).__name__}: {exc}")
            page.warnings.append(f"vision: page {slide.number}: {page.fallbacks[-1]}")
            return image
        if not text:
            page.fallbacks.append("vision model returned no text")
            return image
        page.result.path = pb.VISION_PATH_LLM
        page.result.text = text
        page.result.notes.append(f"vision model on the page rendered at {image.dpi:g} dpi")
        return image

    async def _ocr_path(self, page: _Page, slide: pb.Slide, ctx: _Context, *, words: int,
                        image: RenderedPage | None) -> None:
        missing = [m for m in (ctx.tesseract.missing, ctx.renderer.missing if ctx.renderer else "no renderer") if m]
        if missing:
            page.ocr_unavailable = True
            _describe(page, slide, ctx, f"OCR wanted ({words} words of text) but {'; '.join(missing)}", degraded=True)
            return
        assert ctx.renderer is not None
        if image is None and not page.render_tried:
            image = await self._render(page, slide, ctx.renderer)
        if image is None:  # the reason is in page.fallbacks already
            _describe(page, slide, ctx, "", degraded=True)
            return
        if image.blank:
            mupdf = f" (MuPDF: {'; '.join(image.warnings)})" if image.warnings else ""
            _describe(page, slide, ctx, f"OCR wanted but the rendered page is blank{mupdf}", degraded=True)
            return
        assert ctx.cpu is not None
        async with ctx.cpu:
            ocr = await ctx.tesseract.recognize(image.png, languages=ctx.languages, dpi=round(image.dpi))
        page.ocr_s = ocr.seconds
        if ocr.error:
            page.warnings.append(f"vision: page {slide.number}: OCR failed: {ocr.error}")
            _describe(page, slide, ctx, f"OCR failed: {ocr.error}", degraded=True)
            return
        page.ocr_run = True
        if not ocr.text:
            _describe(page, slide, ctx, f"OCR ({ocr.languages}) found no text", degraded=True)
            return
        page.result.Clear()
        page.result.path = pb.VISION_PATH_OCR
        page.result.text = ocr.text
        page.result.degraded = bool(page.fallbacks)
        page.result.notes.extend([*page.fallbacks, f"OCR ({ocr.languages}) of the page rendered at {image.dpi:g} dpi: "
                                  f"{words} words of text in the file"])

    async def _render(self, page: _Page, slide: pb.Slide, renderer: DocumentRenderer) -> RenderedPage | None:
        """The page image, or None with the reason in ``page.fallbacks`` and the warnings."""
        page.render_tried = True
        started = time.perf_counter()
        try:
            image = await renderer.render(slide.number)
        except RenderError as exc:
            page.wait_s = time.perf_counter() - started
            page.fallbacks.append(f"render failed ({renderer.name}): {exc}")
            page.warnings.append(f"vision: page {slide.number}: render failed: {exc}")
            return None
        page.wait_s = time.perf_counter() - started
        page.render_s = image.seconds
        page.rendered = True
        return image


def _describe(page: _Page, slide: pb.Slide, ctx: _Context, note: str, *, degraded: bool = False) -> None:
    """The DESCRIPTION path; degraded when asked or when a better path was tried and failed."""
    page.result.Clear()
    page.result.path = pb.VISION_PATH_DESCRIPTION
    page.result.text = describe_slide(slide, unit=ctx.unit)
    page.result.degraded = degraded or bool(page.fallbacks)
    page.result.notes.extend([*page.fallbacks, *([note] if note else [])])


def _path_counts(pages: list[_Page]) -> str:
    counts: dict[str, int] = {}
    for page in pages:
        key = pb.VisionPath.Name(page.result.path).removeprefix("VISION_PATH_").lower()
        key += "/degraded" if page.result.degraded else ""
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
