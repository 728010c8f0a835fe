from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from osmose.cache import SqliteCache
from osmose.embeddings.cached import CachedEmbeddings
from osmose.embeddings.minilm import MiniLMEmbeddings

pytestmark = pytest.mark.anyio


class CountingModel:
    """The real local model, counting how many texts reach it."""

    def __init__(self) -> None:
        self.inner = MiniLMEmbeddings()
        self.model_id, self.dim = self.inner.model_id, self.inner.dim
        self.seen: list[str] = []

    async def embed(self, texts):
        self.seen.extend(texts)
        return await self.inner.embed(texts)


async def test_nothing_is_embedded_twice_even_across_processes(tmp_path: Path) -> None:
    model = CountingModel()
    path = tmp_path / "cache.sqlite"
    first = await CachedEmbeddings(model, SqliteCache(path)).embed_texts(["alpha", "beta", "alpha"])
    assert (first.computed, first.cache_hits) == (2, 0)
    assert model.seen == ["alpha", "beta"]
    np.testing.assert_allclose(first.vectors[0], first.vectors[2])

    # a new cache object on the same file = a new process
    again = await CachedEmbeddings(model, SqliteCache(path)).embed_texts(["beta", "alpha", "gamma"])
    assert (again.computed, again.cache_hits) == (1, 2)
    assert model.seen == ["alpha", "beta", "gamma"]
    np.testing.assert_allclose(again.vectors[1], first.vectors[0], atol=1e-7)
