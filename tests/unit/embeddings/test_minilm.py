"""The local embedder must reproduce sentence-transformers' all-MiniLM-L6-v2 vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from osmose.embeddings.minilm import MiniLMEmbeddings

pytestmark = pytest.mark.anyio

REFERENCE = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "minilm-l6-v2-embeddings.json"


@pytest.fixture(scope="module")
def model() -> MiniLMEmbeddings:
    return MiniLMEmbeddings()


@pytest.mark.skipif(not REFERENCE.exists(), reason=f"reference vectors not found at {REFERENCE}")
def test_matches_sentence_transformers_reference(model: MiniLMEmbeddings) -> None:
    items = json.loads(REFERENCE.read_text())["items"]
    assert len(items) >= 10
    texts = [item["text"] for item in items]
    vectors = model.embed_sync(texts)
    for item, vector in zip(items, vectors, strict=True):
        ref = np.asarray(item["embedding"], dtype=np.float32)
        cosine = float(vector @ ref / np.linalg.norm(ref))
        assert cosine >= 0.999, f"cosine {cosine:.6f} for {item['text']!r}"


@pytest.mark.skipif(not REFERENCE.exists(), reason=f"reference vectors not found at {REFERENCE}")
def test_token_counts_match_reference(model: MiniLMEmbeddings) -> None:
    items = json.loads(REFERENCE.read_text())["items"]
    counts = model.count_tokens([item["text"] for item in items])
    assert counts == [min(item["token_count"], 10**6) for item in items]


def test_order_and_batching_do_not_change_vectors(model: MiniLMEmbeddings) -> None:
    texts = ["short", "a considerably longer sentence about knowledge graphs and vector search", "mid length text"]
    alone = np.stack([model.embed_sync([t])[0] for t in texts])
    together = model.embed_sync(texts)
    np.testing.assert_allclose(alone, together, atol=1e-5)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_similar_texts_are_closer_than_unrelated(model: MiniLMEmbeddings) -> None:
    a, b, c = model.embed_sync(["How to bake sourdough bread", "A recipe for sourdough loaves",
                                "Kubernetes pod autoscaling on queue depth"])
    assert a @ b > a @ c + 0.3


async def test_long_text_is_truncated_not_rejected(model: MiniLMEmbeddings) -> None:
    text = "word " * 2000
    assert model.count_tokens([text])[0] > 256
    vec = await model.embed([text])
    assert vec.shape == (1, 384)


def test_empty_input(model: MiniLMEmbeddings) -> None:
    assert model.embed_sync([]).shape == (0, 384)
