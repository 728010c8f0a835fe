"""The BlobStore contract, run against every implementation.

Add an implementation to HARNESSES. ``local`` runs everywhere. ``s3`` runs against the
SeaweedFS server of dev/seaweedfs.sh (`make s3-up`; `make test` starts it):
OSMOSE_TEST_S3_ENDPOINT (default http://127.0.0.1:8333), bucket OSMOSE_TEST_S3_BUCKET
(osmose-test, created if missing), keys OSMOSE_TEST_S3_ACCESS_KEY / OSMOSE_TEST_S3_SECRET_KEY
(default: the script's). Without a server its tests skip, or fail in CI (CI set).
Each test stores under its own random prefix, so the tests share one bucket, and
removes what it stored.

Besides what the protocol promises, every test ends by checking that the store holds
nothing but complete blobs at their content-addressed keys: no temporary file or object,
no unfinished multipart upload.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from osmose.bus.blobs import BlobStore, LocalBlobStore, S3BlobStore, blob_key, digest_of
from osmose.bus.blobs.retention import sweep
from osmose.bus.exceptions import (
    BlobNotFoundError,
    BlobStoreConfigurationError,
    BlobStoreUnavailableError,
)
from osmose.errors import PermanentError, RetryableError
from tests.conftest import s3_bucket, s3_settings

MiB = 1024 * 1024
MARKER_TOPS = ("owners/", "claims/", "documents/")


@dataclass
class Harness:
    store: BlobStore
    stored: Callable[[], list[str]]
    """Keys of everything stored, relative to the store's root."""
    strays: Callable[[], list[str]]
    """Leftovers of writes: temporary files or objects, unfinished uploads, spool files."""
    failing: Callable[[], BlobStore]
    """A store at the same place whose writes fail (for the local store: from now on)."""
    markers: Callable[[], list[str]]
    """Keys of the ownership index (``owners/``, ``claims/``, ``documents/``)."""


def _local(tmp_path: Path) -> Iterator[Harness]:
    root = tmp_path / "blobs"

    def stored() -> list[str]:
        return sorted(str(p.relative_to(root)) for p in (root / "sha256").rglob("*") if p.is_file()) \
            if (root / "sha256").is_dir() else []

    def strays() -> list[str]:
        return sorted(str(p) for p in (root / "tmp").iterdir()) if (root / "tmp").is_dir() else []

    def failing() -> BlobStore:
        # A file where the blobs' folder should be: every write fails after its temporary file
        # is complete, the worst moment for a leftover.
        root.mkdir(parents=True, exist_ok=True)
        (root / "sha256").write_bytes(b"")
        return LocalBlobStore(root)

    def markers() -> list[str]:
        return sorted(str(p.relative_to(root)) for top in MARKER_TOPS if (root / top).is_dir()
                      for p in (root / top).rglob("*") if p.is_file())

    yield Harness(LocalBlobStore(root), stored, strays, failing, markers)


def _s3(tmp_path: Path, client: Any) -> Iterator[Harness]:
    bucket, prefix = s3_bucket(), f"contract/{uuid.uuid4().hex}/"
    spool = tmp_path / "spool"
    spool.mkdir()

    def listed() -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"][len(prefix):] for page in pages for o in page.get("Contents", []))

    def stored() -> list[str]:
        return [k for k in listed() if k.startswith("sha256/")]

    def strays() -> list[str]:
        uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
        return ([f"upload {u['Key']}" for u in uploads]
                + [k for k in listed() if not k.startswith(("sha256/", *MARKER_TOPS))]
                + [str(p) for p in spool.iterdir()])

    def markers() -> list[str]:
        return [k for k in listed() if k.startswith(MARKER_TOPS)]

    def failing() -> BlobStore:
        return S3BlobStore(bucket=bucket, prefix=prefix, **{**s3_settings(), "secret_access_key": "wrong"},
                           spool_dir=spool)

    yield Harness(S3BlobStore(bucket=bucket, prefix=prefix, **s3_settings(), spool_dir=spool), stored, strays, failing,
                  markers)
    for key in listed():
        client.delete_object(Bucket=bucket, Key=prefix + key)


HARNESSES = ["local", "s3"]


