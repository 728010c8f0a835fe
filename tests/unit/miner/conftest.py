"""A small real embedding function for miner tests: hashed character trigrams.

Not a mock of results: similar spellings really get close vectors ("threat
modeling"/"threat modelling" > 0.9) and unrelated names really get distant ones,
so merge and similarity logic is tested on genuine geometry. The real model has
its own test (test_miner_minilm.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from osmose.v1 import document_pb2 as pb


class TrigramEmbeddings:
    model_id = "test/char-trigram-hash-512"
    dim = 512

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        padded = f"  {text.casefold()}  "
        for i in range(len(padded) - 2):
            digest = hashlib.blake2b(padded[i : i + 3].encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dim
            vec[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm else vec

    async def embed(self, texts: Sequence[str], *, scope: str = "") -> np.ndarray:
        self.calls.append(list(texts))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.vector(t) for t in texts])


def concept(
    name: str,
    type_: int = pb.CONCEPT_TYPE_TOPIC,
    *,
    mentions: dict[int, int] | None = None,
    segments: Sequence[str] = ("seg-0",),
    score: float = 1.0,
    aliases: Sequence[str] = (),
    methods: Sequence[str] = ("keyphrase",),
) -> pb.Concept:
    return pb.Concept(
        name=name, type=type_, aliases=list(aliases), methods=list(methods), score=score,
        segment_ids=list(segments),
        mentions=[pb.Mention(slide=s, count=n) for s, n in sorted((mentions or {1: 1}).items())],
    )


@pytest.fixture
def embeddings() -> TrigramEmbeddings:
    return TrigramEmbeddings()


@pytest.fixture
def make_concept() -> Callable[..., pb.Concept]:
    return concept
