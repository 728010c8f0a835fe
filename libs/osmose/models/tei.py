"""Text Embeddings Inference (TEI): its HTTP API and an ``Embeddings`` backend over it.

Routes: ``POST /embed`` (``{"inputs": [...], "normalize": true, "truncate": true}`` ->
one vector per input), ``GET /info`` (the model and the server's limits:
``max_client_batch_size`` per request, ``max_batch_tokens`` per forward pass),
``GET /health``. Plain HTTP through the endpoint's pooled httpx client (see
:mod:`osmose.models.http` for why not huggingface-hub's client).

:class:`TeiEmbeddings` cuts the texts into requests sized from ``/info`` (at
most ``max_client_batch_size`` texts and about ``max_batch_tokens`` tokens
each) and sends them all at once; the backend's concurrency limit decides how
many are really in flight, so TEI's dynamic batching always has work queued.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import numpy as np

from osmose.errors import ConfigurationError
from osmose.models.backend import Backend
from osmose.models.context import current_accounting, current_call_order
from osmose.models.exceptions import ModelServerError
from osmose.models.http import raise_for_response
from osmose.models.retry import RetryBudget
from osmose.models.usage import UsageRecorder
from osmose.telemetry import models as telemetry
from osmose.telemetry.tracing import model_span
from osmose.text.budget import approx_tokens, pack_greedy

__all__ = ["TeiEmbeddings", "TeiInfo", "tei_embed", "tei_health", "tei_info"]

logger = logging.getLogger(__name__)

TASK = "embedding"
# Used when /info does not say (older TEI versions).
DEFAULT_CLIENT_BATCH = 32
DEFAULT_BATCH_TOKENS = 16_384


@dataclass(frozen=True)
class TeiInfo:
    model_id: str
    max_client_batch_size: int
    max_batch_tokens: int
    max_input_length: int
    max_concurrent_requests: int


async def tei_info(http: httpx.AsyncClient, *, endpoint: str) -> TeiInfo:
    response = await http.get("/info")
    raise_for_response(response, endpoint=endpoint)
    try:
        data = response.json()
        return TeiInfo(
            model_id=str(data.get("model_id", "")),
            max_client_batch_size=int(data.get("max_client_batch_size") or DEFAULT_CLIENT_BATCH),
            max_batch_tokens=int(data.get("max_batch_tokens") or DEFAULT_BATCH_TOKENS),
            max_input_length=int(data.get("max_input_length") or 512),
            max_concurrent_requests=int(data.get("max_concurrent_requests") or 512),
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ModelServerError(f"{endpoint}: malformed /info body: {exc}", endpoint=endpoint) from None


async def tei_embed(http: httpx.AsyncClient, texts: Sequence[str], *, endpoint: str) -> np.ndarray:
    response = await http.post("/embed", json={"inputs": list(texts), "normalize": True, "truncate": True})
    raise_for_response(response, endpoint=endpoint)
    try:
        vectors = np.asarray(response.json(), dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise ModelServerError(f"{endpoint}: malformed /embed body: {exc}", endpoint=endpoint) from None
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise ModelServerError(f"{endpoint}: /embed returned shape {vectors.shape} for {len(texts)} inputs",
                               endpoint=endpoint)
    return vectors


async def tei_health(http: httpx.AsyncClient) -> bool:
    try:
        response = await http.get("/health")
    except httpx.HTTPError:
        return False
    return response.status_code == 200


class TeiEmbeddings:
    """The :class:`~osmose.embeddings.base.Embeddings` interface over a TEI endpoint."""

    #: calls leave the process: stages count them as model calls
    remote = True

    def __init__(self, backend: Backend, *, retry_budget: int) -> None:
        config = backend.config
        self.backend = backend
        self.model_id = f"tei:{config.model}"
        self.dim = config.dim
        self._retry_budget = retry_budget
        self._info: TeiInfo | None = None
        self._info_lock: asyncio.Lock | None = None

    async def info(self) -> TeiInfo:
        """The server's limits (``/info``), asked once."""
        if self._info is None:
            if self._info_lock is None:
                self._info_lock = asyncio.Lock()
            async with self._info_lock:
                if self._info is None:
                    usage, budget = self._accounting()
                    name = self.backend.name
                    self._info = await self.backend.call(lambda http, _t: tei_info(http, endpoint=name),
                                                         task="tei_info", usage=UsageRecorder().task("info"),
                                                         budget=budget)
                    logger.info("TEI %s serves %s: %d texts / %d tokens per request", name,
                                self._info.model_id, self._info.max_client_batch_size, self._info.max_batch_tokens)
        return self._info

    def _accounting(self) -> tuple[UsageRecorder, RetryBudget]:
        bound = current_accounting()
        if bound is not None:
            return bound.usage, bound.budget
        return UsageRecorder(), RetryBudget(self._retry_budget)

    async def embed(self, texts: Sequence[str], *, scope: str = "") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        info = await self.info()
        usage, budget = self._accounting()
        task_usage = usage.task(TASK)
        # Over-estimated tokens, so a request stays under the server's max_batch_tokens.
        costs = [approx_tokens(t) for t in texts]
        batches = pack_greedy(range(len(texts)), size=costs.__getitem__,
                              max_items=max(1, info.max_client_batch_size), max_size=max(1, info.max_batch_tokens))
        name = self.backend.name
        call_order = current_call_order()

        async def one(indexes: list[int]) -> np.ndarray:
            part = [texts[i] for i in indexes]
            tokens = sum(costs[i] for i in indexes)
            try:
                with model_span(operation="embeddings", model=self.backend.config.model, endpoint=name, task=TASK,
                                server=self.backend.config.url) as span:
                    vectors = await self.backend.call(lambda http, _t: tei_embed(http, part, endpoint=name),
                                                      task=TASK, usage=task_usage, budget=budget, tokens=tokens,
                                                      priority=call_order.priority, order=call_order.order)
                    span.set_attribute("gen_ai.usage.input_tokens", tokens)
            except Exception:
                task_usage.failures += 1
                raise
            task_usage.prompt_tokens += tokens
            telemetry.observe_tokens(operation="embeddings", task=TASK, input_tokens=tokens, output_tokens=0)
            return vectors

        results = await asyncio.gather(*(one(b) for b in batches))
        out = np.zeros((len(texts), self.dim), np.float32)
        for indexes, vectors in zip(batches, results, strict=True):
            if vectors.shape[1] != self.dim:
                raise ConfigurationError(
                    f"TEI endpoint {name} returns {vectors.shape[1]}-dimensional vectors but the router "
                    f"config says dim: {self.dim} (the vector index is built for that size)")
            out[indexes] = vectors
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)
