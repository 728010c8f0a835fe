"""Decks to PDF with headless LibreOffice, once per document.

The PDF is cached under ``<data_dir>/cache/renders/<doc_id>.pdf``: the id is the
hash of the deck's bytes, so a replay or a re-ingest of the same file never
converts twice. Hidden slides are exported too, so page n is slide n.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from osmose.services.vision.exceptions import ConversionError
from osmose.services.vision.tools import run_bounded, tool_env

__all__ = ["convert_to_pdf", "render_cache_path"]

logger = logging.getLogger(__name__)

# Impress's PDF filter with hidden slides included (PowerPoint numbers them too).
_PDF_FILTER = "pdf:impress_pdf_Export:" + json.dumps(
    {"ExportHiddenSlides": {"type": "boolean", "value": "true"}}, separators=(",", ":"))


def render_cache_path(data_dir: Path, doc_id: str) -> Path:
    return data_dir / "cache" / "renders" / f"{doc_id}.pdf"


async def convert_to_pdf(source: Path, *, soffice: str, dest: Path, timeout_s: float) -> Path:
    """`dest` (a PDF of every slide of `source`), converting only when it is not cached yet.

    Each conversion gets its own throw-away LibreOffice profile: two conversions
    sharing a profile block each other, and a crashed one can leave it locked.
    """
    if dest.is_file() and dest.stat().st_size > 0:
        logger.debug("render cache hit %s", dest)
        return dest
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="osmose-soffice-") as tmp:
        work = Path(tmp)
        # A plain copy with a plain name: LibreOffice names its output after the input.
        deck = work / "in" / f"deck{source.suffix.lower() or '.pptx'}"
        deck.parent.mkdir()
        shutil.copyfile(source, deck)
        out_dir = work / "out"
        argv = [soffice, "--headless", "--norestore", "--nologo", "--nodefault", "--nolockcheck",
                f"-env:UserInstallation={(work / 'profile').as_uri()}",
                "--convert-to", _PDF_FILTER, "--outdir", str(out_dir), str(deck)]
        try:
            done = await run_bounded(argv, timeout_s=timeout_s, env=tool_env(HOME=str(work)))
        except TimeoutError:
            raise ConversionError(f"LibreOffice did not finish within {timeout_s:g}s") from None
        except OSError as exc:
            raise ConversionError(f"LibreOffice could not be started: {exc}") from exc
        produced = out_dir / "deck.pdf"
        if done.returncode != 0 or not produced.is_file() or produced.stat().st_size == 0:
            tail = done.stderr.decode("utf-8", "replace").strip()[-300:]
            raise ConversionError(f"LibreOffice produced no PDF (exit code {done.returncode}): {tail}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Atomic publish: a concurrent reader sees no PDF or a whole one.
        partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.partial")
        shutil.move(produced, partial)
        os.replace(partial, dest)
    logger.info("converted %s to PDF in %.2fs", source.name, time.perf_counter() - started)
    return dest
