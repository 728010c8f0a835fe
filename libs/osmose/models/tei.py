"""Text Embeddings Inference (TEI): its HTTP API and an ``Embeddings`` backend over it.

Routes: ``POST /embed`` (``{"inputs": [...], "normalize": true, "truncate": true}`` ->
one vector per input), ``GET /info`` (the model and the server's limits:
``max_client_batch_size`` per request, ``max_batch_tokens`` per forward pass),
``GET /health``. Plain HTTP through the endpoint's pooled httpx client (see
:mod:`osmose.models.http` for why not huggingface-hub's client).

:class:`TeiEmbeddings` packs texts into requests sized from ``/info`` (at most
``max_client_batch_size`` texts and about ``max_batch_tokens`` tokens each) and
keeps the endpoint's ``concurrency`` requests out; the texts of several documents
share a request when they queue behind busy slots (:mod:`osmose.models.tei_packing`).
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
from osmose.models.tei_packing import EmbedRequest, RequestPacker
from osmose.models.usage import UsageRecorder
from osmose.telemetry import models as telemetry
from osmose.telemetry.tracing import model_span
from osmose.text.budget import approx_tokens

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
        # Texts of every document of the process, packed into requests (osmose.models.tei_packing).
        self._packer = RequestPacker(self._send, slots=config.concurrency, server_queue=self._server_queue)

    def _server_queue(self) -> int:
        load = self.backend.server_load()
        return load.waiting if load is not None else 0

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
        # Over-estimated tokens, so a request stays under the server's max_batch_tokens.
        costs = [approx_tokens(t) for t in texts]
        parts = await self._packer.embed(texts, costs, usage=usage.task(TASK), budget=budget,
                                         call_order=current_call_order(),
                                         max_items=max(1, info.max_client_batch_size),
                                         max_tokens=max(1, info.max_batch_tokens))
        out = np.zeros((len(texts), self.dim), np.float32)
        for indexes, vectors in parts:
            out[indexes] = vectors
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    async def _send(self, request: EmbedRequest) -> np.ndarray:
        """One ``/embed`` request (texts of one or several documents) with the backend's retries."""
        name = self.backend.name
        with model_span(operation="embeddings", model=self.backend.config.model, endpoint=name, task=TASK,
                        server=self.backend.config.url) as span:
            vectors = await self.backend.call(lambda http, _t: tei_embed(http, request.texts, endpoint=name),
                                              task=TASK, usage=request.usage, budget=request.budget,
                                              tokens=request.tokens, priority=request.priority, order=request.order)
            span.set_attribute("gen_ai.usage.input_tokens", request.tokens)
        telemetry.observe_tokens(operation="embeddings", task=TASK, input_tokens=request.tokens, output_tokens=0)
        if vectors.shape[1] != self.dim:
            raise ConfigurationError(
                f"TEI endpoint {name} returns {vectors.shape[1]}-dimensional vectors but the router "
                f"config says dim: {self.dim} (the vector index is built for that size)")
        return vectors
