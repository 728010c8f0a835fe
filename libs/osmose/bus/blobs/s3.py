"""The claim-check store in an S3-compatible bucket (AWS S3, SeaweedFS, Ceph RGW, ...), for
clusters whose pods cannot share a folder.

Blobs are objects ``<prefix>sha256/<2 hex>/<64 hex>``: the key layout of the local store.
Nothing but complete blobs is ever written under that layout, so no reader can see a
partial one:

1. a blob is hashed before it is sent (`put` has the bytes; a writer spools the stream to
   an unnamed local temporary file), so its final key is known up front and no temporary
   object is ever created;
2. a blob already in the bucket is not sent again (a HEAD first: `put` is idempotent and
   a re-submitted file costs no upload); if it was stored more than `refresh_after` ago it
   is copied onto itself, which restarts its age for the bucket's expiry rule, so a blob
   that new messages refer to does not expire under them;
3. a small blob is one PutObject with its MD5, which the server checks (an upload cut
   short is rejected, never stored); a large one is a multipart upload, which S3 makes
   visible only when it is completed and which boto3 aborts when a part fails.

Concurrent puts of the same bytes write the same key with the same content: whichever
lands last, readers see the same blob. `get` and `local_file` check the digest of what
they read. boto3's exceptions are translated here, and only here, into the platform's
error tree (:func:`_translate`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

import boto3
import botocore.exceptions as bce
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from osmose.bus.blobs.protocol import (
    REF_PREFIX,
    BlobInfo,
    blob_key,
    claim_keys,
    claims_prefix,
    digest_of,
    document_keys,
    document_prefix,
    is_blob_ref,
    owner_prefix,
    ref_of_key,
    scratch_file,
)
from osmose.bus.exceptions import (
    BlobNotFoundError,
    BlobStoreConfigurationError,
    BlobStoreUnavailableError,
)
from osmose.errors import OsmoseError

__all__ = ["DEFAULT_MULTIPART_THRESHOLD", "DEFAULT_REFRESH_AFTER", "S3BlobStore"]

# Above this size a blob goes up as a multipart upload (parts of this size, sent in parallel).
DEFAULT_MULTIPART_THRESHOLD = 8 * 1024 * 1024
# A blob stored again after this long has its age restarted (see the module docstring).
DEFAULT_REFRESH_AFTER = timedelta(days=1)
# A writer keeps this much in memory before spooling to a local temporary file.
_SPOOL_IN_MEMORY = 8 * 1024 * 1024
_READ_CHUNK = 1024 * 1024
_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})
_MISCONFIGURED = frozenset({
    "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidBucketName",
    "AuthorizationHeaderMalformed", "AllAccessDisabled", "ExpiredToken", "InvalidToken", "403", "401",
})
# Missing or unusable credentials are a deployment mistake; everything else boto3 raises on
# its own (connection refused, timeouts, a response cut short) is transient.
_CONFIG_BOTO_ERRORS = (bce.NoCredentialsError, bce.PartialCredentialsError, bce.ParamValidationError,
                       bce.InvalidEndpointConfigurationError, bce.InvalidRegionError)
_T = TypeVar("_T")


def _translate(exc: Exception, *, doing: str) -> OsmoseError:
    """One boto3/botocore exception as the platform's error."""
    if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, Exception):
        exc = exc.__context__  # boto3 wraps the ClientError of a failed upload
    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _NOT_FOUND:
            return BlobNotFoundError(f"{doing}: not in the store ({code})")
        if code in _MISCONFIGURED or status in (401, 403):
            return BlobStoreConfigurationError(f"{doing}: {code} {error.get('Message', '')}".rstrip())
        # 5xx, SlowDown, RequestTimeout and anything unforeseen: retried with backoff, then
        # dead-lettered (and replayable), rather than dead-lettered at once.
        return BlobStoreUnavailableError(f"{doing}: {code} {error.get('Message', '')}".rstrip())
    if isinstance(exc, _CONFIG_BOTO_ERRORS):
        return BlobStoreConfigurationError(f"{doing}: {exc}")
    return BlobStoreUnavailableError(f"{doing}: {exc}")


