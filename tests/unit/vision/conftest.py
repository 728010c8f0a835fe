"""Fixtures for the vision tests; the builders live in ``builders``."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from osmose.config import Settings
from tests.fixtures.pdf_pages import build_scan_pdf


@pytest.fixture(scope="session")
def scan_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One page that is only a picture of the words INVOICE 2024 TOTAL."""
    path = build_scan_pdf(tmp_path_factory.mktemp("pdf") / "scan.pdf")
    assert not pymupdf.open(path)[0].get_text().strip()  # really no text layer
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")
