"""Page images of a document: PDFs with PyMuPDF, decks through LibreOffice first.

Rendering happens in a worker process (:mod:`.render_worker`, run by
:mod:`osmose.documents.worker_process`) with a memory ceiling and a per-page
deadline, so a decompression bomb or a pathological page costs one page, never
the document or the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from osmose.config import Settings
from osmose.documents.exceptions import ConversionError, RenderError
from osmose.documents.libreoffice import convert_deck_to_pdf
from osmose.documents.system_tools import soffice_tool
from osmose.documents.worker_process import WorkerGone, WorkerProcess, WorkerSpec
from osmose.ids import doc_id_for_bytes
from osmose.v1 import document_pb2 as pb

__all__ = ["DocumentRenderer", "PdfPageRenderer", "RenderedPage", "RENDER_PIXEL_BUDGET",
           "RENDERER_PDF", "RENDERER_DECK", "erase_render_cache", "erase_rendered_document", "prune_render_cache",
           "render_cache_folder", "render_cache_path"]

logger = logging.getLogger(__name__)

RENDERER_PDF = "pymupdf"
RENDERER_DECK = "libreoffice+pymupdf"
# Pixels per rendered page: ~160 dpi for a letter page or a 16:9 slide, plenty for OCR.
RENDER_PIXEL_BUDGET = 2_500_000
# Seconds one page may take to render (a normal page takes well under one).
RENDER_PAGE_TIMEOUT_S = 30.0
# Seconds for the worker to start (Python + PyMuPDF import) and open the PDF.
WORKER_START_TIMEOUT_S = 60.0
# Address-space ceiling of a render worker: a bomb that gets past the declared-size
# check fails an allocation here instead of exhausting the machine.
WORKER_MEMORY_LIMIT_BYTES = 2 * 1024**3
_DECK_FORMATS = {pb.SOURCE_FORMAT_PPTX, pb.SOURCE_FORMAT_PPT}
_DECK_SUFFIXES = {".pptx", ".pptm", ".ppsx", ".ppt", ".pps"}
_T = TypeVar("_T")


def render_cache_path(data_dir: Path, doc_id: str, tenant: str = "") -> Path:
    """Where a deck's PDF is kept: named after the hash of the deck's bytes (never converted twice)
    in the tenant's own folder, so a tenant never gets (or times) another tenant's conversion."""
    return render_cache_folder(data_dir, tenant) / f"{doc_id}.pdf"


def render_cache_folder(data_dir: Path, tenant: str = "") -> Path:
    """A tenant's render cache folder (tenant names are a restricted charset: a safe file name)."""
    return data_dir / "cache" / "renders" / (tenant or "_")


