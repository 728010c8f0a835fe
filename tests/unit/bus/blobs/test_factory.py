"""One URL setting chooses the blob store."""

from __future__ import annotations

from pathlib import Path

import pytest

from osmose.bus.blobs import LocalBlobStore, S3BlobStore, open_blob_store
from osmose.bus.exceptions import BlobStoreConfigurationError
from osmose.errors import ConfigurationError


def test_no_url_is_the_local_folder(tmp_path: Path) -> None:
    for url in (None, ""):
        store = open_blob_store(url=url, local_dir=tmp_path / "blobs")
        assert isinstance(store, LocalBlobStore) and store.root == tmp_path / "blobs"
    store = open_blob_store(url=f"file://{tmp_path}/shared", local_dir=tmp_path / "blobs")
    assert isinstance(store, LocalBlobStore) and store.root == tmp_path / "shared"


def test_s3_url_names_bucket_and_prefix(tmp_path: Path) -> None:
    store = open_blob_store(url="s3://osmose-blobs/prod/claims", local_dir=tmp_path, endpoint_url="http://s3:8333",
                            access_key_id="k", secret_access_key="s", spool_dir=tmp_path)
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix, store.endpoint_url, store.spool_dir) == (
        "osmose-blobs", "prod/claims/", "http://s3:8333", tmp_path)
    assert open_blob_store(url="s3://b", local_dir=tmp_path).prefix == ""  # type: ignore[attr-defined]


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "gs://b/p", "/srv/blobs", "s3://b/p?x=1", "file://host/p"])
def test_malformed_urls_are_configuration_errors(url: str, tmp_path: Path) -> None:
    with pytest.raises(BlobStoreConfigurationError) as caught:
        open_blob_store(url=url, local_dir=tmp_path)
    assert isinstance(caught.value, ConfigurationError)
