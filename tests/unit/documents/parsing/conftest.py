"""Fixtures for the parsing tests.

The document builders shared by every suite live in ``tests/fixtures/builders.py``
and import as ``tests.fixtures.builders`` (pytest runs with the repository root
on ``sys.path``, see ``pythonpath`` in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from osmose.config import Limits, Settings
from osmose.documents.parsing import parse_document
from osmose.v1 import document_pb2 as pb


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def parse(settings: Settings) -> Callable[..., pb.Document]:
    """parse(path, **limit_overrides) -> Document, with default settings unless limits are given."""

    def _parse(path: Path, **limits: float) -> pb.Document:
        chosen = settings if not limits else Settings(data_dir=settings.data_dir, limits=Limits(**limits))
        return parse_document(path, settings=chosen)

    return _parse
