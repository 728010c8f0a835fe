"""Page images for the vision stage: PDFs with PyMuPDF, decks through LibreOffice first.

Rendering happens in a worker process (:mod:`.render_worker`) with a memory
ceiling and a per-page deadline, so a decompression bomb or a pathological page
costs one page, never the document or the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from osmose.config import Settings
from osmose.ids import doc_id_for_bytes
from osmose.services.vision.exceptions import ConversionError, RenderError
from osmose.services.vision.libreoffice import convert_to_pdf, render_cache_path
from osmose.services.vision.tools import kill_group, locate
from osmose.v1 import document_pb2 as pb

__all__ = ["DocumentRenderer", "PdfPageRenderer", "RenderedPage", "RENDER_PIXEL_BUDGET",
           "RENDERER_PDF", "RENDERER_DECK"]

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
        self._config = {"pdf": str(pdf), "max_pixels": max_pixels, "max_image_pixels": max_image_pixels,
                        "colorspace": "gray" if gray else "rgb", "memory_limit_bytes": memory_limit_bytes}
        self._lock = asyncio.Lock()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: IO[bytes] | None = None
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
            proc = await self._ensure_worker()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(json.dumps({"page": number}).encode() + b"\n")
                await proc.stdin.drain()
                line = await asyncio.wait_for(proc.stdout.readline(), timeout=self.page_timeout_s)
            except TimeoutError:
                await self._stop_worker()
                raise RenderError(f"rendering took more than {self.page_timeout_s:g}s") from None
            except (BrokenPipeError, ConnectionResetError):
                line = b""
            except asyncio.CancelledError:
                # A reply may still be on its way: a reused worker would hand it to the next page.
                kill_group(proc.pid)
                self._proc = None
                raise
            if not line:
                reason = await self._stop_worker()
                raise RenderError(f"render worker died ({reason})")
        try:
            reply: dict[str, Any] = json.loads(line)
        except ValueError:
            raise RenderError(f"render worker sent an unreadable reply: {line[:120]!r}") from None
        warnings = tuple(reply.get("warnings") or ())
        if not reply.get("ok"):
            raise RenderError(str(reply.get("error") or "unknown error") +
                              (f" [MuPDF: {'; '.join(warnings)}]" if warnings else ""))
        png_path = Path(reply["png"])
        png = png_path.read_bytes()
        png_path.unlink(missing_ok=True)
        return RenderedPage(number=number, png=png, width=int(reply["width"]), height=int(reply["height"]),
                            dpi=float(reply["dpi"]), blank=bool(reply["blank"]), seconds=float(reply["seconds"]),
                            warnings=warnings)

    async def aclose(self) -> None:
        async with self._lock:
            await self._stop_worker()
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    async def _ensure_worker(self) -> asyncio.subprocess.Process:
        if self._fatal:
            raise RenderError(self._fatal)
        if self._proc is not None and self._proc.returncode is None:
            return self._proc
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="osmose-render-")
        tmp = Path(self._tmp.name)
        self._stderr = (tmp / "worker.stderr").open("ab")
        config = json.dumps({**self._config, "out_dir": str(tmp)})
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "osmose.services.vision.render_worker", config,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=self._stderr,
            start_new_session=True)
        assert self._proc.stdout is not None
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), timeout=WORKER_START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        hello: dict[str, Any] = json.loads(line) if line.strip() else {}
        if "page_count" not in hello:
            ended = await self._stop_worker()
            self._fatal = str(hello.get("error") or f"render worker did not start ({ended})")
            raise RenderError(self._fatal)
        self._page_count = int(hello["page_count"])
        return self._proc

    async def _stop_worker(self) -> str:
        """Stop the worker; returns how it ended, for error messages."""
        proc, self._proc = self._proc, None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if proc is None:
            return "not running"
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout=2.0)
        except TimeoutError:
            kill_group(proc.pid)
            await proc.wait()
        kill_group(proc.pid)  # anything it may have left behind in its group
        tail = ""
        if self._tmp is not None:
            err = Path(self._tmp.name) / "worker.stderr"
            lines = err.read_text("utf-8", "replace").strip().splitlines() if err.exists() else []
            tail = lines[-1][:200] if lines else ""
        code = proc.returncode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return f"{how}: {tail}" if tail else how


class DocumentRenderer:
    """Page images for one work item's source file.

    PDFs are rendered directly; decks (PPTX/PPT) are converted once by LibreOffice
    (lazily, at the first page actually requested) and the PDF is cached. Check
    :attr:`missing` first: it says why nothing can be rendered ("" when it can).
    """

    def __init__(self, settings: Settings, document: pb.Document, source_uri: str, *,
                 max_pixels: int = RENDER_PIXEL_BUDGET, gray: bool = True,
                 page_timeout_s: float = RENDER_PAGE_TIMEOUT_S,
                 memory_limit_bytes: int = WORKER_MEMORY_LIMIT_BYTES) -> None:
        self.settings = settings
        self.document = document
        self.source = _source_path(source_uri)
        self.is_deck = document.format in _DECK_FORMATS or (
            document.format == pb.SOURCE_FORMAT_UNSPECIFIED and self.source is not None
            and self.source.suffix.lower() in _DECK_SUFFIXES)
        self.name = RENDERER_DECK if self.is_deck else RENDERER_PDF
        self._pdf_options: dict[str, Any] = {
            "max_pixels": max(1, min(max_pixels, settings.limits.max_image_pixels)),
            "max_image_pixels": settings.limits.max_image_pixels, "gray": gray,
            "page_timeout_s": page_timeout_s, "memory_limit_bytes": memory_limit_bytes}
        self._soffice = locate("LibreOffice", settings.soffice, "soffice", "libreoffice")
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
        return render_cache_path(self.settings.data_dir, self._doc_id())

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
                try:
                    pdf = await convert_to_pdf(self.source, soffice=self._soffice.path or "soffice",
                                               dest=self._cached_pdf(),
                                               timeout_s=self.settings.limits.convert_timeout_s)
                except ConversionError as exc:
                    self._fatal = str(exc)
                    raise RenderError(self._fatal) from exc
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