@pytest.fixture(params=HARNESSES)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "local":
        made = _local(tmp_path)
    else:
        made = _s3(tmp_path, request.getfixturevalue("s3_client"))
    h = next(made)
    yield h
    assert h.strays() == [], "a write left something behind"
    for key in h.stored():  # nothing but complete blobs at their content-addressed keys
        digest = key.rsplit("/", 1)[-1]
        assert key == blob_key("sha256:" + digest)
        assert hashlib.sha256(h.store.get("sha256:" + digest)).hexdigest() == digest
    next(made, None)


def ref_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def random_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def test_round_trip(harness: Harness) -> None:
    store = harness.store
    assert isinstance(store, BlobStore)
    for data in (b"hello", b"", random_bytes(70_000)):
        ref = store.put(data)
        assert ref == ref_of(data)
        assert store.get(ref) == data and store.size(ref) == len(data) and store.exists(ref)
    writer = store.writer()
    assert isinstance(writer, object) and writer.size == 0
    for part in (b"ab", b"cd", b"ef"):
        writer.write(part)
    assert writer.size == 6
    assert writer.commit() == ref_of(b"abcdef") and store.get(ref_of(b"abcdef")) == b"abcdef"


def test_same_bytes_give_the_same_reference_and_one_object(harness: Harness) -> None:
    data = random_bytes(5000, seed=1)
    ref = harness.store.put(data)
    writer = harness.store.writer()
    writer.write(data[:100])
    writer.write(data[100:])
    assert writer.commit() == ref
    assert harness.stored() == [blob_key(ref)]  # the same key layout in every store
    harness.store.put(b"other")
    assert len(harness.stored()) == 2


def test_put_is_idempotent(harness: Harness) -> None:
    data = random_bytes(3000, seed=2)
    refs = {harness.store.put(data) for _ in range(3)}
    assert refs == {ref_of(data)}
    assert harness.store.get(ref_of(data)) == data and harness.stored() == [blob_key(ref_of(data))]


def test_a_missing_blob_is_a_permanent_error(harness: Harness) -> None:
    store = harness.store
    missing = ref_of(b"never stored")
    assert not store.exists(missing) and not store.exists("nope")
    for call in (lambda: store.get(missing), lambda: store.size(missing), lambda: store.get("/etc/passwd")):
        with pytest.raises(BlobNotFoundError) as caught:
            call()
        assert isinstance(caught.value, PermanentError) and not isinstance(caught.value, RetryableError)
    with pytest.raises(BlobNotFoundError), store.local_file(missing, name="x.pptx"):
        pass


def test_local_file_has_the_original_name_and_is_removed(harness: Harness) -> None:
    ref = harness.store.put(b"%PDF-1.7 ...")
    with harness.store.local_file(ref, name="../../etc/report.pdf") as path:
        assert path.name == "report.pdf" and path.read_bytes() == b"%PDF-1.7 ..."
        folder = path.parent
    assert not path.exists() and not folder.exists() and harness.store.exists(ref)
    with pytest.raises(RuntimeError), harness.store.local_file(ref, name="deck.pptx") as path:
        raise RuntimeError("the parser failed")
    assert not path.parent.exists()


def test_large_blob_streamed_in_and_out(harness: Harness) -> None:
    data = random_bytes(12 * MiB, seed=3)  # above the S3 store's multipart threshold (8 MiB)
    writer = harness.store.writer()
    for start in range(0, len(data), MiB):
        writer.write(data[start:start + MiB])
    ref = writer.commit()
    assert ref == ref_of(data) and harness.store.size(ref) == len(data)
    assert harness.store.put(data) == ref and harness.stored() == [blob_key(ref)]
    with harness.store.local_file(ref, name="big.pdf") as path:
        assert path.stat().st_size == len(data) and hashlib.sha256(path.read_bytes()).hexdigest() == ref[7:]
    assert harness.store.get(ref) == data


def test_concurrent_puts_of_the_same_bytes(harness: Harness) -> None:
    data = random_bytes(2 * MiB, seed=4)
    start = threading.Barrier(8)

    def put(i: int) -> str:
        start.wait(timeout=30)
        if i % 2:
            return harness.store.put(data)
        writer = harness.store.writer()
        writer.write(data)
        return writer.commit()

    with ThreadPoolExecutor(8) as pool:
        refs = set(pool.map(put, range(8)))
    assert refs == {ref_of(data)}
    assert harness.stored() == [blob_key(ref_of(data))] and harness.store.get(ref_of(data)) == data


def test_an_aborted_writer_leaves_nothing(harness: Harness) -> None:
    writer = harness.store.writer()
    writer.write(random_bytes(9 * MiB, seed=5))
    writer.abort()
    assert harness.stored() == [] and harness.strays() == []


