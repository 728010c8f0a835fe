"""Embeddings through a content-addressed cache, so no text is embedded twice."""

from __future__ import annotations

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
        if missing:
            computed = await self.backend.embed(missing)
            self.cache.put_many({**{keys[t]: computed[i].astype(np.float32).tobytes() for i, t in enumerate(missing)},
                                 **marks})
            for i, text in enumerate(missing):
                vectors[text] = computed[i]
        elif marks:
            self.cache.put_many(marks)
        out = np.stack([vectors[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        return EmbedResult(vectors=out, computed=len(missing), cache_hits=len(unique) - len(missing))

    async def embed(self, texts: Sequence[str], *, scope: str = "") -> np.ndarray:
        return (await self.embed_texts(texts, scope=scope)).vectors

    def erase(self, scope: str) -> int:
        """Forget every vector cached for `scope` (a tenant's erasure); the number removed."""
        return self.cache.delete_prefix(scope_prefix(scope))

    def erase_document(self, scope: str, doc_id: str) -> int:
        """Forget the vectors document `doc_id` of `scope` used (see :mod:`osmose.cache`)."""
        return erase_document_entries(self.cache, scope, doc_id)
