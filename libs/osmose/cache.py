"""Content-addressed cache: bytes stored under a key derived from what produced them.

Used for embeddings now and for every model call later (key = hash of model id +
normalised input + parameters). On disk in SQLite by default; a Redis
implementation can sit behind the same interface for clusters.

Bounded: an entry lives `ttl_s` after it was written (older ones read as misses and are
pruned; Redis keys expire) and a SQLite cache keeps at most `max_entries` rows (the
oldest written go first). A pruned entry only costs its recomputation.

Erasure of one document: while a host runs a stage on a document (:func:`document_scope`),
every tenant-scoped key the caches read or write for it is also recorded under the document
(:func:`usage_marks`, empty entries ``<tenant prefix>~d<digest of the document id>:<key>``).
:func:`erase_document_entries` deletes the entries those marks name, whichever document of
the tenant wrote them first, so after a document is erased no cache hit of its tenant comes
from its content (another document of the tenant with the same text pays the recomputation).
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Protocol

from osmose.errors import ConfigurationError

__all__ = ["DEFAULT_MAX_ENTRIES", "DEFAULT_TTL_S", "ContentCache", "SqliteCache", "cache_key", "document_prefix",
           "document_scope", "erase_document_entries", "scope_prefix", "scoped_key", "usage_marks"]

#: bounds of a content cache (OSMOSE_CACHE_TTL_DAYS, OSMOSE_CACHE_MAX_ENTRIES)
DEFAULT_TTL_S = 30 * 86400.0
DEFAULT_MAX_ENTRIES = 1_000_000


def cache_key(*parts: str) -> str:
    """A stable key for the given parts (order matters)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def scope_prefix(scope: str) -> str:
    """The key prefix of one tenant's entries. Entries are scoped per tenant so no tenant can
    tell from a cache hit (a count, a timing) what another one ingested, and erasing a tenant
    removes its entries by prefix; the prefix is a digest, so keys do not expose the name."""
    return "t" + hashlib.sha256(scope.encode("utf-8")).hexdigest()[:24] + ":"


def scoped_key(scope: str, *parts: str) -> str:
    """:func:`cache_key` of `parts` inside `scope` (a tenant)."""
    return scope_prefix(scope) + cache_key(*parts)


#: the (tenant, document id) a stage is working on in this task, for the caches' usage marks
_DOCUMENT: ContextVar[tuple[str, str] | None] = ContextVar("osmose_cache_document", default=None)


@contextlib.contextmanager
def document_scope(tenant: str, doc_id: str) -> Iterator[None]:
    """Cache keys used meanwhile (in this task and the tasks it starts) are marked as used by
    `doc_id` of `tenant`, so erasing the document can remove them. No-op without both."""
    token = _DOCUMENT.set((tenant, doc_id) if tenant and doc_id else None)
    try:
        yield
    finally:
        _DOCUMENT.reset(token)


def document_prefix(tenant: str, doc_id: str) -> str:
    """The key prefix of the usage marks of one document (inside its tenant's prefix, so erasing
    the tenant removes them too; "~" never starts an entry's key, which is hex)."""
    return scope_prefix(tenant) + "~d" + hashlib.sha256(doc_id.encode("utf-8")).hexdigest()[:24] + ":"


def usage_marks(keys: Iterable[str]) -> dict[str, bytes]:
    """Marks recording that the current document (:func:`document_scope`) used `keys`; only
    keys of its own tenant are marked. Empty outside a document."""
    current = _DOCUMENT.get()
    if current is None:
        return {}
    tenant, doc_id = current
    scope, marks = scope_prefix(tenant), document_prefix(tenant, doc_id)
    return {marks + key[len(scope):]: b"" for key in keys if key.startswith(scope) and "~" not in key}


def erase_document_entries(cache: ContentCache, tenant: str, doc_id: str) -> int:
    """Delete the entries `doc_id` of `tenant` used and its marks; the number of entries removed."""
    prefix = document_prefix(tenant, doc_id)
    marks = cache.keys_with_prefix(prefix)
    scope = scope_prefix(tenant)
    removed = cache.delete_keys([scope + mark[len(prefix):] for mark in marks])
    cache.delete_keys(marks)   # after the entries: a crash in between is finished by erasing again
    return removed


