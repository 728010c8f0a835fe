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

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


# -- the S3-compatible test server (dev/seaweedfs.sh) -----------------------------------------------

def s3_settings() -> dict[str, str]:
    return {
        "endpoint_url": os.environ.get("OSMOSE_TEST_S3_ENDPOINT") or "http://127.0.0.1:8333",
        "access_key_id": os.environ.get("OSMOSE_TEST_S3_ACCESS_KEY") or "osmose-dev",
        "secret_access_key": os.environ.get("OSMOSE_TEST_S3_SECRET_KEY") or "osmose-dev-secret",
    }


def s3_bucket() -> str:
    return os.environ.get("OSMOSE_TEST_S3_BUCKET") or "osmose-test"


@pytest.fixture(scope="session")
def s3_client() -> Any:
    """A plain boto3 client on the test server (to inspect the bucket, not to test the store);
    skips, or fails in CI, when no server answers."""
    import boto3

    settings = s3_settings()
    url = urlsplit(settings["endpoint_url"])
    try:
        socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=2).close()
    except OSError as exc:
        message = (f"no S3 server at {settings['endpoint_url']} ({exc}); start one with `make s3-up`"
                   " (dev/seaweedfs.sh) or set OSMOSE_TEST_S3_ENDPOINT")
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI runs the S3 blob-store contract tests")
        pytest.skip(message)
    client = boto3.client("s3", endpoint_url=settings["endpoint_url"], aws_access_key_id=settings["access_key_id"],
                          aws_secret_access_key=settings["secret_access_key"], region_name="us-east-1")
    if s3_bucket() not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=s3_bucket())
    return client
