"""The claim-check store as a folder every process of a deployment can read (one machine,
or a shared volume)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

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
from osmose.bus.exceptions import BlobNotFoundError, BlobStoreUnavailableError

__all__ = ["LocalBlobStore"]


def _unlink(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1


class _LocalWriter:
    def __init__(self, store: LocalBlobStore) -> None:
        self._store = store
        self._hash = hashlib.sha256()
        self._tmp = store._tmp_path()
        self._fh = self._tmp.open("wb")
        self.size = 0

    def write(self, data: bytes) -> None:
        try:
            self._fh.write(data)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise BlobStoreUnavailableError(f"cannot write a blob under {self._store.root}: {exc}") from exc
            raise
        self._hash.update(data)
        self.size += len(data)

    def commit(self) -> str:
        try:
            self._fh.close()   # flushes: a full disk shows here
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise BlobStoreUnavailableError(f"cannot write a blob under {self._store.root}: {exc}") from exc
            raise
        return self._store._install(self._tmp, self._hash.hexdigest())

    def abort(self) -> None:
        with contextlib.suppress(OSError):
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
        return self.root / blob_key(ref)

    def _tmp_path(self) -> Path:
        tmp = self.root / "tmp"
        try:
            tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BlobStoreUnavailableError(f"cannot write a blob under {self.root}: {exc}") from exc
        return tmp / f"{uuid.uuid4().hex}.part"

    def _install(self, tmp: Path, digest: str) -> str:
        """Move a complete temporary file to its final name; the temporary file is gone
        afterwards whatever happens (a failed rename must not leave it behind)."""
        ref = REF_PREFIX + digest
        final = self.path(ref)
        try:
            if not self._touch(final):
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
        except OSError as exc:  # a full disk or a broken share: the next attempt may succeed
            raise BlobStoreUnavailableError(f"cannot store blob {ref} under {self.root}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return ref

    @staticmethod
    def _touch(final: Path) -> bool:
        """Whether the blob is already stored; if so its modification time restarts, so a
        sweep by age never removes a blob that new messages refer to."""
        try:
            os.utime(final)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError:  # another owner or a read-only share: stored all the same
            return final.is_file()
        return True

    def put(self, data: bytes) -> str:
        ref = REF_PREFIX + hashlib.sha256(data).hexdigest()
        if self._touch(self.path(ref)):
            return ref
        tmp = self._tmp_path()
        try:
            tmp.write_bytes(data)
        except BaseException as exc:   # a full disk, a file-size limit, an interrupt: no temporary file stays
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise BlobStoreUnavailableError(f"cannot store blob {ref} under {self.root}: {exc}") from exc
            raise
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

    def list_blobs(self) -> Iterator[BlobInfo]:
        base = self.root / "sha256"
        try:
            shards = list(os.scandir(base))
        except FileNotFoundError:
            return
        for shard in shards:
            if not shard.is_dir():
                continue
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(shard.path):
                    ref = ref_of_key(f"sha256/{shard.name}/{entry.name}")
                    if ref is None:
                        continue
                    try:
                        stat = entry.stat()
                    except FileNotFoundError:
                        continue
                    yield BlobInfo(ref=ref, stored_at=stat.st_mtime, size=stat.st_size)

    def delete_if_older(self, ref: str, stored_before: float) -> bool:
        """The blob is renamed aside first and its age checked there: a put that restarted its
        age meanwhile (``os.utime``) is seen and the blob goes back; a put after the rename
        writes a fresh copy. Either way a blob that new messages refer to stays."""
        final = self.path(ref)
        aside = final.with_name(f".{final.name}.{uuid.uuid4().hex}.sweep")
        try:
            os.rename(final, aside)
        except FileNotFoundError:
            return False
        try:
            if aside.stat().st_mtime >= stored_before:
                if final.exists():   # a put wrote it again meanwhile: same bytes
                    aside.unlink(missing_ok=True)
                else:
                    os.replace(aside, final)
                return False
        except BaseException:
            with contextlib.suppress(OSError):
                os.replace(aside, final)
            raise
        aside.unlink(missing_ok=True)
        return True

    def remove_scratch(self, older_than_s: float) -> int:
        horizon = time.time() - older_than_s
        removed = 0
        candidates = [*(self.root / "tmp").glob("*.part"), *(self.root / "sha256").glob("*/.*.sweep")]
        for path in candidates:
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < horizon:
                    path.unlink()
                    removed += 1
        return removed

    def claim(self, ref: str, tenant: str, doc_id: str = "") -> None:
        by_tenant, by_blob = claim_keys(ref, tenant)
        keys = [by_tenant, by_blob] + ([document_prefix(tenant, doc_id) + digest_of(ref)] if doc_id else [])
        try:
            for key in keys:
                marker = self.root / key
                marker.parent.mkdir(parents=True, exist_ok=True)
                if key == by_blob:
                    marker.write_text(doc_id)   # the sweep finds the document marker by it
                else:
                    marker.touch()
        except OSError as exc:
            raise BlobStoreUnavailableError(f"cannot record a claim of {ref} under {self.root}: {exc}") from exc

    def _release(self, ref: str, tenant: str) -> int:
        """Drop `tenant`'s claim of `ref`, then the blob when nobody else claims it (1 if deleted)."""
        by_tenant, by_blob = claim_keys(ref, tenant)
        (self.root / by_blob).unlink(missing_ok=True)
        claimants = (self.root / by_blob).parent
        deleted = 0
        if not any(claimants.iterdir()) if claimants.is_dir() else True:
            with contextlib.suppress(OSError):
                claimants.rmdir()
            try:
                self.path(ref).unlink()
                deleted = 1
            except FileNotFoundError:
                pass
        (self.root / by_tenant).unlink(missing_ok=True)
        return deleted

    def erase_tenant(self, tenant: str) -> int:
        owned = self.root / owner_prefix(tenant)
        deleted = 0
        for marker in sorted(owned.glob("*")) if owned.is_dir() else []:
            ref = REF_PREFIX + marker.name
            if is_blob_ref(ref):
                deleted += self._release(ref, tenant)
        with contextlib.suppress(OSError):
            owned.rmdir()
        shutil.rmtree(self.root / document_keys(tenant), ignore_errors=True)
        return deleted

    def erase_document(self, tenant: str, doc_id: str) -> int:
        folder = self.root / document_prefix(tenant, doc_id)
        digests = {m.name for m in folder.glob("*")} if folder.is_dir() else set()
        owned = self.root / owner_prefix(tenant)
        if is_blob_ref(REF_PREFIX + doc_id.ljust(64, "0")) and owned.is_dir():   # a hex id: its submitted file
            digests |= {m.name for m in owned.glob(doc_id + "*")}
        deleted = 0
        for digest in sorted(digests):
            ref = REF_PREFIX + digest
            if is_blob_ref(ref):
                deleted += self._release(ref, tenant)
            (folder / digest).unlink(missing_ok=True)
        for empty in (folder, folder.parent, owned):
            with contextlib.suppress(OSError):
                empty.rmdir()
        return deleted

    def drop_claims(self, ref: str) -> int:
        claimants = self.root / claims_prefix(ref)
        removed = 0
        for marker in sorted(claimants.glob("*")) if claimants.is_dir() else []:
            tenant = marker.name
            with contextlib.suppress(OSError):
                doc_id = marker.read_text()
                if doc_id:
                    removed += _unlink(self.root / (document_prefix(tenant, doc_id) + digest_of(ref)))
            removed += _unlink(self.root / (owner_prefix(tenant) + digest_of(ref)))
            removed += _unlink(marker)
        with contextlib.suppress(OSError):
            claimants.rmdir()
        return removed

    @contextlib.contextmanager
    def local_file(self, ref: str, *, name: str) -> Iterator[Path]:
        source = self.path(ref)
        if not source.is_file():
            raise BlobNotFoundError(f"blob {ref} is not in {self.root}")
        with scratch_file(name) as link:
            try:
                link.symlink_to(source.resolve())
            except OSError:  # no symlinks on this filesystem
                shutil.copyfile(source, link)
            yield link
