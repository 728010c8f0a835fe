"""The blob store a process uses, chosen by one URL setting."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from osmose.bus.blobs.local import LocalBlobStore
from osmose.bus.blobs.protocol import BlobStore
from osmose.bus.exceptions import BlobStoreConfigurationError

__all__ = ["open_blob_store"]


def open_blob_store(*, url: str | None, local_dir: Path, endpoint_url: str | None = None,
                    region: str | None = None, access_key_id: str | None = None,
                    secret_access_key: str | None = None, session_token: str | None = None,
                    path_style: bool | None = None, verify_tls: bool = True, ca_bundle: str | None = None,
                    spool_dir: Path | None = None) -> BlobStore:
    """The store `url` names; no network call is made here.

    - no URL: a :class:`LocalBlobStore` in `local_dir` (one machine or a shared volume);
    - ``file:///abs/path``: a :class:`LocalBlobStore` there;
    - ``s3://bucket`` or ``s3://bucket/prefix``: an :class:`S3BlobStore` at `endpoint_url`
      (None = AWS), credentials from the arguments or else boto3's usual chain. `ca_bundle`
      names a CA file for a private endpoint; `verify_tls=False` is for development only.
    """
    if not url:
        return LocalBlobStore(local_dir)
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.path and not parts.netloc:
        return LocalBlobStore(Path(parts.path))
    if parts.scheme == "s3" and parts.netloc and not (parts.query or parts.fragment):
        from osmose.bus.blobs.s3 import S3BlobStore  # boto3 costs ~0.25 s to import: S3 users only

        return S3BlobStore(bucket=parts.netloc, prefix=parts.path, endpoint_url=endpoint_url or None,
                           region=region or None, access_key_id=access_key_id or None,
                           secret_access_key=secret_access_key or None, session_token=session_token or None,
                           path_style=path_style, verify=(ca_bundle or True) if verify_tls else False,
                           spool_dir=spool_dir)
    raise BlobStoreConfigurationError(
        f"blob store URL {url!r} is not s3://bucket[/prefix] or file:///path (leave it empty for {local_dir})")
