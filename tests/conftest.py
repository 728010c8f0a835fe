"""Shared fixtures: sample documents and the shared corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import CORPUS, load_manifest


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from osmose.samples import build_samples

    return build_samples(tmp_path_factory.mktemp("samples"))


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not (CORPUS / "MANIFEST.tsv").exists():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def manifest(corpus: Path) -> dict[str, dict[str, str]]:
    return load_manifest()
