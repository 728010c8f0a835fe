"""LibreOffice runs without a `preexec_fn` from a process that has no memory ceiling: a
`preexec_fn` runs Python in a forked child, which can deadlock when other threads held a lock
at fork time (seen: the vision stage converting a deck while embedding threads ran)."""

from __future__ import annotations

import resource
import subprocess
import sys

from osmose.documents.libreoffice import _memory_ceiling_lift


def test_no_child_hook_without_a_ceiling() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    assert soft == hard                       # the test process, like the CLI and the services
    assert _memory_ceiling_lift() is None


def test_a_parse_worker_under_a_ceiling_lifts_it_for_libreoffice() -> None:
    code = ("import resource\n"
            "soft, hard = resource.getrlimit(resource.RLIMIT_AS)\n"
            "resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, hard))\n"
            "from osmose.documents.libreoffice import _memory_ceiling_lift\n"
            "print(_memory_ceiling_lift() is not None)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "True", done.stderr
