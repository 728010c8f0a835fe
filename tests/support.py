"""Test helpers importable from any test: the CLI as a subprocess, the shared corpus, waiting on a condition."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# beside the repository; OSMOSE_TEST_CORPUS points elsewhere (a git worktree, a CI cache)
CORPUS = Path(os.environ.get("OSMOSE_TEST_CORPUS") or REPO.parent / "shared" / "corpus")
OSMOSE = Path(sys.executable).parent / "osmose"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def run_osmose(*args: str | Path, data_dir: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 900) -> CliResult:
    """Run the installed `osmose` entry point the way a user does."""
    cmd = [str(OSMOSE), *map(str, args)]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OSMOSE_")}
    full_env.update(env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                          stdin=subprocess.DEVNULL)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def load_manifest() -> dict[str, dict[str, str]]:
    with (CORPUS / "MANIFEST.tsv").open(newline="") as fh:
        return {row["path"]: row for row in csv.DictReader(fh, delimiter="\t")}


async def until(condition: Callable[[], bool], what: str = "the condition", timeout_s: float = 30.0, *,
                interval_s: float = 0.02, blocking: bool = False) -> None:
    """Wait until `condition()` holds (checked every `interval_s`; `blocking`: it does I/O, so it
    runs in a thread); fail naming `what` after `timeout_s`. Tests wait on conditions, never on time."""
    deadline = time.monotonic() + timeout_s
    while not (await asyncio.to_thread(condition) if blocking else condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        await asyncio.sleep(interval_s)
