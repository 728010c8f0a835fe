"""Finding optional system tools (LibreOffice, Tesseract) and running them bounded.

A tool configured with an explicit path is used only from that path: a wrong path
means "missing", it never silently falls back to whatever is on PATH.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Completed", "Tool", "kill_group", "locate", "run_bounded", "tool_env"]


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


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes


async def run_bounded(argv: Sequence[str], *, timeout_s: float, stdin: bytes | None = None,
                      env: Mapping[str, str] | None = None) -> Completed:
    """Run `argv` to completion; on timeout kill its whole process group and raise TimeoutError.

    A new session makes the tool the leader of its own group, so helpers it forks
    (soffice.bin behind soffice) die with it instead of lingering.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=timeout_s)
    except BaseException:  # timeout or cancellation: never leave the tool running
        kill_group(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()
        raise
    return Completed(proc.returncode if proc.returncode is not None else -1, out, err)


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def tool_env(**extra: str) -> dict[str, str]:
    """The current environment plus `extra` (read at call time, never at import)."""
    env = dict(os.environ)
    env.update(extra)
    return env