def test_a_failed_put_leaves_nothing(harness: Harness) -> None:
    failing = harness.failing()
    data = random_bytes(MiB, seed=6)
    with pytest.raises((BlobStoreUnavailableError, BlobStoreConfigurationError)):
        failing.put(data)
    writer = failing.writer()
    writer.write(random_bytes(9 * MiB, seed=7))
    with pytest.raises((BlobStoreUnavailableError, BlobStoreConfigurationError)):
        writer.commit()
    assert harness.stored() == [] and harness.strays() == []


# -- S3 only: how the server's answers map to the error tree ------------------------------


def test_s3_missing_bucket_and_refused_credentials_are_configuration_errors(s3_client: Any) -> None:
    missing = S3BlobStore(bucket=f"osmose-missing-{uuid.uuid4().hex[:8]}", **s3_settings())
    with pytest.raises(BlobStoreConfigurationError, match="does not exist"):
        missing.exists(ref_of(b"x"))
    refused = S3BlobStore(bucket=s3_bucket(), **{**s3_settings(), "access_key_id": "nobody"})
    with pytest.raises(BlobStoreConfigurationError):
        refused.get(ref_of(b"x"))


def test_s3_object_with_other_bytes_is_not_the_blob(s3_client: Any) -> None:
    prefix = f"contract/{uuid.uuid4().hex}/"
    store = S3BlobStore(bucket=s3_bucket(), prefix=prefix, **s3_settings())
    ref = ref_of(b"the real bytes")
    s3_client.put_object(Bucket=s3_bucket(), Key=prefix + blob_key(ref), Body=b"tampered")
    try:
        with pytest.raises(BlobNotFoundError, match="does not hold"):
            store.get(ref)
        with pytest.raises(BlobNotFoundError), store.local_file(ref, name="a.pdf"):
            pass
    finally:
        s3_client.delete_object(Bucket=s3_bucket(), Key=prefix + blob_key(ref))


def test_s3_storing_a_blob_again_restarts_its_age(s3_client: Any) -> None:
    prefix = f"contract/{uuid.uuid4().hex}/"
    store = S3BlobStore(bucket=s3_bucket(), prefix=prefix, **s3_settings(), refresh_after=timedelta(0))
    data = random_bytes(3 * MiB, seed=8)
    ref = store.put(data)
    key = prefix + blob_key(ref)
    s3_client.copy_object(Bucket=s3_bucket(), Key=key, CopySource={"Bucket": s3_bucket(), "Key": key},
                          MetadataDirective="REPLACE", Metadata={"marker": "old"})
    try:
        assert store.put(data) == ref  # copied onto itself: a new age, the marker gone, the same bytes
        head = s3_client.head_object(Bucket=s3_bucket(), Key=key)
        assert "marker" not in head.get("Metadata", {}) and head["ContentLength"] == len(data)
        assert store.get(ref) == data
    finally:
        s3_client.delete_object(Bucket=s3_bucket(), Key=key)


def test_s3_the_documented_lifecycle_rule_is_accepted(s3_client: Any) -> None:
    """The README's expiry rule, as a server applies it (here on a prefix nothing uses)."""
    rule = {"ID": "osmose-blobs", "Status": "Enabled", "Filter": {"Prefix": "lifecycle-probe/"},
            "Expiration": {"Days": 31}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}
    s3_client.put_bucket_lifecycle_configuration(Bucket=s3_bucket(), LifecycleConfiguration={"Rules": [rule]})
    try:
        (applied,) = s3_client.get_bucket_lifecycle_configuration(Bucket=s3_bucket())["Rules"]
        assert applied["Expiration"] == {"Days": 31} and applied["Filter"] == rule["Filter"]
    finally:
        s3_client.delete_bucket_lifecycle(Bucket=s3_bucket())


# -- retention: listing, deleting by age, leftovers of dead writers ---------------------------


def test_list_blobs_names_every_blob_with_its_size_and_age(harness: Harness) -> None:
    before = time.time() - 120   # S3 servers' clocks and LastModified (whole seconds) are coarse
    refs = {harness.store.put(random_bytes(n, seed=n)): n for n in (10, 2000, 70_000)}
    listed = {blob.ref: blob for blob in harness.store.list_blobs()}
    assert set(listed) == set(refs)
    for ref, size in refs.items():
        assert listed[ref].size == size and before <= listed[ref].stored_at <= time.time() + 120


