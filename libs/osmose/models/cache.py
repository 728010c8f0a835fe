"""The model-call cache: answers stored under a hash of what produced them.

Key = sha256 of (kind, model id, parameters, normalised input, images by
digest); see :func:`osmose.models.openai_chat.key_material`. Values are JSON.
Everything a model returns goes through here, so a replay of a document (after
a crash, a redelivery, a re-ingest) makes no model call, and a new version of a
deck pays only for what changed. Backed by any :class:`~osmose.cache.ContentCache`:
SQLite in the data directory by default, Redis when ``OSMOSE_CACHE_URL`` is
``redis://...`` (:func:`open_content_cache` decides).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from osmose.cache import DEFAULT_MAX_ENTRIES, DEFAULT_TTL_S, ContentCache, SqliteCache, cache_key, usage_marks
from osmose.errors import ConfigurationError, OsmoseError

__all__ = ["ModelCache", "open_content_cache"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: threads of a ModelCache's own executor
CACHE_THREADS = 4


def open_content_cache(*, cache_url: str | None, sqlite_path: Path, namespace: str, ttl_s: float = DEFAULT_TTL_S,
                       max_entries: int = DEFAULT_MAX_ENTRIES) -> ContentCache:
    """Redis when `cache_url` is ``redis://``/``rediss://``/``unix://``, else SQLite at `sqlite_path`;
    entries expire `ttl_s` after they are written (a SQLite cache also keeps at most `max_entries`)."""
    if cache_url:
        if not cache_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(  # the URL may carry a password: name its scheme only
                f"OSMOSE_CACHE_URL must be redis://, rediss:// or unix://, got {cache_url.partition('://')[0]}://…")
        from osmose.models.redis_cache import RedisCache

        return RedisCache(cache_url, namespace=namespace, ttl_seconds=max(1, int(ttl_s)))
    return SqliteCache(sqlite_path, namespace=namespace, ttl_s=ttl_s, max_entries=max_entries)


class ModelCache:
    """JSON values over a content cache, with hit/miss counters. Lookups run in the cache's
    own worker threads, so a Redis round trip never blocks the event loop and a lookup never
    queues behind other off-loop work (parsing waits, chunking) in the loop's default
    executor: a document's calls start as soon as its cache misses are known. A cache that
    fails is logged and treated as a miss: the model is asked instead."""

    def __init__(self, store: ContentCache) -> None:
        self.store = store
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self._executor: ThreadPoolExecutor | None = None

    @staticmethod
    def key(*parts: str) -> str:
        return cache_key(*parts)

    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=CACHE_THREADS, thread_name_prefix="osmose-model-cache")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def get(self, key: str) -> Any | None:
        try:
            found = await self._off_loop(self.store.get_many, [key])
        except (OsmoseError, sqlite3.Error) as exc:
            self.errors += 1
            logger.warning("model cache read failed: %s", exc)
            found = {}
        blob = found.get(key)
        if blob is None:
            self.misses += 1
            return None
        try:
            value = json.loads(blob)
        except ValueError:
            self.misses += 1
            return None
        self.hits += 1
        marks = usage_marks([key])   # the document erasing removes this answer too
        if marks:
            try:
                await self._off_loop(self.store.put_many, marks)
            except (OsmoseError, sqlite3.Error) as exc:
                self.errors += 1
                logger.warning("model cache write failed: %s", exc)
        return value

    async def put(self, key: str, value: Any) -> None:
        blob = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            await self._off_loop(self.store.put_many, {key: blob, **usage_marks([key])})
        except (OsmoseError, sqlite3.Error) as exc:
            self.errors += 1
            logger.warning("model cache write failed: %s", exc)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.store.close()