class ContentCache(Protocol):
    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]: ...

    def put_many(self, items: Mapping[str, bytes]) -> None: ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every entry whose key starts with `prefix`; the number removed."""
        ...

    def keys_with_prefix(self, prefix: str) -> list[str]:
        """The keys of the live entries starting with `prefix`."""
        ...

    def delete_keys(self, keys: Iterable[str]) -> int:
        """Remove the entries of `keys` (absent ones are ignored); the number removed."""
        ...

    def close(self) -> None: ...


class SqliteCache:
    """A SQLite file of (key, value, stored_at) rows; safe to share between threads of one
    process and between processes (SQLite's own locking, WAL mode). Expired rows are pruned,
    and the row count trimmed to `max_entries`, every `prune_every` rows written."""

    _BATCH = 500  # keys per SELECT (SQLite's host-parameter limit is far above)

    def __init__(self, path: Path, *, namespace: str = "default", ttl_s: float = DEFAULT_TTL_S,
                 max_entries: int = DEFAULT_MAX_ENTRIES, prune_every: int = 1000,
                 clock: Callable[[], float] = time.time) -> None:
        self.ttl_s, self.max_entries, self.prune_every = ttl_s, max_entries, prune_every
        self._clock = clock
        self._written = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._table = f"cache_{namespace}"
            if not self._table.replace("_", "").isalnum():
                raise ConfigurationError(f"invalid cache namespace {namespace!r}")
            self._conn.execute(f"CREATE TABLE IF NOT EXISTS {self._table} "
                               "(key TEXT PRIMARY KEY, value BLOB NOT NULL, stored_at INTEGER NOT NULL DEFAULT 0)")
            columns = {row[1] for row in self._conn.execute(f"PRAGMA table_info({self._table})")}
            if "stored_at" not in columns:   # a cache written before entries had an age: they start now
                self._conn.execute(f"ALTER TABLE {self._table} ADD COLUMN stored_at INTEGER NOT NULL DEFAULT 0")
                self._conn.execute(f"UPDATE {self._table} SET stored_at = ?", (int(self._clock()),))
            self._conn.execute(f"CREATE INDEX IF NOT EXISTS {self._table}_age ON {self._table} (stored_at)")
            self._conn.commit()
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open cache at {path}: {exc}") from exc
        self._lock = threading.Lock()

    def _horizon(self) -> int:
        return int(self._clock() - self.ttl_s)

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, bytes] = {}
        horizon = self._horizon()
        with self._lock:
            for start in range(0, len(keys), self._BATCH):
                part = keys[start:start + self._BATCH]
                marks = ",".join("?" * len(part))
                rows = self._conn.execute(f"SELECT key, value FROM {self._table} WHERE key IN ({marks}) "
                                          "AND stored_at >= ?", [*part, horizon])
                found.update(rows.fetchall())
        return found

    def put_many(self, items: Mapping[str, bytes]) -> None:
        if not items:
            return
        now = int(self._clock())
        with self._lock:
            self._conn.executemany(f"INSERT OR REPLACE INTO {self._table} (key, value, stored_at) VALUES (?, ?, ?)",
                                   [(key, value, now) for key, value in items.items()])
            self._conn.commit()
            self._written += len(items)
            if self._written >= self.prune_every:
                self._written = 0
                self._prune()

    def prune(self) -> int:
        """Remove expired rows and the oldest beyond `max_entries`; the number removed."""
        with self._lock:
            return self._prune()

    def _prune(self) -> int:
        removed = self._conn.execute(f"DELETE FROM {self._table} WHERE stored_at < ?", (self._horizon(),)).rowcount
        (count,) = self._conn.execute(f"SELECT count(*) FROM {self._table}").fetchone()
        if count > self.max_entries:
            removed += self._conn.execute(
                f"DELETE FROM {self._table} WHERE key IN (SELECT key FROM {self._table} "
                "ORDER BY stored_at, key LIMIT ?)", (count - self.max_entries,)).rowcount
        self._conn.commit()
        return removed

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute(f"SELECT count(*) FROM {self._table}").fetchone()[0])

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            cursor = self._conn.execute(f"DELETE FROM {self._table} WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))
            self._conn.commit()
            return cursor.rowcount

    def keys_with_prefix(self, prefix: str) -> list[str]:
        with self._lock:
            rows = self._conn.execute(f"SELECT key FROM {self._table} WHERE substr(key, 1, ?) = ? AND stored_at >= ?",
                                      (len(prefix), prefix, self._horizon()))
            return [key for (key,) in rows.fetchall()]

    def delete_keys(self, keys: Iterable[str]) -> int:
        keys = list(dict.fromkeys(keys))
        removed = 0
        with self._lock:
            for start in range(0, len(keys), self._BATCH):
                part = keys[start:start + self._BATCH]
                removed += self._conn.execute(f"DELETE FROM {self._table} WHERE key IN ({','.join('?' * len(part))})",
                                              part).rowcount
            self._conn.commit()
        return removed

    def close(self) -> None:
        with self._lock:
            self._conn.close()
