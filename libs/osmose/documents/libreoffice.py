"""LibreOffice, headless: legacy .ppt to PPTX (parsing) and decks to PDF (rendering).

The one place that knows how ``soffice`` is found (:func:`~osmose.documents.system_tools.soffice_tool`),
called and bounded, for both halves of the package:

- every conversion runs in its own temporary directory with its own LibreOffice
  profile (``-env:UserInstallation``), so concurrent conversions never share the
  profile lock and a crashed one cannot leave it locked;
- creating a profile costs LibreOffice most of a second, so the profile left by the
  first successful conversion is kept (per process) and copied for the next;
- it runs in its own session, killed as a group on timeout (``soffice.bin`` too,
  not only the launcher script), within ``limits.convert_timeout_s``;
- it does not inherit a worker's address-space ceiling (meant for MuPDF): LibreOffice
  reserves far more than it uses. The deadline still bounds it.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from osmose.config import Settings
from osmose.documents.exceptions import ConversionError, ConverterMissingError
from osmose.documents.system_tools import run_bounded, run_bounded_sync, soffice_tool, tool_env
from osmose.errors import CorruptDocumentError, DocumentError

__all__ = ["convert_deck_to_pdf", "convert_ppt_to_pptx", "find_soffice"]

logger = logging.getLogger(__name__)

_PPTX_FILTER = "pptx:Impress MS PowerPoint 2007 XML"
# Impress's PDF filter with hidden slides included (PowerPoint numbers them too), so page n is slide n.
_PDF_FILTER = "pdf:impress_pdf_Export:" + json.dumps(
    {"ExportHiddenSlides": {"type": "boolean", "value": "true"}}, separators=(",", ":"))
_STDERR_TAIL = 400
_template_lock = threading.Lock()
_template_profile: Path | None = None


def find_soffice(settings: Settings) -> str:
    """Path of LibreOffice's ``soffice`` for parsing; raises :class:`ConverterMissingError` without it."""
    tool = soffice_tool(settings)
    if tool.path:
        return tool.path
    if settings.soffice:
        raise ConverterMissingError(
            f"OSMOSE_SOFFICE points to {settings.soffice!r}, which is not an executable file; "
            "legacy .ppt files need LibreOffice (install it or run `make setup`)"
        )
    raise ConverterMissingError(
        "legacy .ppt files need LibreOffice, and `soffice` is not on PATH: install LibreOffice "
        "(Debian/Ubuntu: apt-get install libreoffice-impress-nogui) or run `make setup`, "
        "or set OSMOSE_SOFFICE to its path"
    )


def convert_ppt_to_pptx(data: bytes, *, settings: Settings) -> bytes:
    """PPTX bytes converted from the legacy .ppt bytes `data` (synchronous: runs in the parse worker)."""
    soffice = find_soffice(settings)
    timeout = settings.limits.convert_timeout_s
    with tempfile.TemporaryDirectory(prefix="osmose-ppt-") as tmp:
        work = Path(tmp)
        source = work / "input.ppt"  # fixed ASCII name: the submitted name may be anything
        source.write_bytes(data)
        out_dir = work / "out"
        started = time.perf_counter()
        try:
            done = run_bounded_sync(_command(soffice, work, _PPTX_FILTER, out_dir, source), timeout_s=timeout,
                                    env=_env(work), cwd=work, preexec_fn=_memory_ceiling_lift(), reap_group=True)
        except TimeoutError:
            raise DocumentError(
                f"LibreOffice did not convert this .ppt within {timeout:.0f}s (limits.convert_timeout_s)",
                reason="conversion-timeout",
            ) from None
        except OSError as exc:
            raise ConverterMissingError(f"could not start LibreOffice ({soffice}): {exc}") from exc
        target = out_dir / "input.pptx"
        if not target.is_file() or target.stat().st_size == 0:
            output = (done.stderr or done.stdout).decode("utf-8", "replace")
            lines = [line for line in output.splitlines() if "javaldx" not in line]  # Java noise
            detail = " ".join(lines).strip()[-_STDERR_TAIL:]
            raise CorruptDocumentError(
                f"LibreOffice could not convert this .ppt to PPTX ({detail or 'no output'})",
                reason="conversion-failed",
            )
        logger.info("converted legacy .ppt (%d bytes) in %.1fs", len(data), time.perf_counter() - started)
        _keep_profile(work / "profile")
        return target.read_bytes()


