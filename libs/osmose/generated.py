"""Files generated from the code (chart values, alert rules, dashboards): written, or checked
for staleness, by one routine, so every generator's `--check` means the same thing."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["sync_generated"]


def sync_generated(files: Mapping[Path, str], *, check: bool, label: str, root: Path) -> int:
    """Write each file whose content differs (or, with `check`, only report it); the exit status:
    1 when `check` found a stale file, else 0."""
    stale = [path for path, text in files.items() if not (path.exists() and path.read_text() == text)]
    for path in stale:
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[path])
        print(f"{label}: {'stale' if check else 'wrote'} {path.relative_to(root)}", file=sys.stderr)
    return 1 if stale and check else 0
