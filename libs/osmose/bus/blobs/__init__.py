"""Claim-check blob store: submitted files and large work items live here, Kafka
messages carry only a reference.

References are content addressed (``sha256:<hex>``), so storing the same bytes twice
is a no-op, a reference can never point at changed content, and the processes need
no coordination. Modules, one topic each:

``protocol``  the :class:`BlobStore` protocol, the reference format and the key layout
``local``     :class:`LocalBlobStore`: a folder every process can read (a shared volume)
``s3``        :class:`S3BlobStore`: an S3-compatible bucket, for clusters
``factory``   :func:`open_blob_store`: the store one URL setting names

``retention`` :func:`sweep`: removes blobs nobody stored for the retention period
              (`osmose blobs sweep`), keeping those dead letters still need

Blobs are not deleted by the jobs that use them (content addressing shares them between
jobs); the retention sweep does, and erasure (DeleteDocument/DeleteTenant) through the
ownership index (see :mod:`.protocol` and the README).
"""

from typing import TYPE_CHECKING, Any

from osmose.bus.blobs.factory import open_blob_store
from osmose.bus.blobs.local import LocalBlobStore
from osmose.bus.blobs.protocol import (
    REF_PREFIX,
    BlobInfo,
    BlobStore,
    BlobWriter,
    blob_key,
    digest_of,
    is_blob_ref,
)

if TYPE_CHECKING:
    from osmose.bus.blobs.s3 import DEFAULT_MULTIPART_THRESHOLD, DEFAULT_REFRESH_AFTER, S3BlobStore

__all__ = [
    "DEFAULT_MULTIPART_THRESHOLD",
    "DEFAULT_REFRESH_AFTER",
    "REF_PREFIX",
    "BlobInfo",
    "BlobStore",
    "BlobWriter",
    "LocalBlobStore",
    "S3BlobStore",
    "blob_key",
    "digest_of",
    "is_blob_ref",
    "open_blob_store",
]


def __getattr__(name: str) -> Any:
    # boto3 takes ~0.25 s to import: only the processes that use S3 pay for it.
    if name in ("S3BlobStore", "DEFAULT_MULTIPART_THRESHOLD", "DEFAULT_REFRESH_AFTER"):
        from osmose.bus.blobs import s3

        return getattr(s3, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
