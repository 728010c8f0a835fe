"""Embeddings through a content-addressed cache, so no text is embedded twice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from osmose.cache import (
    ContentCache,
    cache_key,
    erase_document_entries,
    scope_prefix,
    scoped_key,
    usage_marks,
)
from osmose.embeddings.base import Embeddings, EmbedResult

__all__ = ["CachedEmbeddings"]


class CachedEmbeddings:
    """Wraps an :class:`Embeddings` backend; also usable as one (``embed``)."""

    def __init__(self, backend: Embeddings, cache: ContentCache) -> None:
        self.backend = backend
        self.cache = cache
        self.model_id = backend.model_id
        self.dim = backend.dim
        #: cache key -> the vector of a text being embedded now (None if that call failed)
        self._in_flight: dict[str, asyncio.Future[np.ndarray | None]] = {}

    def _key(self, text: str, scope: str) -> str:
        return scoped_key(scope, "embedding", self.model_id, text) if scope else cache_key(
            "embedding", self.model_id, text)

    async def embed_texts(self, texts: Sequence[str], *, scope: str = "") -> EmbedResult:
        """Vectors for `texts` in order; duplicates and texts cached in `scope` (the tenant) are not
        recomputed. Tenants never share entries: a hit must not tell one what another ingested."""
        unique = list(dict.fromkeys(texts))
        keys = {t: self._key(t, scope) for t in unique}
        cached = self.cache.get_many(keys.values())
        vectors: dict[str, np.ndarray] = {}
        for text, key in keys.items():
            blob = cached.get(key)
            if blob is not None and len(blob) == 4 * self.dim:
                vectors[text] = np.frombuffer(blob, dtype=np.float32)
        missing = [t for t in unique if t not in vectors]
        marks = usage_marks(keys.values())   # erasing the current document removes these entries
        # Texts another call of this process is embedding right now (a look-ahead and the real
        # message of one document, two documents sharing slides): wait for its vectors, not a second call.
        joined = {t: self._in_flight[keys[t]] for t in missing if keys[t] in self._in_flight}
        first = [t for t in missing if t not in joined]
        computed = await self._compute(first, keys, vectors, marks)
        for text, future in joined.items():
            vector = await asyncio.shield(future)
            if vector is not None:
                vectors[text] = vector
        computed += await self._compute([t for t in joined if t not in vectors], keys, vectors, {})
        if marks and not first:
            self.cache.put_many(marks)
        out = np.stack([vectors[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        return EmbedResult(vectors=out, computed=computed, cache_hits=len(unique) - computed)

    async def _compute(self, texts: list[str], keys: dict[str, str], vectors: dict[str, np.ndarray],
                       marks: dict[str, bytes]) -> int:
        """Embeds `texts` (announced as in flight meanwhile), caches them with `marks`, fills `vectors`."""
        if not texts:
            return 0
        loop = asyncio.get_running_loop()
        mine = {t: loop.create_future() for t in texts}
        for text, future in mine.items():
            self._in_flight[keys[text]] = future
        try:
            computed = await self.backend.embed(texts)
            self.cache.put_many({**{keys[t]: computed[i].astype(np.float32).tobytes() for i, t in enumerate(texts)},
                                 **marks})
            for i, text in enumerate(texts):
                vectors[text] = computed[i]
                mine[text].set_result(computed[i])
        finally:
            for text, future in mine.items():
                if self._in_flight.get(keys[text]) is future:
                    del self._in_flight[keys[text]]
                if not future.done():   # failed: whoever waited embeds it itself
                    future.set_result(None)
        return len(texts)

    async def embed(self, texts: Sequence[str], *, scope: str = "") -> np.ndarray:
        return (await self.embed_texts(texts, scope=scope)).vectors

    def erase(self, scope: str) -> int:
        """Forget every vector cached for `scope` (a tenant's erasure); the number removed."""
        return self.cache.delete_prefix(scope_prefix(scope))

    def erase_document(self, scope: str, doc_id: str) -> int:
        """Forget the vectors document `doc_id` of `scope` used (see :mod:`osmose.cache`)."""
        return erase_document_entries(self.cache, scope, doc_id)
