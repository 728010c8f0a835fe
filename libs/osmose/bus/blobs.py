"""Claim-check blob store: submitted files and large work items live here, Kafka
messages carry only a reference.

References are content addressed (``sha256:<hex>``), so storing the same bytes twice
is a no-op, a reference can never point at changed content, and the processes need
no coordination. :class:`LocalBlobStore` keeps blobs in a folder every process of a
deployment can read (a shared volume); an S3-compatible store implements the same
:class:`BlobStore` protocol for clusters.

Blobs are not deleted by the pipeline (a replay from a dead-letter topic needs them);
a lifecycle rule on the bucket (or a periodic sweep of the folder) older than the
topics' retention is the intended clean-up.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Protocol, runtime_checkable

from osmose.bus.exceptions import BlobNotFoundError

__all__ = ["REF_PREFIX", "BlobStore", "BlobWriter", "LocalBlobStore", "digest_of", "is_blob_ref"]

REF_PREFIX = "sha256:"
_HEX = frozenset("0123456789abcdef")


def is_blob_ref(value: str) -> bool:
    digest = value[len(REF_PREFIX):]
    return value.startswith(REF_PREFIX) and len(digest) == 64 and set(digest) <= _HEX


def digest_of(ref: str) -> str:
    """The sha256 hex digest a reference names."""
    if not is_blob_ref(ref):
        raise BlobNotFoundError(f"not a blob reference: {ref!r}")
    return ref[len(REF_PREFIX):]


@runtime_checkable
class BlobWriter(Protocol):
    """Streams one blob in (a file uploaded in chunks); `commit` returns its reference."""

    size: int

    def write(self, data: bytes) -> None: ...

    def commit(self) -> str: ...

    def abort(self) -> None: ...


@runtime_checkable
class BlobStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store `data`; returns its reference (idempotent)."""
        ...

    def writer(self) -> BlobWriter: ...

    def get(self, ref: str) -> bytes:
        """The blob's bytes; :class:`BlobNotFoundError` when absent."""
        ...

    def exists(self, ref: str) -> bool: ...

    def size(self, ref: str) -> int: ...

    def local_file(self, ref: str, *, name: str) -> contextlib.AbstractContextManager[Path]:
        """The blob as a local file called `name` (parsers and renderers want a path
        with the original extension), for the duration of the context."""
        ...


class _LocalWriter:
    def __init__(self, store: LocalBlobStore) -> None:
        self._store = store
        self._hash = hashlib.sha256()
        self._tmp = store._tmp_path()
        self._fh = self._tmp.open("wb")
        self.size = 0

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self._hash.update(data)
        self.size += len(data)

    def commit(self) -> str:
        self._fh.close()
        return self._store._install(self._tmp, self._hash.hexdigest())

    def abort(self) -> None:
        self._fh.close()
        self._tmp.unlink(missing_ok=True)


class LocalBlobStore:
    """Blobs as files under ``root/sha256/<2 hex>/<64 hex>``, written atomically
    (temporary file + rename), safe for many processes sharing the folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def path(self, ref: str) -> Path:
        digest = digest_of(ref)
        return self.root / "sha256" / digest[:2] / digest

    def _tmp_path(self) -> Path:
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp / f"{uuid.uuid4().hex}.part"

    def _install(self, tmp: Path, digest: str) -> str:
        ref = REF_PREFIX + digest
        final = self.path(ref)
        if final.exists():
            tmp.unlink(missing_ok=True)
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        return ref

    def put(self, data: bytes) -> str:
        ref = REF_PREFIX + hashlib.sha256(data).hexdigest()
        if self.path(ref).exists():
            return ref
        tmp = self._tmp_path()
        tmp.write_bytes(data)
        return self._install(tmp, digest_of(ref))

    def writer(self) -> _LocalWriter:
        return _LocalWriter(self)

    def get(self, ref: str) -> bytes:
        try:
            return self.path(ref).read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {ref} is not in {self.root}") from None

    def exists(self, ref: str) -> bool:
        return is_blob_ref(ref) and self.path(ref).is_file()

    def size(self, ref: str) -> int:
        try:
            return self.path(ref).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {ref} is not in {self.root}") from None

    @contextlib.contextmanager
    def local_file(self, ref: str, *, name: str) -> Iterator[Path]:
        source = self.path(ref)
        if not source.is_file():
            raise BlobNotFoundError(f"blob {ref} is not in {self.root}")
        folder = Path(tempfile.mkdtemp(prefix="osmose-blob-"))
        link = folder / (PurePath(name).name or "document")
        try:
            try:
                link.symlink_to(source.resolve())
            except OSError:  # no symlinks on this filesystem
                shutil.copyfile(source, link)
            yield link
        finally:
            shutil.rmtree(folder, ignore_errors=True)
