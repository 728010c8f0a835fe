"""Finding the optional system tools (LibreOffice, Tesseract) and running them bounded.

A tool configured with an explicit path (``settings.soffice``, ``settings.tesseract``)
is used only from there: a wrong path means "missing", never a silent fall back to
whatever is on PATH. The explicit value may be a path or a bare name looked up on PATH.

Every run gets a deadline and its own session: on timeout (or cancellation) the
whole process group is killed, so helpers a tool forks (``soffice.bin`` behind the
``soffice`` script) die with it instead of lingering.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a worker process imports this module before its memory ceiling: keep it light
    from osmose.config import Settings

__all__ = [
    "Completed",
    "Tool",
    "kill_group",
    "locate",
    "run_bounded",
    "run_bounded_sync",
    "soffice_tool",
    "tesseract_tool",
    "tool_env",
]


@dataclass(frozen=True)
class Tool:
    """A system tool: `path` when found, else `missing` says why not."""

    label: str
    path: str | None
    missing: str = ""

    @property
    def available(self) -> bool:
        return self.path is not None


def locate(label: str, explicit: str | None, *names: str) -> Tool:
    """Find `label` at the `explicit` path (a path or a bare name), else on PATH under `names`."""
    if explicit:
        found = shutil.which(explicit)
        if found:
            return Tool(label, found)
        return Tool(label, None, f"{label} not found at configured path {explicit!r}")
    for name in names:
        found = shutil.which(name)
        if found:
            return Tool(label, found)
    return Tool(label, None, f"{label} not installed ({' / '.join(names)} not on PATH)")


def soffice_tool(settings: Settings) -> Tool:
    """LibreOffice's ``soffice``: ``settings.soffice`` (OSMOSE_SOFFICE), else on PATH."""
    return locate("LibreOffice", settings.soffice, "soffice", "libreoffice")


def tesseract_tool(settings: Settings) -> Tool:
    """The ``tesseract`` binary: ``settings.tesseract`` (OSMOSE_TESSERACT), else on PATH."""
    return locate("Tesseract", settings.tesseract, "tesseract")


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes


async def run_bounded(argv: Sequence[str], *, timeout_s: float, stdin: bytes | None = None,
                      env: Mapping[str, str] | None = None, cwd: Path | None = None,
                      preexec_fn: Callable[[], None] | None = None, reap_group: bool = False) -> Completed:
    """Run `argv` to completion; on timeout kill its whole process group and raise TimeoutError.

    `reap_group`: kill the group after a normal exit too (for tools whose helpers
    outlive the launcher and would hold files open). Raises OSError when the tool
    cannot be started.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=preexec_fn,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=timeout_s)
    except BaseException:  # timeout or cancellation: never leave the tool running
        kill_group(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()
        raise
    if reap_group:
        kill_group(proc.pid)
    return Completed(proc.returncode if proc.returncode is not None else -1, out, err)


def run_bounded_sync(argv: Sequence[str], *, timeout_s: float, env: Mapping[str, str] | None = None,
                     cwd: Path | None = None, preexec_fn: Callable[[], None] | None = None,
                     reap_group: bool = False) -> Completed:
    """:func:`run_bounded` for synchronous callers (the parse worker process); no stdin."""
    proc = subprocess.Popen(  # fixed argv, no shell
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True, preexec_fn=preexec_fn,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        proc.communicate()
        raise TimeoutError(f"{argv[0]} did not finish within {timeout_s:g}s") from None
    except BaseException:  # interrupted: never leave the tool running
        kill_group(proc.pid)
        proc.communicate()
        raise
    finally:
        if reap_group:
            kill_group(proc.pid)
    return Completed(proc.returncode, out, err)


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# Names that look like credentials, and the one setting a child process may see.
_SECRET_MARKERS = ("PASSWORD", "SECRET", "TOKEN", "KEY", "CREDENTIAL")
_KEPT_SETTINGS = frozenset({"OSMOSE_LOG_LEVEL"})


def untrusted_env(**extra: str) -> dict[str, str]:
    """The environment for a process that opens hostile files (parse and render workers,
    LibreOffice, Tesseract): the current one (read at call time) without ``OSMOSE_*`` settings
    and anything that looks like a credential, plus `extra`."""
    env = {name: value for name, value in os.environ.items()
           if (not name.startswith("OSMOSE_") or name in _KEPT_SETTINGS)
           and not any(marker in name.upper() for marker in _SECRET_MARKERS)}
    env.update(extra)
    return env


def tool_env(**extra: str) -> dict[str, str]:
    """What LibreOffice and Tesseract run with: :func:`untrusted_env` plus `extra`."""
    return untrusted_env(**extra)