def test_sweep_removes_what_nobody_stored_for_the_retention_and_keeps_the_rest(harness: Harness) -> None:
    store = harness.store
    old, referenced, young = (store.put(random_bytes(3000, seed=s)) for s in (20, 21, 22))
    # A day later (the sweep's clock moves, not the blobs' ages): only `young` is stored again then.
    later = time.time() + 86400
    report = sweep(store, retention_s=3600, keep={referenced}, dry_run=True, now=later)
    assert (report.removed, report.kept_referenced, report.kept_young) == (3 - 1, 1, 0)
    assert sorted(harness.stored()) == sorted(blob_key(r) for r in (old, referenced, young))   # dry run
    report = sweep(store, retention_s=3600 + 86400 + 60, keep={referenced}, now=later)   # nothing is old yet
    assert report.removed == 0 and report.kept_young == 3
    report = sweep(store, retention_s=3600, keep={referenced}, now=later)
    assert (report.examined, report.removed, report.kept_referenced) == (3, 2, 1)
    assert report.bytes_removed == 6000 and set(report.removed_refs) == {old, young}
    assert harness.stored() == [blob_key(referenced)]
    assert not store.exists(old) and store.get(referenced) == random_bytes(3000, seed=21)
    assert store.put(random_bytes(3000, seed=20)) == old and store.exists(old)   # stored again: back


def test_a_blob_stored_again_during_a_sweep_is_kept(harness: Harness) -> None:
    store = harness.store
    ref = store.put(random_bytes(4000, seed=30))
    stored_before = time.time() - 3600   # the blob is younger than that: a put restarted its age
    assert store.delete_if_older(ref, stored_before) is False
    assert store.exists(ref) and harness.stored() == [blob_key(ref)]
    assert store.delete_if_older(ref, time.time() + 3600) is True
    assert not store.exists(ref) and harness.stored() == []
    assert store.delete_if_older(ref, time.time() + 3600) is False   # already gone


