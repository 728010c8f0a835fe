"""Legacy PowerPoint 97-2003 (.ppt) to PPTX with LibreOffice, headless.

Each conversion runs in its own temporary directory with its own LibreOffice
profile (``-env:UserInstallation``), so concurrent conversions never share the
profile lock, and in its own process group, so a timeout kills ``soffice.bin``
too, not only the ``soffice`` launcher script.

Creating a profile costs LibreOffice most of a second, so the profile left by
the first successful conversion is kept (per process) and copied for the next.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from osmose.config import Settings
from osmose.errors import CorruptDocumentError, DocumentError
from osmose.parsing.exceptions import ConverterMissingError

__all__ = ["convert_ppt_to_pptx", "find_soffice"]

logger = logging.getLogger(__name__)

_SOFFICE_NAMES = ("soffice", "libreoffice")
_OUTPUT_FILTER = "pptx:Impress MS PowerPoint 2007 XML"
_STDERR_TAIL = 400
_template_lock = threading.Lock()
_template_profile: Path | None = None


def find_soffice(settings: Settings) -> str:
    """Path of LibreOffice's ``soffice``: ``settings.soffice`` or the first on PATH."""
    if settings.soffice:
        if Path(settings.soffice).is_file() and os.access(settings.soffice, os.X_OK):
            return settings.soffice
        raise ConverterMissingError(
            f"OSMOSE_SOFFICE points to {settings.soffice!r}, which is not an executable file; "
            "legacy .ppt files need LibreOffice (install it or run `make setup`)"
        )
    for name in _SOFFICE_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise ConverterMissingError(
        "legacy .ppt files need LibreOffice, and `soffice` is not on PATH: install LibreOffice "
        "(Debian/Ubuntu: apt-get install libreoffice-impress-nogui) or run `make setup`, "
        "or set OSMOSE_SOFFICE to its path"
    )


def convert_ppt_to_pptx(data: bytes, *, settings: Settings) -> bytes:
    """PPTX bytes converted from the legacy .ppt bytes `data`."""
    soffice = find_soffice(settings)
    timeout = settings.limits.convert_timeout_s
    with tempfile.TemporaryDirectory(prefix="osmose-ppt-") as tmp:
        work = Path(tmp)
        source = work / "input.ppt"  # fixed ASCII name: the submitted name may be anything
        source.write_bytes(data)
        out_dir = work / "out"
        profile = work / "profile"
        _seed_profile(profile)
        cmd = [
            soffice,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--invisible",
            "--nologo",
            "--nodefault",
            "--norestore",
            "--nolockcheck",
            "--convert-to",
            _OUTPUT_FILTER,
            "--outdir",
            str(out_dir),
            str(source),
        ]
        started = time.perf_counter()
        stdout, stderr = _run(cmd, timeout=timeout, home=work)
        target = out_dir / "input.pptx"
        if not target.is_file() or target.stat().st_size == 0:
            lines = [line for line in (stderr or stdout).splitlines() if "javaldx" not in line]  # Java noise
            detail = " ".join(lines).strip()[-_STDERR_TAIL:]
            raise CorruptDocumentError(
                f"LibreOffice could not convert this .ppt to PPTX ({detail or 'no output'})",
                reason="conversion-failed",
            )
        logger.info("converted legacy .ppt (%d bytes) in %.1fs", len(data), time.perf_counter() - started)
        _keep_profile(profile)
        return target.read_bytes()


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


def _lift_memory_ceiling() -> None:
    """LibreOffice reserves far more address space than it uses: it must not inherit
    the parse worker's ceiling (osmose.parsing.worker), which is meant for MuPDF.
    The deadline still bounds it."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def _run(cmd: list[str], *, timeout: float, home: Path) -> tuple[str, str]:
    env = {**os.environ, "HOME": str(home), "SAL_USE_VCLPLUGIN": "svp"}
    try:
        proc = subprocess.Popen(  # fixed argv, no shell
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=home,
            start_new_session=True,
            preexec_fn=_lift_memory_ceiling,
        )
    except OSError as exc:
        raise ConverterMissingError(f"could not start LibreOffice ({cmd[0]}): {exc}") from exc
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.communicate()
        raise DocumentError(
            f"LibreOffice did not convert this .ppt within {timeout:.0f}s (limits.convert_timeout_s)",
            reason="conversion-timeout",
        ) from None
    finally:
        _kill_group(proc.pid)  # helpers that outlive the launcher would hold the temp dir
    return stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace")


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
