"""The claim-check store as a folder every process of a deployment can read (one machine,
or a shared volume)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from osmose.bus.blobs.protocol import REF_PREFIX, blob_key, digest_of, is_blob_ref, scratch_file
from osmose.bus.exceptions import BlobNotFoundError, BlobStoreUnavailableError

__all__ = ["LocalBlobStore"]


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
        except OSError as exc:
            self.abort()
            raise BlobStoreUnavailableError(f"cannot write a blob under {self._store.root}: {exc}") from exc
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
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise BlobStoreUnavailableError(f"cannot store blob {ref} under {self.root}: {exc}") from exc
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
        with scratch_file(name) as link:
            try:
                link.symlink_to(source.resolve())
            except OSError:  # no symlinks on this filesystem
                shutil.copyfile(source, link)
            yield link