def test_local_leftovers_of_a_dead_writer_are_removed_when_old(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    (tmp_path / "blobs" / "tmp").mkdir(parents=True)
    stale, fresh = tmp_path / "blobs" / "tmp" / "a.part", tmp_path / "blobs" / "tmp" / "b.part"
    stale.write_bytes(b"half a blob")
    fresh.write_bytes(b"a write in progress")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    assert store.remove_scratch(3600) == 1
    assert not stale.exists() and fresh.exists()


def test_local_a_write_that_fails_halfway_leaves_no_temporary_file(tmp_path: Path) -> None:
    """A real failed write (the file-size limit of the process, as a full disk would fail it)
    in the middle of a blob, for `put` and for a streamed writer."""
    code = textwrap.dedent(f"""
        import resource, signal, sys
        from pathlib import Path
        from osmose.bus.blobs import LocalBlobStore
        from osmose.bus.exceptions import BlobStoreUnavailableError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        store = LocalBlobStore(Path({str(tmp_path / "blobs")!r}))
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
        failures = 0
        try:
            store.put(b"x" * 200_000)
        except BlobStoreUnavailableError:
            failures += 1
        writer = store.writer()
        try:
            for _ in range(10):
                writer.write(b"y" * 50_000)
            writer.commit()
        except BlobStoreUnavailableError:
            failures += 1
        print(failures)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []
    assert not (tmp_path / "blobs" / "sha256").exists() or not any((tmp_path / "blobs" / "sha256").rglob("*"))


def test_s3_unfinished_uploads_of_a_dead_writer_are_aborted(s3_client: Any) -> None:
    prefix = f"contract/{uuid.uuid4().hex}/"
    store = S3BlobStore(bucket=s3_bucket(), prefix=prefix, **s3_settings())
    upload = s3_client.create_multipart_upload(Bucket=s3_bucket(), Key=prefix + "sha256/ab/" + "ab" * 32)
    s3_client.upload_part(Bucket=s3_bucket(), Key=prefix + "sha256/ab/" + "ab" * 32, UploadId=upload["UploadId"],
                          PartNumber=1, Body=b"part of a blob")

    def pending() -> list[str]:
        uploads = s3_client.list_multipart_uploads(Bucket=s3_bucket(), Prefix=prefix).get("Uploads", [])
        return [u["UploadId"] for u in uploads]

    assert pending() == [upload["UploadId"]]
    assert store.remove_scratch(3600) == 0          # started a moment ago: perhaps still running
    assert store.remove_scratch(-60) == 1 and pending() == []


def test_erasing_a_tenant_deletes_the_blobs_only_it_claimed(harness: Harness) -> None:
    """Blobs are shared by content, so erasure goes by the ownership index: a tenant's claims are
    forgotten, and a blob is deleted only when no other tenant claims it. Idempotent."""
    store = harness.store
    mine, shared, theirs = (store.put(random_bytes(3000, seed=s)) for s in (11, 12, 13))
    for ref in (mine, shared):
        store.claim(ref, "acme")
        store.claim(ref, "acme")               # claiming again changes nothing
    for ref in (shared, theirs):
        store.claim(ref, "globex")
    assert store.erase_tenant("acme") == 1
    assert not store.exists(mine) and store.exists(shared) and store.exists(theirs)
    assert store.erase_tenant("acme") == 0    # idempotent
    assert store.erase_tenant("globex") == 2  # now nobody uses the shared one
    assert harness.stored() == []
    with pytest.raises(ValueError, match="not a tenant name"):
        store.claim(mine, "../escape")


def test_erasing_a_document_deletes_the_blobs_only_it_used(harness: Harness) -> None:
    """A document's claims are listed under it (a claim-checked work item names its document; a
    submitted file's digest starts with the document id, found even when claimed without the id):
    erasing the document deletes its blobs unless another tenant claims them, and its markers.
    The tenant's other document and the other tenant keep theirs. Idempotent."""
    store = harness.store
    file_one, file_two = (random_bytes(2000, seed=s) for s in (21, 22))
    doc_one, doc_two = (hashlib.sha256(f).hexdigest()[:32] for f in (file_one, file_two))
    submitted_one, submitted_two = store.put(file_one), store.put(file_two)
    store.claim(submitted_one, "acme")                       # as the front door claimed before documents were
    store.claim(submitted_two, "acme", doc_two)
    item_one, shared, item_two = (store.put(random_bytes(3000, seed=s)) for s in (23, 24, 25))
    store.claim(item_one, "acme", doc_one)
    store.claim(shared, "acme", doc_one)
    store.claim(shared, "globex", "g" * 32)                 # the same bytes in another tenant's document
    store.claim(item_two, "acme", doc_two)
    before = harness.markers()

    assert store.erase_document("acme", doc_one) == 2        # its file and its own work item
    assert not store.exists(submitted_one) and not store.exists(item_one)
    assert all(store.exists(ref) for ref in (shared, submitted_two, item_two))
    left = harness.markers()
    assert not [k for k in left if doc_one in k or digest_of(item_one) in k]
    assert [k for k in before if k not in left] and all(k in before for k in left)
    assert sorted(k for k in left if "globex" in k) == sorted(k for k in before if "globex" in k)
    assert store.erase_document("acme", doc_one) == 0        # idempotent
    assert harness.markers() == left
    assert store.erase_document("acme", doc_two) == 2
    assert not [k for k in harness.markers() if "acme" in k]
    assert store.erase_tenant("globex") == 1 and harness.stored() == [] and harness.markers() == []
    with pytest.raises(ValueError, match="not a document id"):
        store.erase_document("acme", "../x")


def test_erasing_a_tenant_removes_its_document_markers(harness: Harness) -> None:
    store = harness.store
    ref = store.put(random_bytes(1000, seed=31))
    store.claim(ref, "acme", "a" * 32)
    assert store.erase_tenant("acme") == 1
    assert harness.markers() == [] and harness.stored() == []


def test_the_sweep_removes_the_ownership_markers_of_the_blobs_it_deletes(harness: Harness) -> None:
    store = harness.store
    old, referenced = (store.put(random_bytes(1500, seed=s)) for s in (41, 42))
    for ref in (old, referenced):
        store.claim(ref, "acme", "a" * 32)
        store.claim(ref, "globex", "b" * 32)
    store.claim(old, "initech")                               # a claim without a document
    report = sweep(store, retention_s=3600, keep={referenced}, now=time.time() + 86400)
    assert report.removed_refs == [old] and report.markers_removed == 8
    assert not store.exists(old) and store.exists(referenced)
    assert not [k for k in harness.markers() if digest_of(old) in k]
    assert len([k for k in harness.markers() if digest_of(referenced) in k]) == 6   # the kept blob's claims stay
    assert store.erase_tenant("acme") == 0 and store.erase_tenant("globex") == 1
    assert store.erase_tenant("initech") == 0 and harness.markers() == []
