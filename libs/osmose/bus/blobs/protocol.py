"""What every claim-check blob store shares: the reference format, the key layout and
the :class:`BlobStore` protocol.

A reference is ``sha256:<64 hex>``, the digest of the blob's bytes, and every store files
the blob under the same relative key ``sha256/<2 hex>/<64 hex>``. So the same bytes get
the same reference and the same key in any store (a folder synced to a bucket stays
valid), and a reference can never point at changed content.

The ownership index erasure reads is empty markers next to the blobs:

- ``owners/<tenant>/<digest>``: the tenant uses the blob (erasing the tenant lists these);
- ``claims/<digest>/<tenant>``: who uses the blob (deleted only when nobody else does); the
  marker holds the id of the document that claimed it, so the sweep can find the next one;
- ``documents/<tenant>/<doc id>/<digest>``: the document uses the blob (erasing the document
  lists these). A blob belongs to one document: a submitted file's digest starts with its
  document id, and a claim-checked work item holds its document's id, so dropping the
  document's claim drops the tenant's.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Protocol, runtime_checkable

from osmose.bus.exceptions import BlobNotFoundError

__all__ = ["REF_PREFIX", "claim_keys", "owner_prefix", "claims_prefix", "document_keys", "document_prefix", "BlobInfo",
           "BlobStore", "BlobWriter", "blob_key", "digest_of", "is_blob_ref", "ref_of_key", "scratch_file"]

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


def blob_key(ref: str) -> str:
    """The blob's key relative to a store's root (a folder or a bucket prefix)."""
    digest = digest_of(ref)
    return f"sha256/{digest[:2]}/{digest}"


def _checked_tenant(tenant: str) -> str:
    if not tenant or "/" in tenant or tenant in (".", "..") or any(ord(c) < 32 for c in tenant):
        raise ValueError(f"not a tenant name for the blob ownership index: {tenant!r}")
    return tenant


def _checked_document(doc_id: str) -> str:
    if not doc_id or "/" in doc_id or doc_id in (".", "..") or any(ord(c) < 32 for c in doc_id):
        raise ValueError(f"not a document id for the blob ownership index: {doc_id!r}")
    return doc_id


def document_prefix(tenant: str, doc_id: str) -> str:
    """Where a document's claims are listed: ``documents/<tenant>/<doc id>/<digest>``."""
    return f"documents/{_checked_tenant(tenant)}/{_checked_document(doc_id)}/"


def document_keys(tenant: str) -> str:
    """Every document marker of a tenant (erasing the tenant removes them)."""
    return f"documents/{_checked_tenant(tenant)}/"


def owner_prefix(tenant: str) -> str:
    """Where a tenant's claims are listed: ``owners/<tenant>/<digest>`` (one empty object each)."""
    return f"owners/{_checked_tenant(tenant)}/"


def claims_prefix(ref: str) -> str:
    """Where a blob's claimants are listed: ``claims/<digest>/<tenant>``."""
    return f"claims/{digest_of(ref)}/"


def claim_keys(ref: str, tenant: str) -> tuple[str, str]:
    """The two marker keys of one claim: by tenant (erasure lists them) and by blob (erasure
    checks whether another tenant still uses the blob before deleting it)."""
    return owner_prefix(tenant) + digest_of(ref), claims_prefix(ref) + _checked_tenant(tenant)


def ref_of_key(key: str) -> str | None:
    """The reference a relative key ``sha256/<2 hex>/<64 hex>`` files; None for anything else."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != "sha256":
        return None
    ref = REF_PREFIX + parts[2]
    return ref if is_blob_ref(ref) and parts[1] == parts[2][:2] else None


@dataclass(frozen=True)
class BlobInfo:
    """One stored blob, as a retention sweep sees it."""

    ref: str
    #: when it was last stored (Unix seconds): a put of bytes already there restarts it
    stored_at: float
    size: int


@contextlib.contextmanager
def scratch_file(name: str) -> Iterator[Path]:
    """A path called `name` (its last component only: a file name never escapes the folder)
    in a fresh private folder, removed with everything in it when the context ends."""
    folder = Path(tempfile.mkdtemp(prefix="osmose-blob-"))
    try:
        yield folder / (PurePath(name).name or "document")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@runtime_checkable
class BlobWriter(Protocol):
    """Streams one blob in (a file uploaded in chunks); `commit` returns its reference.
    Nothing is visible in the store before `commit` returns; `abort` discards the data."""

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

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob (any order), for the retention sweep."""
        ...

    def delete_if_older(self, ref: str, stored_before: float) -> bool:
        """Delete the blob unless it was stored again at or after `stored_before` (Unix s);
        whether it was deleted. A put racing the sweep keeps its blob (see each store)."""
        ...

    def remove_scratch(self, older_than_s: float) -> int:
        """Remove what writes that died left behind (temporary files, unfinished uploads)
        older than `older_than_s`; how many."""
        ...

    def claim(self, ref: str, tenant: str, doc_id: str = "") -> None:
        """Record that `tenant` (document `doc_id`, when known) uses the blob (the ownership
        index erasure reads)."""
        ...

    def erase_tenant(self, tenant: str) -> int:
        """Forget `tenant`'s claims and delete the blobs no other tenant claims; how many
        blobs were deleted. Idempotent."""
        ...

    def erase_document(self, tenant: str, doc_id: str) -> int:
        """Forget the claims of document `doc_id` of `tenant` (and of its submitted file, whose
        digest starts with the id) and delete the blobs no other tenant claims; how many blobs
        were deleted. Idempotent."""
        ...

    def drop_claims(self, ref: str) -> int:
        """Remove every ownership marker of a blob that is gone (the retention sweep deleted
        it); how many markers were removed."""
        ...
