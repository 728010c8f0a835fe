"""A :class:`~osmose.cache.ContentCache` in Redis, for processes that share one cache (a cluster).

Keys are ``<prefix>:<namespace>:<content key>``; values are the raw bytes. Reads
are one ``MGET`` per call, writes one pipelined ``SET`` batch with a TTL
(OSMOSE_CACHE_TTL_DAYS through :func:`osmose.models.cache.open_content_cache`;
content-addressed entries never go stale, the TTL bounds growth: size Redis with
``maxmemory`` and an LRU policy as well). Connection errors become
:class:`~osmose.errors.BackendUnavailableError` (retryable) and, at start,
:class:`~osmose.errors.ConfigurationError` for a malformed URL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import redis

from osmose.errors import BackendUnavailableError, ConfigurationError

__all__ = ["RedisCache"]

PREFIX = "osmose"
_BATCH = 500


class RedisCache:
    def __init__(self, url: str, *, namespace: str = "default", ttl_seconds: int | None = None) -> None:
        try:
            self._client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10,
                                                health_check_interval=30)
        except ValueError as exc:
            raise ConfigurationError(f"invalid cache URL: {exc}") from exc
        self._prefix = f"{PREFIX}:{namespace}:"
        self._ttl = ttl_seconds

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, bytes] = {}
        try:
            for start in range(0, len(keys), _BATCH):
                part = keys[start:start + _BATCH]
                values = self._client.mget([self._prefix + k for k in part])
                found.update({k: v for k, v in zip(part, values, strict=True) if isinstance(v, bytes)})   # None: absent
        except redis.RedisError as exc:
            raise BackendUnavailableError(f"cache (Redis) unavailable: {exc}") from exc
        return found

    def put_many(self, items: Mapping[str, bytes]) -> None:
        if not items:
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for key, value in items.items():
                pipe.set(self._prefix + key, value, ex=self._ttl)
            pipe.execute()
        except redis.RedisError as exc:
            raise BackendUnavailableError(f"cache (Redis) unavailable: {exc}") from exc

    def delete_prefix(self, prefix: str) -> int:
        removed = 0
        try:
            batch: list[bytes] = []
            for key in self._client.scan_iter(match=self._prefix + prefix + "*", count=500):
                batch.append(key)
                if len(batch) >= _BATCH:
                    removed += int(self._client.delete(*batch))
                    batch = []
            if batch:
                removed += int(self._client.delete(*batch))
        except redis.RedisError as exc:
            raise BackendUnavailableError(f"cache (Redis) unavailable: {exc}") from exc
        return removed

    def keys_with_prefix(self, prefix: str) -> list[str]:
        try:
            return [key.decode()[len(self._prefix):]
                    for key in self._client.scan_iter(match=self._prefix + prefix + "*", count=500)]
        except redis.RedisError as exc:
            raise BackendUnavailableError(f"cache (Redis) unavailable: {exc}") from exc

    def delete_keys(self, keys: Iterable[str]) -> int:
        keys = list(dict.fromkeys(keys))
        removed = 0
        try:
            for start in range(0, len(keys), _BATCH):
                removed += int(self._client.delete(*(self._prefix + k for k in keys[start:start + _BATCH])))
        except redis.RedisError as exc:
            raise BackendUnavailableError(f"cache (Redis) unavailable: {exc}") from exc
        return removed

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self._client.close()
