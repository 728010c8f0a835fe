"""The embeddings interface every backend implements (local model, TEI)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["EmbedResult", "Embeddings"]


class Embeddings(Protocol):
    #: identifies the model and its parameters; part of every cache key
    model_id: str
    #: vector size
    dim: int

    async def embed(self, texts: Sequence[str], *, scope: str = "") -> np.ndarray:
        """L2-normalised float32 vectors, shape (len(texts), dim), in input order. `scope` is
        the tenant the texts belong to: a caching wrapper keeps each tenant's entries apart;
        a model itself ignores it."""
        ...


@dataclass(frozen=True)
class EmbedResult:
    vectors: np.ndarray
    #: texts actually run through the model (cache misses)
    computed: int
    cache_hits: int
