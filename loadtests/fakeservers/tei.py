"""A Text Embeddings Inference (TEI) compatible server.

Routes: ``POST /embed`` (``inputs`` a string or a list, ``normalize``, ``truncate``),
``GET /info`` (model and limits: ``max_client_batch_size``, ``max_batch_tokens``,
``max_input_length``, ``max_concurrent_requests``), ``GET /health``,
``GET /metrics`` (TEI's names: ``te_queue_size``, ``te_request_count``,
``te_request_success``, ``te_request_failure``, ``te_embed_count``,
``te_batch_next_size``, plus ``fakeserver_*`` counters), ``/admin/faults``.
Errors as TEI sends them: 413 for a batch above ``max_client_batch_size`` or an
input above ``max_input_length`` without ``truncate``, 429 beyond
``max_concurrent_requests``.

Vectors are a hashed bag of words and word pairs (signed feature hashing),
L2-normalised: deterministic, and texts sharing words are close, so search over
them behaves sensibly.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import Counter

import numpy as np
from aiohttp import web

from loadtests.fakeservers.capacity import Capacity, LatencyModel
from loadtests.fakeservers.faults import Fault
from loadtests.fakeservers.metrics import render_metrics
from loadtests.fakeservers.runner import BaseServer

__all__ = ["TeiServer", "hashed_embedding"]

_WORD = re.compile(r"\w+", re.UNICODE)


def _tokens(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def hashed_embedding(text: str, dim: int, *, normalize: bool = True) -> np.ndarray:
    vector = np.zeros(dim, np.float32)
    words = _tokens(text)
    features = [(w, 1.0) for w in words] + [(f"{a} {b}", 0.5) for a, b in zip(words, words[1:], strict=False)]
    for feature, weight in features:
        h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
        vector[h % dim] += weight if (h >> 63) & 1 else -weight
    if not features:
        vector[0] = 1.0
    if normalize:
        norm = float(np.linalg.norm(vector))
        vector /= norm if norm > 0 else 1.0
    return vector


class TeiServer(BaseServer):
    kind = "tei"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 model_id: str = "sentence-transformers/all-MiniLM-L6-v2", dim: int = 384,
                 max_client_batch_size: int = 32, max_batch_tokens: int = 16384, max_input_length: int = 512,
                 max_concurrent_requests: int = 512, slots: int = 4, latency: LatencyModel | None = None,
                 faults: list[Fault] | None = None, seed: int = 0, api_key: str = "") -> None:
        super().__init__(host=host, port=port, faults=faults, seed=seed, api_key=api_key)
        self.model_id = model_id
        self.dim = dim
        self.max_client_batch_size = max_client_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_input_length = max_input_length
        self.max_concurrent_requests = max_concurrent_requests
        self.slots = slots
        # An encoder forward pass: no decode, prefill only (tokens/s of a small GPU).
        self.latency = latency or LatencyModel(base_s=0.005, prefill_tps=200_000, decode_tps=1.0)
        self.capacity: Capacity | None = None
        self.requests: Counter[int] = Counter()  # by status
        self.embedded = 0
        self.batch_sizes: list[int] = []
        #: the texts of each answered request, in the order the server admitted them
        self.inputs: list[list[str]] = []
        self.next_batch_size = 0
        self.queued_inputs = 0  # texts of the requests waiting for a slot (te_queue_size)

    def on_start(self) -> None:
        self.capacity = Capacity(self.slots)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/embed", self._embed)
        app.router.add_get("/info", self._info)
        app.router.add_get("/health", self._health)

    @property
    def embed_requests(self) -> int:
        return sum(self.requests.values())

    def reset_counters(self) -> None:
        self.requests.clear()
        self.embedded = 0
        self.batch_sizes.clear()
        self.inputs.clear()
        if self.capacity is not None:
            self.call_in_loop(self.capacity.reset_peaks)

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response({
            "model_id": self.model_id, "model_sha": None, "model_dtype": "float32",
            "model_type": {"embedding": {"pooling": "mean"}},
            "max_concurrent_requests": self.max_concurrent_requests, "max_input_length": self.max_input_length,
            "max_batch_tokens": self.max_batch_tokens, "max_batch_requests": None,
            "max_client_batch_size": self.max_client_batch_size, "auto_truncate": False,
            "tokenization_workers": 1, "version": "1.5.0-fake", "sha": None, "docker_label": None,
        })

    def _error(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> web.Response:
        self.requests[status] += 1
        return web.json_response({"error": message, "error_type": kind}, status=status, headers=headers)

    async def _embed(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return self._error(422, "request body is not JSON", "Validation")
        inputs = body.get("inputs")
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return self._error(422, "`inputs` must be a string or a non-empty list of strings", "Validation")
        if len(texts) > self.max_client_batch_size:
            return self._error(413, f"batch size {len(texts)} > maximum allowed batch size "
                                    f"{self.max_client_batch_size}", "Validation")
        lengths = [len(_tokens(t)) + 2 for t in texts]
        if not body.get("truncate", False) and max(lengths) > self.max_input_length:
            return self._error(413, f"Input validation error: `inputs` must have less than {self.max_input_length} "
                                    f"tokens. Given: {max(lengths)}", "Validation")
        assert self.capacity is not None
        if self.capacity.running + self.capacity.waiting >= self.max_concurrent_requests:
            return self._error(429, "Model is overloaded", "Overloaded")
        fault = self.faults.pick("embed")
        if fault is not None and fault.kind != "slow":
            return await self._fault_response(request, fault)
        tokens = sum(min(n, self.max_input_length) for n in lengths)
        slow = fault.factor if fault is not None else 1.0
        self.next_batch_size = len(texts)
        self.queued_inputs += len(texts)  # TEI queues each input, not each request
        admitted = False
        try:
            async with self.capacity.admit():
                admitted = True
                self.queued_inputs -= len(texts)
                await asyncio.sleep(self.latency.seconds(prompt_tokens=tokens, output_tokens=0) * slow)
        finally:
            if not admitted:
                self.queued_inputs -= len(texts)
        vectors = [hashed_embedding(t, self.dim, normalize=body.get("normalize", True)).tolist() for t in texts]
        self.requests[200] += 1
        self.embedded += len(texts)
        self.batch_sizes.append(len(texts))
        self.inputs.append(list(texts))
        return web.json_response(vectors)

    async def _fault_response(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
        if fault.kind == "429":
            return self._error(429, "Model is overloaded (injected)", "Overloaded", headers)
        if fault.kind in ("500", "503"):
            return self._error(int(fault.kind), "Backend error (injected)", "Backend",
                               headers if fault.kind == "503" else None)
        if fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
            return self._error(504, "gave up after hanging (injected)", "Backend")
        if fault.kind == "malformed":
            self.requests[200] += 1
            return web.Response(text="[[0.1, 0.2", content_type="application/json")
        self.requests[0] += 1  # drop
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=500)

    def metrics_text(self) -> str:
        cap = self.capacity
        failures = {str(k): n for k, n in self.requests.items() if k != 200}
        return render_metrics([
            ("te_request_count", "counter", "Requests received.", [({"method": "batch"}, self.embed_requests)]),
            ("te_request_success", "counter", "Successful requests.", [({"method": "batch"}, self.requests[200])]),
            ("te_request_failure", "counter", "Failed requests.",
             [({"err": k}, n) for k, n in sorted(failures.items())]),
            ("te_embed_count", "counter", "Texts embedded.", [({}, self.embedded)]),
            ("te_queue_size", "gauge", "Inputs waiting in the queue.", [({}, self.queued_inputs)]),
            ("te_batch_next_size", "gauge", "Size of the next batch.", [({}, self.next_batch_size)]),
            ("fakeserver_slots", "gauge", "Concurrent slots of the capacity model.", [({}, self.slots)]),
            ("fakeserver_busy_seconds_total", "counter", "Slot-seconds spent serving requests (not waiting).",
             [({}, round(cap.busy_seconds, 6) if cap else 0)]),
            ("fakeserver_requests_running", "gauge", "Requests running now.", [({}, cap.running if cap else 0)]),
            ("fakeserver_peak_requests_in_flight", "gauge", "Most requests open at once (running + waiting).",
             [({}, cap.peak_in_flight if cap else 0)]),
            ("fakeserver_peak_requests_running", "gauge", "Most requests running at once.",
             [({}, cap.peak_running if cap else 0)]),
            ("fakeserver_faults_injected_total", "counter", "Faults injected, by kind.",
             [({"kind": k}, n) for k, n in sorted(self.faults.injected.items())]),
        ])
