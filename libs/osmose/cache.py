"""Content-addressed cache: bytes stored under a key derived from what produced them.

Used for embeddings now and for every model call later (key = hash of model id +
normalised input + parameters). On disk in SQLite by default; a Redis
implementation can sit behind the same interface for clusters.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from osmose.errors import ConfigurationError

__all__ = ["ContentCache", "SqliteCache", "cache_key", "scope_prefix", "scoped_key"]


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


class ContentCache(Protocol):
    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]: ...

    def put_many(self, items: Mapping[str, bytes]) -> None: ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every entry whose key starts with `prefix`; the number removed."""
        ...

    def close(self) -> None: ...


class SqliteCache:
    """A SQLite file of (key, value) rows; safe to share between threads of one process
    and between processes (SQLite's own locking, WAL mode)."""

    _BATCH = 500  # keys per SELECT (SQLite's host-parameter limit is far above)

    def __init__(self, path: Path, *, namespace: str = "default") -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._table = f"cache_{namespace}"
            if not self._table.replace("_", "").isalnum():
                raise ConfigurationError(f"invalid cache namespace {namespace!r}")
            self._conn.execute(f"CREATE TABLE IF NOT EXISTS {self._table} (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            self._conn.commit()
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open cache at {path}: {exc}") from exc
        self._lock = threading.Lock()

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, bytes] = {}
        with self._lock:
            for start in range(0, len(keys), self._BATCH):
                part = keys[start:start + self._BATCH]
                marks = ",".join("?" * len(part))
                rows = self._conn.execute(f"SELECT key, value FROM {self._table} WHERE key IN ({marks})", part)
                found.update(rows.fetchall())
        return found

    def put_many(self, items: Mapping[str, bytes]) -> None:
        if not items:
            return
        with self._lock:
            self._conn.executemany(f"INSERT OR REPLACE INTO {self._table} (key, value) VALUES (?, ?)",
                                   list(items.items()))
            self._conn.commit()

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            cursor = self._conn.execute(f"DELETE FROM {self._table} WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))
            self._conn.commit()
            return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()
