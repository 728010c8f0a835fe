"""Rendering pages: pixel budget, the worker process, bombs, timeouts, memory ceiling."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pymupdf
import pytest

from osmose.config import Limits, Settings
from osmose.documents.rendering import (
    RENDER_PIXEL_BUDGET,
    DocumentRenderer,
    PdfPageRenderer,
    RenderError,
    erase_render_cache,
    erase_rendered_document,
    render_cache_path,
)
from osmose.documents.rendering.render_worker import page_zoom
from osmose.v1 import document_pb2 as pb
from tests.fixtures.pdf_pages import add_declared_bomb_page, add_image_only_page, text_pixmap
from tests.support import CORPUS

pytestmark = pytest.mark.anyio

BOMB = CORPUS / "bad" / "pdfjs-bomb-giant.pdf"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("width", "height"), [(612, 792), (960, 540), (14_400, 14_400), (200, 100), (3, 30_000)])
def test_zoom_keeps_pages_within_the_pixel_budget(width: float, height: float) -> None:
    zoom = page_zoom(width, height, max_pixels=RENDER_PIXEL_BUDGET)
    assert round(width * zoom + 0.5) * round(height * zoom + 0.5) <= RENDER_PIXEL_BUDGET
    assert zoom * 72 <= 300  # never above 300 dpi, however small the page


def test_zoom_of_a_letter_page_is_about_160_dpi() -> None:
    assert 150 < page_zoom(612, 792, max_pixels=RENDER_PIXEL_BUDGET) * 72 < 170


def test_zoom_rejects_empty_pages() -> None:
    with pytest.raises(ValueError):
        page_zoom(0, 792, max_pixels=RENDER_PIXEL_BUDGET)


async def _render(pdf: Path, *numbers: int, **options: object) -> list[object]:
    """Render `numbers` with one renderer; each result is a RenderedPage or the RenderError raised."""
    async def run() -> list[object]:
        results: list[object] = []
        async with PdfPageRenderer(pdf, max_pixels=options.pop("max_pixels", RENDER_PIXEL_BUDGET),  # type: ignore[arg-type]
                                   max_image_pixels=Limits.max_image_pixels, **options) as renderer:  # type: ignore[arg-type]
            for number in numbers:
                try:
                    results.append(await renderer.render(number))
                except RenderError as exc:
                    results.append(exc)
        return results

    return await run()


async def test_renders_png_within_budget(scan_pdf: Path) -> None:
    (page,) = await _render(scan_pdf, 1, max_pixels=1_000_000)
    assert page.png.startswith(PNG_SIGNATURE)
    assert page.width * page.height <= 1_000_000
    assert pymupdf.Pixmap(page.png).width == page.width
    assert not page.blank
    assert 100 < page.dpi < 130


async def test_blank_page_and_out_of_range_page_do_not_stop_the_worker(tmp_path: Path) -> None:
    pdf = tmp_path / "two.pdf"
    doc = pymupdf.open()
    doc.new_page()
    add_image_only_page(doc, text_pixmap())
    doc.save(pdf)
    blank, missing, scan = await _render(pdf, 1, 5, 2)
    assert blank.blank
    assert isinstance(missing, RenderError) and "outside 1..2" in str(missing)
    assert not scan.blank


async def test_declared_giant_image_is_refused_before_decoding(tmp_path: Path) -> None:
    pdf = tmp_path / "bomb.pdf"
    doc = pymupdf.open()
    add_declared_bomb_page(doc)
    add_image_only_page(doc, text_pixmap())
    doc.save(pdf)
    started = time.perf_counter()
    bomb, after = await _render(pdf, 1, 2)
    assert isinstance(bomb, RenderError)
    assert "declares 100000x100000 pixels (limit 40000000)" in str(bomb)
    assert not after.blank  # the same worker goes on with the next page
    assert time.perf_counter() - started < 20


@pytest.mark.skipif(not BOMB.exists(), reason=f"corpus bomb not found at {BOMB}")
def test_corpus_jbig2_bomb_stays_bounded_in_time_and_memory() -> None:
    # In a child interpreter so the peak memory measured is the render worker's alone.
    script = (
        "import asyncio, json, resource, sys, time\n"
        "from pathlib import Path\n"
        "from osmose.documents.rendering.renderer import PdfPageRenderer\n"
        "async def main():\n"
        "    async with PdfPageRenderer(Path(sys.argv[1]), max_pixels=2_500_000,"
        " max_image_pixels=40_000_000) as r:\n"
        "        t = time.perf_counter()\n"
        "        try:\n"
        "            page = await r.render(1)\n"
        "            out = {'ok': True, 'blank': page.blank, 'pixels': page.width * page.height}\n"
        "        except Exception as exc:\n"
        "            out = {'ok': False, 'error': str(exc)}\n"
        "        out['seconds'] = time.perf_counter() - t\n"
        "    out['worker_peak_kb'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "    print(json.dumps(out))\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(BOMB)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["seconds"] < 30
    assert out["worker_peak_kb"] < 1024 * 1024  # < 1 GiB, where the images declare 3 x 1.16 GB
    if out["ok"]:
        assert out["pixels"] <= 2_500_000


async def test_slow_page_times_out_kills_the_worker_and_the_next_page_restarts_it(scan_pdf: Path) -> None:
    async def run() -> tuple[RenderError, bool]:
        async with PdfPageRenderer(scan_pdf, max_pixels=RENDER_PIXEL_BUDGET,
                                   max_image_pixels=Limits.max_image_pixels, page_timeout_s=1e-6) as renderer:
            with pytest.raises(RenderError) as timed_out:
                await renderer.render(1)
            renderer.page_timeout_s = 60
            page = await renderer.render(1)
            return timed_out.value, page.blank

    error, blank = await run()
    assert "rendering took more than" in str(error)
    assert blank is False


async def test_memory_ceiling_applies_to_the_worker(scan_pdf: Path) -> None:
    # 64 MiB of address space is not enough to load PyMuPDF: the worker fails, cleanly.
    first, second = await _render(scan_pdf, 1, 1, memory_limit_bytes=64 * 1024**2)
    assert isinstance(first, RenderError) and "did not start" in str(first)
    assert isinstance(second, RenderError) and str(second) == str(first)  # no second attempt


async def test_unreadable_pdf_is_a_render_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4\nthis is not a pdf")
    (error,) = await _render(bad, 1)
    assert isinstance(error, RenderError)


def _document(fmt: int, slides: int = 1, doc_id: str = "0123456789abcdef0123456789abcdef") -> pb.Document:
    return pb.Document(doc_id=doc_id, format=fmt, slides=[pb.Slide(number=n) for n in range(1, slides + 1)])


async def test_document_renderer_names_and_missing_reasons(tmp_path: Path, scan_pdf: Path) -> None:
    settings = Settings(data_dir=tmp_path, soffice=str(tmp_path / "nowhere" / "soffice"))
    pdf = DocumentRenderer(settings, _document(pb.SOURCE_FORMAT_PDF), str(scan_pdf))
    assert (pdf.name, pdf.missing) == ("pymupdf", "")

    deck = tmp_path / "deck.pptx"
    deck.write_bytes(b"PK")
    pptx = DocumentRenderer(settings, _document(pb.SOURCE_FORMAT_PPTX), str(deck))
    assert pptx.name == "libreoffice+pymupdf"
    assert pptx.missing == f"LibreOffice not found at configured path {settings.soffice!r}"
    with pytest.raises(RenderError, match="LibreOffice not found"):
        await pptx.render(1)

    gone = DocumentRenderer(settings, _document(pb.SOURCE_FORMAT_PDF), str(tmp_path / "gone.pdf"))
    assert gone.missing.startswith("source file not available")
    assert DocumentRenderer(settings, _document(pb.SOURCE_FORMAT_PDF), "s3://bucket/key").missing


async def test_cached_deck_pdf_renders_without_libreoffice(tmp_path: Path, scan_pdf: Path) -> None:
    settings = Settings(data_dir=tmp_path, soffice=str(tmp_path / "nowhere" / "soffice"))
    deck = tmp_path / "deck.pptx"
    deck.write_bytes(b"PK")
    cached = render_cache_path(settings.data_dir, "0123456789abcdef0123456789abcdef")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(scan_pdf.read_bytes())

    async def run() -> bool:
        async with DocumentRenderer(settings, _document(pb.SOURCE_FORMAT_PPTX), str(deck)) as renderer:
            assert renderer.missing == ""
            return (await renderer.render(1)).blank

    assert await run() is False


async def test_the_render_cache_is_per_tenant_and_erasable(tmp_path: Path, scan_pdf: Path) -> None:
    """Tenant B submitting A's deck neither gets nor times A's conversion (without LibreOffice
    B's renderer has nothing to render from); erasing A's cache removes A's PDFs only."""
    settings = Settings(data_dir=tmp_path, soffice=str(tmp_path / "nowhere" / "soffice"))
    deck = tmp_path / "deck.pptx"
    deck.write_bytes(b"PK")
    doc_id = "0123456789abcdef0123456789abcdef"
    for tenant in ("acme", "globex-kept"):
        cached = render_cache_path(settings.data_dir, doc_id, tenant)
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(scan_pdf.read_bytes())
    assert DocumentRenderer(settings, _document(pb.SOURCE_FORMAT_PPTX), str(deck), tenant="acme").missing == ""
    other = DocumentRenderer(settings, _document(pb.SOURCE_FORMAT_PPTX), str(deck), tenant="globex")
    assert other.missing and ("soffice" in other.missing.lower() or "libreoffice" in other.missing.lower())
    assert erase_render_cache(settings.data_dir, "acme") == 1
    assert not render_cache_path(settings.data_dir, doc_id, "acme").exists()
    assert render_cache_path(settings.data_dir, doc_id, "globex-kept").exists()
    assert erase_render_cache(settings.data_dir, "acme") == 0          # idempotent


def test_erasing_one_document_removes_only_its_converted_deck(tmp_path: Path) -> None:
    gone, kept = (render_cache_path(tmp_path, d * 32, "acme") for d in "ab")
    gone.parent.mkdir(parents=True)
    for path in (gone, kept, gone.with_name(f".{gone.name}.0123.partial")):
        path.write_bytes(b"%PDF")
    other = render_cache_path(tmp_path, "a" * 32, "globex")
    other.parent.mkdir(parents=True)
    other.write_bytes(b"%PDF")
    assert erase_rendered_document(tmp_path, "acme", "a" * 32) == 2     # the PDF and a conversion cut short
    assert sorted(p.name for p in gone.parent.iterdir()) == [kept.name] and other.exists()
    assert erase_rendered_document(tmp_path, "acme", "a" * 32) == 0     # idempotent
    with pytest.raises(ValueError, match="not a document id"):
        erase_rendered_document(tmp_path, "acme", "../globex/" + "a" * 32)


async def test_deck_whose_pdf_has_another_page_count_is_refused(tmp_path: Path, scan_pdf: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    deck = tmp_path / "deck.pptx"
    deck.write_bytes(b"PK")
    cached = render_cache_path(settings.data_dir, "0123456789abcdef0123456789abcdef")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(scan_pdf.read_bytes())  # 1 page for a 3-slide deck

    async def run() -> None:
        async with DocumentRenderer(settings, _document(pb.SOURCE_FORMAT_PPTX, slides=3), str(deck)) as renderer:
            await renderer.render(1)

    with pytest.raises(RenderError, match="rendered 1 pages for 3 slides"):
        await run()


def test_the_render_cache_keeps_the_most_recently_used_pdfs_within_its_bound(tmp_path: Path) -> None:
    import os
    import time

    from osmose.documents.rendering import prune_render_cache

    now = time.time()
    for age, name in ((300, "old"), (200, "used"), (100, "new")):
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(b"%PDF" + bytes(996))
        os.utime(path, (now - age, now - age))
    partial = tmp_path / ".x.pdf.abc.partial"
    partial.write_bytes(b"half")
    os.utime(partial, (now - 7200, now - 7200))
    os.utime(tmp_path / "used.pdf")                  # a cache hit: most recently used now
    freed = prune_render_cache(tmp_path, max_bytes=2000, keep=tmp_path / "new.pdf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.pdf", "used.pdf"]
    assert freed == 1000 + 4
    assert prune_render_cache(tmp_path, max_bytes=0, keep=tmp_path / "new.pdf") == 1000
    assert [p.name for p in tmp_path.iterdir()] == ["new.pdf"]