def erase_render_cache(data_dir: Path, tenant: str) -> int:
    """Forget a tenant's converted decks; the number of files removed."""
    folder = render_cache_folder(data_dir, tenant)
    removed = 0
    for path in folder.glob("*"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    with contextlib.suppress(OSError):
        folder.rmdir()
    return removed


def erase_rendered_document(data_dir: Path, tenant: str, doc_id: str) -> int:
    """Forget one document's converted deck (and a conversion of it cut short); files removed."""
    path = render_cache_path(data_dir, doc_id, tenant)
    if path.parent != render_cache_folder(data_dir, tenant) or path.name != f"{doc_id}.pdf":
        raise ValueError(f"not a document id: {doc_id!r}")   # a "/" or ".." must not reach another file
    removed = 0
    for found in (path, *path.parent.glob(f".{glob.escape(path.name)}.*.partial")):
        with contextlib.suppress(FileNotFoundError):
            found.unlink()
            removed += 1
    return removed


def prune_render_cache(folder: Path, *, max_bytes: int, keep: Path | None = None) -> int:
    """Remove the least recently used PDFs of the render cache `folder` (a hit restarts a PDF's
    modification time) until it holds at most `max_bytes`; never `keep` (in use). Leftover
    ``.partial`` files of conversions that died are removed when older than an hour.
    Returns the bytes freed. Safe while other processes use the folder: a PDF removed under
    a reader is converted again."""
    entries = []
    now = time.time()
    freed = 0
    try:
        listing = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in listing:
        try:
            stat = entry.stat()
        except FileNotFoundError:
            continue
        if entry.name.endswith(".partial"):
            if now - stat.st_mtime > 3600:
                Path(entry.path).unlink(missing_ok=True)
                freed += stat.st_size
            continue
        if entry.name.endswith(".pdf"):
            entries.append((stat.st_mtime, stat.st_size, Path(entry.path)))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= max_bytes:
            break
        if keep is not None and path == keep:
            continue
        path.unlink(missing_ok=True)
        total -= size
        freed += size
    return freed


@dataclass(frozen=True)
class RenderedPage:
    number: int
    png: bytes
    width: int
    height: int
    dpi: float
    blank: bool
    seconds: float
    warnings: tuple[str, ...] = ()


class PdfPageRenderer:
    """Renders pages of one PDF, one at a time, in a bounded worker process.

    The worker starts on the first request and is restarted after a page that
    timed out or crashed it. Use as an async context manager (or call
    :meth:`aclose`) so the worker never outlives its document.
    """

    def __init__(self, pdf: Path, *, max_pixels: int, max_image_pixels: int, gray: bool = True,
                 page_timeout_s: float = RENDER_PAGE_TIMEOUT_S,
                 memory_limit_bytes: int = WORKER_MEMORY_LIMIT_BYTES) -> None:
        self.pdf = pdf
        self.page_timeout_s = page_timeout_s
        self._spec = WorkerSpec(
            handler="osmose.documents.rendering.render_worker:render_handler",
            memory_limit_bytes=memory_limit_bytes, start_timeout_s=WORKER_START_TIMEOUT_S, capture_stderr=True,
            config={"pdf": str(pdf), "max_pixels": max_pixels, "max_image_pixels": max_image_pixels,
                    "colorspace": "gray" if gray else "rgb"})
        self._lock = asyncio.Lock()
        self._worker: WorkerProcess | None = None
        self._page_count: int | None = None
        self._fatal: str = ""

    async def __aenter__(self) -> PdfPageRenderer:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def page_count(self) -> int:
        async with self._lock:
            await self._ensure_worker()
            assert self._page_count is not None
            return self._page_count

    async def render(self, number: int) -> RenderedPage:
        """Page `number` (1-based) as PNG; raises :class:`RenderError` when it cannot be rendered."""
        async with self._lock:
            worker = await self._ensure_worker()
            try:
                reply, png = await _in_thread(worker, worker.request, {"page": number},
                                              timeout_s=self.page_timeout_s)
            except TimeoutError:
                self._worker = None  # killed; the next page starts a new one
                raise RenderError(f"rendering took more than {self.page_timeout_s:g}s") from None
            except WorkerGone as exc:
                self._worker = None
                raise RenderError(f"render worker died ({exc})") from None
            except asyncio.CancelledError:
                self._worker = None  # interrupted mid-page: never reused
                raise
        warnings = tuple(reply.get("warnings") or ())
        if not reply.get("ok"):
            raise RenderError(str(reply.get("error") or "unknown error") +
                              (f" [MuPDF: {'; '.join(warnings)}]" if warnings else ""))
        return RenderedPage(number=number, png=png, width=int(reply["width"]), height=int(reply["height"]),
                            dpi=float(reply["dpi"]), blank=bool(reply["blank"]), seconds=float(reply["seconds"]),
                            warnings=warnings)

    async def aclose(self) -> None:
        async with self._lock:
            worker, self._worker = self._worker, None
            if worker is not None:
                await asyncio.to_thread(worker.close)

    async def _ensure_worker(self) -> WorkerProcess:
        if self._fatal:
            raise RenderError(self._fatal)
        if self._worker is not None and self._worker.alive:
            return self._worker
        worker = WorkerProcess(self._spec)
        try:
            hello = await _in_thread(worker, worker.wait_ready)
        except (TimeoutError, WorkerGone) as exc:
            self._fatal = f"render worker did not start ({exc})"
            raise RenderError(self._fatal) from None
        if "page_count" not in hello:
            await asyncio.to_thread(worker.close)
            self._fatal = str(hello.get("error") or "render worker did not start (no page count)")
            raise RenderError(self._fatal)
        self._page_count = int(hello["page_count"])
        self._worker = worker
        return worker


async def _in_thread(worker: WorkerProcess, call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """`call` (blocking I/O with the worker) in a thread; cancelling it kills the worker at once,
    so a reply still on its way can never reach the next page."""
    task = asyncio.ensure_future(asyncio.to_thread(call, *args, **kwargs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        worker.interrupt()
        task.add_done_callback(lambda done: done.cancelled() or done.exception())  # ends with WorkerGone
        raise


class DocumentRenderer:
    """Page images for one work item's source file.

    PDFs are rendered directly; decks (PPTX/PPT) are converted once by LibreOffice
    (lazily, at the first page actually requested) and the PDF is cached. Check
    :attr:`missing` first: it says why nothing can be rendered ("" when it can).
    """

    def __init__(self, settings: Settings, document: pb.Document, source_uri: str, *, tenant: str = "",
                 max_pixels: int = RENDER_PIXEL_BUDGET, gray: bool = True,
                 page_timeout_s: float = RENDER_PAGE_TIMEOUT_S,
                 memory_limit_bytes: int = WORKER_MEMORY_LIMIT_BYTES) -> None:
        self.settings = settings
        self.document = document
        self.tenant = tenant
        self.source = _source_path(source_uri)
        self.is_deck = document.format in _DECK_FORMATS or (
            document.format == pb.SOURCE_FORMAT_UNSPECIFIED and self.source is not None
            and self.source.suffix.lower() in _DECK_SUFFIXES)
        self.name = RENDERER_DECK if self.is_deck else RENDERER_PDF
        self._pdf_options: dict[str, Any] = {
            "max_pixels": max(1, min(max_pixels, settings.limits.max_image_pixels)),
            "max_image_pixels": settings.limits.max_image_pixels, "gray": gray,
            "page_timeout_s": page_timeout_s, "memory_limit_bytes": memory_limit_bytes}
        self._soffice = soffice_tool(settings)
        self._lock = asyncio.Lock()
        self._pages: PdfPageRenderer | None = None
        self._fatal = ""
        self.missing = self._why_missing()

    async def __aenter__(self) -> DocumentRenderer:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def render(self, number: int) -> RenderedPage:
        if self.missing:
            raise RenderError(self.missing)
        pages = await self._page_renderer()
        return await pages.render(number)

    async def aclose(self) -> None:
        if self._pages is not None:
            await self._pages.aclose()

    def _why_missing(self) -> str:
        if self.source is None or not self.source.is_file():
            return f"source file not available ({self.source or 'no source_uri'})"
        if self.is_deck and not self._soffice.available and not self._cached_pdf().is_file():
            return self._soffice.missing
        return ""

    def _cached_pdf(self) -> Path:
        return render_cache_path(self.settings.data_dir, self._doc_id(), self.tenant)

    def _doc_id(self) -> str:
        doc_id = self.document.doc_id
        if doc_id and all(c in "0123456789abcdef" for c in doc_id):
            return doc_id
        assert self.source is not None
        return doc_id_for_bytes(self.source.read_bytes())

    async def _page_renderer(self) -> PdfPageRenderer:
        async with self._lock:  # one conversion per document, however many pages wait
            if self._fatal:
                raise RenderError(self._fatal)
            if self._pages is not None:
                return self._pages
            assert self.source is not None
            pdf = self.source
            if self.is_deck:
                cached = self._cached_pdf()
                with contextlib.suppress(OSError):
                    os.utime(cached)   # a hit: most recently used
                try:
                    pdf = await convert_deck_to_pdf(self.source, soffice=self._soffice.path or "soffice",
                                                    dest=cached,
                                                    timeout_s=self.settings.limits.convert_timeout_s)
                except ConversionError as exc:
                    self._fatal = str(exc)
                    raise RenderError(self._fatal) from exc
                await asyncio.to_thread(prune_render_cache, cached.parent,
                                        max_bytes=self.settings.render_cache_max_bytes, keep=cached)
            pages = PdfPageRenderer(pdf, **self._pdf_options)
            if self.is_deck:
                count = await pages.page_count()
                if count != len(self.document.slides):
                    await pages.aclose()
                    self._fatal = (f"LibreOffice rendered {count} pages for {len(self.document.slides)} slides; "
                                   "page images would not match their slides")
                    raise RenderError(self._fatal)
            self._pages = pages
            return pages


def _source_path(source_uri: str) -> Path | None:
    if not source_uri:
        return None
    if source_uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(source_uri).path))
    if "://" in source_uri:
        return None  # a blob reference: the host must materialise it as a local file first
    return Path(source_uri)
