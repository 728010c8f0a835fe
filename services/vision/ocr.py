"""OCR of page images with the Tesseract command-line tool.

Tesseract reads a PNG on stdin and writes text on stdout (``--psm 3``: automatic
page segmentation). The language packs come from the document's languages, kept
to the packs actually installed, with English as the fallback. When Tesseract is
missing, :meth:`Tesseract.recognize` returns a result that says so instead of
raising: the page is then described from its parsed content.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from osmose.config import Settings
from osmose.documents.system_tools import Tool, run_bounded, tesseract_tool, tool_env

__all__ = ["OcrResult", "Tesseract", "clean_ocr_text", "tesseract_languages"]

logger = logging.getLogger(__name__)

# ISO 639-1 (what language detection yields) to Tesseract's traineddata names.
ISO_TO_TESSERACT: dict[str, str] = {
    "ar": "ara", "bg": "bul", "ca": "cat", "cs": "ces", "da": "dan", "de": "deu", "el": "ell", "en": "eng",
    "es": "spa", "et": "est", "eu": "eus", "fa": "fas", "fi": "fin", "fr": "fra", "ga": "gle", "gl": "glg",
    "he": "heb", "hi": "hin", "hr": "hrv", "hu": "hun", "id": "ind", "is": "isl", "it": "ita", "ja": "jpn",
    "ko": "kor", "lt": "lit", "lv": "lav", "ms": "msa", "nb": "nor", "nl": "nld", "no": "nor", "pl": "pol",
    "pt": "por", "ro": "ron", "ru": "rus", "sk": "slk", "sl": "slv", "sr": "srp", "sv": "swe", "th": "tha",
    "tr": "tur", "uk": "ukr", "vi": "vie", "zh": "chi_sim",
}
FALLBACK_LANGUAGE = "eng"
# Packs per OCR call: each extra one slows Tesseract down noticeably.
MAX_LANGUAGES = 2
_LIST_LANGS_TIMEOUT_S = 15.0
_TOKEN = re.compile(r"\S+")
_WORDLIKE = re.compile(r"^\W*[^\W_]{2,}\W*$")


@dataclass(frozen=True)
class OcrResult:
    text: str
    languages: str
    seconds: float
    # Why there is no text: "" when Tesseract ran (even if it found nothing).
    error: str = ""


def clean_ocr_text(raw: str) -> str:
    """Keep the lines that read like text; drop the noise OCR makes of lines, icons and photos.

    A line is kept when at least half its tokens are word-like (two or more letters
    or digits, punctuation around them allowed) and at least half of its visible
    characters are letters or digits.
    """
    kept: list[str] = []
    for line in raw.replace("\x0c", "\n").splitlines():
        line = " ".join(line.split())
        if not line:
            if kept and kept[-1]:
                kept.append("")
            continue
        tokens = _TOKEN.findall(line)
        visible = line.replace(" ", "")
        wordlike = sum(1 for t in tokens if _WORDLIKE.match(t))
        alnum = sum(1 for c in visible if c.isalnum())
        if wordlike * 2 >= len(tokens) and alnum * 2 >= len(visible):
            kept.append(line)
    return "\n".join(kept).strip()


def tesseract_languages(codes: Sequence[str], installed: frozenset[str]) -> str:
    """The ``-l`` argument for these document languages (ISO 639-1, dominant first)."""
    chosen: list[str] = []
    for code in codes:
        pack = ISO_TO_TESSERACT.get(code.lower().split("-")[0], "")
        if pack in installed and pack not in chosen:
            chosen.append(pack)
        if len(chosen) == MAX_LANGUAGES:
            break
    if not chosen and FALLBACK_LANGUAGE in installed:
        chosen.append(FALLBACK_LANGUAGE)
    return "+".join(chosen) or FALLBACK_LANGUAGE


@functools.lru_cache(maxsize=8)
def _installed_languages(binary: str) -> frozenset[str]:
    try:
        done = subprocess.run([binary, "--list-langs"], capture_output=True, text=True,
                              timeout=_LIST_LANGS_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("tesseract --list-langs failed: %s", exc)
        return frozenset()
    # First line is "List of available languages in ...", then one pack per line.
    lines = (done.stdout or "").splitlines()[1:]
    return frozenset(line.strip() for line in lines if line.strip() and line.strip() != "osd")


class Tesseract:
    """The Tesseract binary named by the settings (or found on PATH)."""

    def __init__(self, tool: Tool, *, timeout_s: float) -> None:
        self.tool = tool
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> Tesseract:
        return cls(tesseract_tool(settings), timeout_s=settings.limits.ocr_timeout_s)

    @property
    def available(self) -> bool:
        return self.tool.available

    @property
    def missing(self) -> str:
        return self.tool.missing

    async def installed_languages(self) -> frozenset[str]:
        if not self.tool.path:
            return frozenset()
        return await asyncio.to_thread(_installed_languages, self.tool.path)

    async def languages_for(self, codes: Sequence[str]) -> str:
        return tesseract_languages(codes, await self.installed_languages())

    async def recognize(self, png: bytes, *, languages: str = FALLBACK_LANGUAGE, dpi: int | None = None) -> OcrResult:
        """Text of one page image, cleaned. Never raises for a missing tool, a timeout or a crash."""
        started = time.perf_counter()
        if not self.tool.path:
            return OcrResult("", languages, 0.0, error=self.tool.missing)
        argv = [self.tool.path, "stdin", "stdout", "-l", languages, "--psm", "3"]
        if dpi:
            argv += ["--dpi", str(dpi)]
        try:
            # One thread per Tesseract: the stage already runs pages side by side.
            done = await run_bounded(argv, stdin=png, timeout_s=self.timeout_s, env=tool_env(OMP_THREAD_LIMIT="1"))
        except TimeoutError:
            return OcrResult("", languages, time.perf_counter() - started,
                             error=f"Tesseract did not finish within {self.timeout_s:g}s")
        except OSError as exc:
            return OcrResult("", languages, time.perf_counter() - started, error=f"Tesseract failed to start: {exc}")
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            tail = done.stderr.decode("utf-8", "replace").strip()[-200:]
            return OcrResult("", languages, seconds, error=f"Tesseract exit code {done.returncode}: {tail}")
        return OcrResult(clean_ocr_text(done.stdout.decode("utf-8", "replace")), languages, seconds)
