"""Shared fixtures: sample documents, the shared corpus and the backend of async tests.

One async style for the whole suite: a test of async code is itself ``async def`` and
is run by AnyIO's pytest plugin (``anyio`` in the dev extras of pyproject.toml), on
asyncio, through the module marker::

    pytestmark = pytest.mark.anyio

    async def test_something() -> None:
        out = await stage.process(item)

Sync tests never call ``asyncio.run`` themselves; async fixtures work the same way.
Helpers of a test module that drive async code are ``async def`` too and are awaited.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import CORPUS, load_manifest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Every async test and fixture runs on asyncio (the platform's event loop), once."""
    return "asyncio"


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