class _S3Writer:
    def __init__(self, store: S3BlobStore) -> None:
        self._store = store
        self._hash = hashlib.sha256()
        # Unnamed once it spills to disk: a crash leaves no file behind. Closed by commit/abort.
        self._spool: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=_SPOOL_IN_MEMORY, dir=None if store.spool_dir is None else str(store.spool_dir))
        self.size = 0

    def write(self, data: bytes) -> None:
        try:
            self._spool.write(data)
        except OSError as exc:
            self.abort()
            raise BlobStoreUnavailableError(f"cannot spool a blob: {exc}") from exc
        self._hash.update(data)
        self.size += len(data)

    def commit(self) -> str:
        try:
            self._spool.seek(0)
            return self._store._upload(REF_PREFIX + self._hash.hexdigest(), self._spool, self.size)
        finally:
            self._spool.close()

    def abort(self) -> None:
        self._spool.close()


class S3BlobStore:
    """Blobs as objects in `bucket` under `prefix`. The constructor never touches the
    network; the first call checks that the bucket exists (a missing bucket is a
    configuration error, not a missing blob).

    Credentials left as None come from boto3's usual chain (environment, web identity
    in Kubernetes, instance profile). boto3 clients are thread-safe: one store serves
    every thread of a process.
    """

    def __init__(self, *, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, session_token: str | None = None,
                 path_style: bool | None = None, verify: bool | str = True,
                 connect_timeout: float = 5.0, read_timeout: float = 60.0, max_attempts: int = 3,
                 multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
                 refresh_after: timedelta = DEFAULT_REFRESH_AFTER, spool_dir: Path | None = None) -> None:
        if not bucket:
            raise BlobStoreConfigurationError("the S3 blob store needs a bucket name")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.spool_dir = spool_dir
        self.refresh_after = refresh_after
        self._session = boto3.session.Session(aws_access_key_id=access_key_id,
                                              aws_secret_access_key=secret_access_key,
                                              aws_session_token=session_token, region_name=region)
        # Servers other than AWS usually want path-style addressing (no per-bucket DNS
        # name), and may not accept the CRC checksums newer boto3 sends by default.
        style = "path" if (path_style if path_style is not None else endpoint_url is not None) else "auto"
        self._config = Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                              retries={"max_attempts": max_attempts, "mode": "standard"},
                              s3={"addressing_style": style}, max_pool_connections=16,
                              request_checksum_calculation="when_required",
                              response_checksum_validation="when_required", user_agent_extra="osmose")
        self._verify = verify
        self._transfer = TransferConfig(multipart_threshold=multipart_threshold,
                                        multipart_chunksize=multipart_threshold, max_concurrency=4)
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the credentials
        where = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"S3BlobStore('s3://{self.bucket}/{self.prefix}'{where})"

    def key(self, ref: str) -> str:
        return self.prefix + blob_key(ref)

    # -- boto3 at one place -------------------------------------------------------------

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    client = self._session.client("s3", endpoint_url=self.endpoint_url, config=self._config,
                                                  verify=self._verify)
                    client.head_bucket(Bucket=self.bucket)
                except Exception as exc:
                    error = _translate(exc, doing=f"bucket {self.bucket!r}")
                    if isinstance(error, BlobNotFoundError):
                        error = BlobStoreConfigurationError(f"bucket {self.bucket!r} does not exist"
                                                            f" at {self.endpoint_url or 'AWS'}")
                    raise error from exc
                self._client = client
            return self._client

    def _call(self, doing: str, action: Callable[[Any], _T]) -> _T:
        client = self._s3()
        try:
            return action(client)
        except OsmoseError:
            raise
        except Exception as exc:
            raise _translate(exc, doing=doing) from exc

    def _head(self, ref: str) -> dict[str, Any] | None:
        try:
            return self._call(f"HEAD {ref}", lambda s3: s3.head_object(Bucket=self.bucket, Key=self.key(ref)))
        except BlobNotFoundError:
            return None

    def _upload(self, ref: str, body: IO[bytes], size: int, md5: bytes | None = None) -> str:
        key = self.key(ref)
        head = self._head(ref)
        if head is not None:
            if datetime.now(UTC) - head["LastModified"] >= self.refresh_after:
                self._call(f"COPY {ref}", lambda s3: s3.copy_object(
                    Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key},
                    MetadataDirective="REPLACE", ContentType="application/octet-stream"))
            return ref
        if size < self._transfer.multipart_threshold:
            if md5 is None:
                md5 = hashlib.md5(body.read(), usedforsecurity=False).digest()
                body.seek(0)
            content_md5 = base64.b64encode(md5).decode()
            self._call(f"PUT {ref}", lambda s3: s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentLength=size, ContentMD5=content_md5,
                ContentType="application/octet-stream"))
        else:
            self._call(f"PUT {ref}", lambda s3: s3.upload_fileobj(
                body, self.bucket, key, ExtraArgs={"ContentType": "application/octet-stream"},
                Config=self._transfer))
        return ref

    # -- the BlobStore protocol ----------------------------------------------------------

    def put(self, data: bytes) -> str:
        ref = REF_PREFIX + hashlib.sha256(data).hexdigest()
        return self._upload(ref, io.BytesIO(data), len(data), hashlib.md5(data, usedforsecurity=False).digest())

    def writer(self) -> _S3Writer:
        return _S3Writer(self)

    def _stream(self, ref: str, sink: Callable[[bytes], object]) -> None:
        """Read the blob into `sink` chunk by chunk and check its digest."""
        def read(s3: Any) -> str:
            digest = hashlib.sha256()
            body = s3.get_object(Bucket=self.bucket, Key=self.key(ref))["Body"]
            with contextlib.closing(body):
                for chunk in body.iter_chunks(_READ_CHUNK):
                    digest.update(chunk)
                    sink(chunk)
            return REF_PREFIX + digest.hexdigest()

        if not is_blob_ref(ref):
            raise BlobNotFoundError(f"not a blob reference: {ref!r}")
        if self._call(f"GET {ref}", read) != ref:
            raise BlobNotFoundError(f"object {self.key(ref)} in bucket {self.bucket!r} does not hold blob {ref}")

    def get(self, ref: str) -> bytes:
        out = bytearray()
        self._stream(ref, out.extend)
        return bytes(out)

    def exists(self, ref: str) -> bool:
        return is_blob_ref(ref) and self._head(ref) is not None

    def size(self, ref: str) -> int:
        head = self._head(ref) if is_blob_ref(ref) else None
        if head is None:
            raise BlobNotFoundError(f"blob {ref} is not in s3://{self.bucket}/{self.prefix}")
        return int(head["ContentLength"])

    def list_blobs(self) -> Iterator[BlobInfo]:
        start = self.prefix + "sha256/"

        def pages(s3: Any) -> list[dict[str, Any]]:
            return list(s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start))

        for page in self._call(f"LIST {start}", pages):
            for obj in page.get("Contents", ()):
                ref = ref_of_key(obj["Key"][len(self.prefix):])
                if ref is not None:
                    yield BlobInfo(ref=ref, stored_at=obj["LastModified"].timestamp(), size=int(obj["Size"]))

    def delete_if_older(self, ref: str, stored_before: float) -> bool:
        """A HEAD, then the DELETE when the blob is still that old. S3 has no delete conditioned
        on the age, so a put of the same old bytes in the milliseconds between the two loses
        its blob; with a retention of days, that is a put of a blob nobody stored for days."""
        head = self._head(ref)
        if head is None or head["LastModified"].timestamp() >= stored_before:
            return False
        self._call(f"DELETE {ref}", lambda s3: s3.delete_object(Bucket=self.bucket, Key=self.key(ref)))
        return True

    def remove_scratch(self, older_than_s: float) -> int:
        """Abort multipart uploads under the prefix started longer ago than `older_than_s`
        (a process that died mid-upload; S3 keeps and bills their parts until then)."""
        horizon = datetime.now(UTC) - timedelta(seconds=older_than_s)

        def pages(s3: Any) -> list[dict[str, Any]]:
            return list(s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self.prefix))

        removed = 0
        for page in self._call("LIST multipart uploads", pages):
            for upload in page.get("Uploads", ()):
                if upload["Initiated"] < horizon:
                    self._abort_upload(upload["Key"], upload["UploadId"])
                    removed += 1
        return removed

    def _abort_upload(self, key: str, upload_id: str) -> None:
        def abort(s3: Any) -> None:
            s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

        self._call(f"ABORT {key}", abort)

    def claim(self, ref: str, tenant: str, doc_id: str = "") -> None:
        by_tenant, by_blob = claim_keys(ref, tenant)
        self._put_marker(by_tenant)
        self._put_marker(by_blob, doc_id.encode())   # the sweep finds the document marker by it
        if doc_id:
            self._put_marker(document_prefix(tenant, doc_id) + digest_of(ref))

    def _put_marker(self, key: str, body: bytes = b"") -> None:
        self._call(f"PUT {key}", lambda s3: s3.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=body))

    def _keys(self, prefix: str) -> list[str]:
        def pages(s3: Any) -> list[dict[str, Any]]:
            return list(s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + prefix))

        return [obj["Key"][len(self.prefix):] for page in self._call(f"LIST {prefix}", pages)
                for obj in page.get("Contents", ())]

    def _release(self, ref: str, tenant: str) -> int:
        """Drop `tenant`'s claim of `ref`, then the blob when nobody else claims it (1 if deleted)."""
        by_tenant, by_blob = claim_keys(ref, tenant)
        self._delete_key(by_blob)
        deleted = 0
        if not self._keys(claims_prefix(ref)) and self._head(ref) is not None:   # nobody else uses it
            self._delete_key(blob_key(ref))
            deleted = 1
        self._delete_key(by_tenant)
        return deleted

    def erase_tenant(self, tenant: str) -> int:
        deleted = 0
        for key in self._keys(owner_prefix(tenant)):
            ref = REF_PREFIX + key.rsplit("/", 1)[-1]
            if is_blob_ref(ref):
                deleted += self._release(ref, tenant)
        for key in self._keys(document_keys(tenant)):
            self._delete_key(key)
        return deleted

    def erase_document(self, tenant: str, doc_id: str) -> int:
        listed = document_prefix(tenant, doc_id)
        digests = {key.rsplit("/", 1)[-1] for key in self._keys(listed)}
        if is_blob_ref(REF_PREFIX + doc_id.ljust(64, "0")):   # a hex id: its submitted file
            digests |= {key.rsplit("/", 1)[-1] for key in self._keys(owner_prefix(tenant) + doc_id)}
        deleted = 0
        for digest in sorted(digests):
            ref = REF_PREFIX + digest
            if is_blob_ref(ref):
                deleted += self._release(ref, tenant)
            self._delete_key(listed + digest)
        return deleted

    def _read_marker(self, key: str) -> str:
        def read(s3: Any) -> bytes:
            return bytes(s3.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read())

        return self._call(f"GET {key}", read).decode("utf-8", "replace")

    def drop_claims(self, ref: str) -> int:
        removed = 0
        for key in self._keys(claims_prefix(ref)):
            tenant = key.rsplit("/", 1)[-1]
            try:
                doc_id = self._read_marker(key)
            except BlobNotFoundError:
                doc_id = ""
            for marker in ([document_prefix(tenant, doc_id) + digest_of(ref)] if doc_id else []) + [
                    owner_prefix(tenant) + digest_of(ref), key]:
                self._delete_key(marker)
                removed += 1
        return removed

    def _delete_key(self, key: str) -> None:
        self._call(f"DELETE {key}", lambda s3: s3.delete_object(Bucket=self.bucket, Key=self.prefix + key))

    @contextlib.contextmanager
    def local_file(self, ref: str, *, name: str) -> Iterator[Path]:
        with scratch_file(name) as path:
            with path.open("wb") as fh:
                self._stream(ref, fh.write)
            yield path
