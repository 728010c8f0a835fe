"""`make eval` must not fall below the figures recorded in eval/recorded.json.

Bounded in time: two of the gold documents (a French course deck and an English talk), ingested
at the DEEP tier on the embedded default, exactly as `make eval` does for all six.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

pytestmark = [pytest.mark.corpus, pytest.mark.slow]

SUBSET = "cours-html-css-fr,poi-howwerefactor"


def test_eval_figures_do_not_drop_below_the_recorded_ones(corpus: Path, tmp_path: Path) -> None:
    recorded = json.loads((REPO / "eval" / "recorded.json").read_text(encoding="utf-8"))
    # Per-document floors of the subset (the overall figures are for all six documents).
    subset = {"overall": {}, "documents": {n: recorded["documents"][n] for n in SUBSET.split(",")}}
    floor = tmp_path / "floor.json"
    floor.write_text(json.dumps(subset), encoding="utf-8")
    out = tmp_path / "figures.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "eval" / "evaluate.py"), "--corpus", str(corpus), "--only", SUBSET,
         "--json", str(out), "--check", str(floor)],
        capture_output=True, text=True, timeout=900, check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert set(figures["documents"]) == set(SUBSET.split(","))
    assert figures["overall"]["precision_at_n"] is not None
