"""The S3 store without a server: key layout, no secrets in its repr, no network in the
constructor, and connection trouble reported as retryable. The store against a real
server is in tests/contract/test_blob_store.py."""

from __future__ import annotations

import socket

import pytest

from osmose.bus.blobs import BlobStore, S3BlobStore, blob_key
from osmose.bus.exceptions import BlobNotFoundError, BlobStoreConfigurationError, BlobStoreUnavailableError
from osmose.errors import RetryableError

REF = "sha256:" + "ab" * 32


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unreachable() -> S3BlobStore:
    return S3BlobStore(bucket="b", endpoint_url=f"http://127.0.0.1:{closed_port()}", access_key_id="k",
                       secret_access_key="s", connect_timeout=0.5, read_timeout=0.5, max_attempts=1)


def test_keys_follow_the_local_layout_under_the_prefix() -> None:
    assert S3BlobStore(bucket="b").key(REF) == blob_key(REF) == f"sha256/ab/{'ab' * 32}"
    for prefix in ("osmose/blobs", "/osmose/blobs/", "osmose/blobs/"):
        assert S3BlobStore(bucket="b", prefix=prefix).key(REF) == "osmose/blobs/" + blob_key(REF)
    with pytest.raises(BlobNotFoundError):
        S3BlobStore(bucket="b").key("../etc")
    with pytest.raises(BlobStoreConfigurationError):
        S3BlobStore(bucket="")


def test_repr_names_the_place_and_never_the_credentials() -> None:
    store = S3BlobStore(bucket="b", prefix="p", endpoint_url="http://s3.local:8333", access_key_id="AKIAKEY",
                        secret_access_key="very-secret")
    assert isinstance(store, BlobStore)
    assert repr(store) == "S3BlobStore('s3://b/p/', endpoint_url='http://s3.local:8333')"
    assert "AKIAKEY" not in repr(store) and "very-secret" not in repr(store)


def test_connection_trouble_is_retryable() -> None:
    store = unreachable()  # the constructor made no call: it did not fail
    for call in (lambda: store.put(b"x"), lambda: store.get(REF), lambda: store.exists(REF)):
        with pytest.raises(BlobStoreUnavailableError) as caught:
            call()
        assert isinstance(caught.value, RetryableError)


def test_a_failed_writer_commit_is_retryable_and_leaves_no_spool_file(tmp_path) -> None:
    store = unreachable()
    store.spool_dir = tmp_path
    writer = store.writer()
    writer.write(b"x" * (9 * 1024 * 1024))  # past the in-memory part: spooled to disk
    with pytest.raises(BlobStoreUnavailableError):
        writer.commit()
    assert list(tmp_path.iterdir()) == []