async def convert_deck_to_pdf(source: Path, *, soffice: str, dest: Path, timeout_s: float) -> Path:
    """`dest` (a PDF of every slide of `source`), converting only when it is not there yet.

    `dest` is a cache entry named after the deck's content: a replay or a re-ingest
    of the same file never converts twice. Raises :class:`ConversionError`.
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
        # Profile copies off the event loop: other pages keep rendering meanwhile.
        argv = await asyncio.to_thread(_command, soffice, work, _PDF_FILTER, out_dir, deck)
        try:
            done = await run_bounded(argv, timeout_s=timeout_s,
                                     env=_env(work), cwd=work, preexec_fn=_memory_ceiling_lift(), reap_group=True)
        except TimeoutError:
            raise ConversionError(f"LibreOffice did not finish within {timeout_s:g}s") from None
        except OSError as exc:
            raise ConversionError(f"LibreOffice could not be started: {exc}") from exc
        produced = out_dir / "deck.pdf"
        if done.returncode != 0 or not produced.is_file() or produced.stat().st_size == 0:
            tail = done.stderr.decode("utf-8", "replace").strip()[-300:]
            raise ConversionError(f"LibreOffice produced no PDF (exit code {done.returncode}): {tail}")
        await asyncio.to_thread(_keep_profile, work / "profile")
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Atomic publish: a concurrent reader sees no PDF or a whole one.
        partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.partial")
        shutil.move(produced, partial)
        os.replace(partial, dest)
    logger.info("converted %s to PDF in %.2fs", source.name, time.perf_counter() - started)
    return dest


def _command(soffice: str, work: Path, output_filter: str, out_dir: Path, source: Path) -> list[str]:
    """The conversion command, with a profile of its own under `work` (seeded from the kept one)."""
    profile = work / "profile"
    _seed_profile(profile)
    return [
        soffice,
        f"-env:UserInstallation={profile.as_uri()}",
        "--headless",
        "--invisible",
        "--nologo",
        "--nodefault",
        "--norestore",
        "--nolockcheck",
        "--convert-to",
        output_filter,
        "--outdir",
        str(out_dir),
        str(source),
    ]


def _env(home: Path) -> dict[str, str]:
    # HOME in the work dir: LibreOffice writes there; svp: no display needed.
    return tool_env(HOME=str(home), SAL_USE_VCLPLUGIN="svp")


def _seed_profile(profile: Path) -> None:
    template = _template_profile
    if template is not None and template.is_dir():
        try:
            shutil.copytree(template, profile)
        except OSError as exc:  # a fresh profile still works, only slower
            logger.debug("could not copy the LibreOffice profile template: %s", exc)
            shutil.rmtree(profile, ignore_errors=True)


def _keep_profile(profile: Path) -> None:
    global _template_profile
    with _template_lock:
        if _template_profile is not None or not profile.is_dir():
            return
        target = Path(tempfile.mkdtemp(prefix="osmose-lo-profile-")) / "profile"
        try:
            shutil.copytree(profile, target)
        except OSError as exc:
            logger.debug("could not keep the LibreOffice profile: %s", exc)
            shutil.rmtree(target.parent, ignore_errors=True)
            return
        _template_profile = target
        atexit.register(shutil.rmtree, target.parent, True)


def _memory_ceiling_lift() -> Callable[[], None] | None:
    """What lifts this process's memory ceiling in LibreOffice's child, or None when there is none
    to lift. A `preexec_fn` makes CPython fork without vfork and run Python in the child: in a
    process with other threads (the CLI's and the services' main process, where the vision
    stage converts decks while embedding threads run) that can deadlock on a lock another thread
    held at fork time. Only the single-threaded parse workers run under a ceiling, so only they
    need it."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    return _lift_memory_ceiling if soft != hard else None


def _lift_memory_ceiling() -> None:
    """Runs in the child before exec: raise the soft address-space limit to the hard one."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
