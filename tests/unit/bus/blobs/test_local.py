"""The local claim-check store: content addressed, atomic, streamed, usable as a named file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from osmose.bus.blobs import BlobStore, LocalBlobStore, digest_of, is_blob_ref
from osmose.bus.exceptions import BlobNotFoundError


def test_put_get_is_content_addressed(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    assert isinstance(store, BlobStore)
    ref = store.put(b"hello")
    assert ref == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert store.put(b"hello") == ref and store.get(ref) == b"hello" and store.size(ref) == 5
    assert store.exists(ref) and not store.exists("sha256:" + "1" * 64) and not store.exists("nope")
    assert not list((tmp_path / "tmp").iterdir())


def test_streamed_writer_matches_put_and_abort_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    writer = store.writer()
    for part in (b"ab", b"cd", b"ef"):
        writer.write(part)
    assert writer.size == 6
    assert writer.commit() == store.put(b"abcdef")
    aborted = store.writer()
    aborted.write(b"partial")
    aborted.abort()
    assert not list((tmp_path / "tmp").iterdir())


def test_local_file_has_the_original_name_and_disappears(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    ref = store.put(b"%PDF-1.7 ...")
    with store.local_file(ref, name="../../etc/report.pdf") as path:
        assert path.name == "report.pdf" and path.read_bytes() == b"%PDF-1.7 ..."
    assert not path.exists() and store.exists(ref)


def test_missing_and_malformed_references(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(BlobNotFoundError):
        store.get("sha256:" + "a" * 64)
    with pytest.raises(BlobNotFoundError), store.local_file("sha256:" + "a" * 64, name="x.pptx"):
        pass
    with pytest.raises(BlobNotFoundError):
        digest_of("/etc/passwd")
    assert is_blob_ref("sha256:" + "0" * 64) and not is_blob_ref("sha256:" + "G" * 64)


def test_storing_a_blob_again_restarts_its_age(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    ref = store.put(b"kept while referenced")
    os.utime(store.path(ref), (1_000_000, 1_000_000))  # as if stored long ago
    assert store.put(b"kept while referenced") == ref
    assert store.path(ref).stat().st_mtime > 1_000_000
    os.utime(store.path(ref), (1_000_000, 1_000_000))
    writer = store.writer()
    writer.write(b"kept while referenced")
    assert writer.commit() == ref and store.path(ref).stat().st_mtime > 1_000_000
