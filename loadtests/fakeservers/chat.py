"""An OpenAI-compatible chat server that behaves like vLLM from the outside.

Routes: ``POST /v1/chat/completions`` (text and ``image_url`` parts,
``response_format`` json_schema / json_object, ``max_tokens``; no streaming),
``GET /v1/models``, ``GET /health``, ``GET /metrics`` (vLLM's names:
``vllm:num_requests_running``, ``vllm:num_requests_waiting``, token and request
counters, prefix-cache counters, plus ``fakeserver_*`` counters tests read),
``/admin/faults`` (see :mod:`faults`). :meth:`ChatServer.hold` keeps every new chat
request waiting until :meth:`ChatServer.release` (tests order events without timing:
"this happened while the model call was still open"). Unknown models get vLLM's 404. Answers
come from :mod:`answers` (deterministic, schema-valid); an answer longer than
``max_tokens`` is cut and finishes with ``"length"``, as on a real server.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import Counter
from typing import Any

from aiohttp import web

from loadtests.fakeservers.answers import answer_for, count_tokens, prompt_parts
from loadtests.fakeservers.capacity import Capacity, LatencyModel, QueueFull
from loadtests.fakeservers.faults import Fault
from loadtests.fakeservers.metrics import render_metrics
from loadtests.fakeservers.runner import BaseServer

__all__ = ["DEFAULT_MODELS", "ChatServer"]

DEFAULT_MODELS = ("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-VL-7B-Instruct")
IMAGE_TOKENS = 256  # what one image costs in prompt tokens (vision encoders emit a few hundred)


class ChatServer(BaseServer):
    kind = "chat"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, models: tuple[str, ...] = DEFAULT_MODELS,
                 slots: int = 8, max_waiting: int = 0, latency: LatencyModel | None = None,
                 faults: list[Fault] | None = None, seed: int = 0, api_key: str = "") -> None:
        super().__init__(host=host, port=port, faults=faults, seed=seed, api_key=api_key)
        self.models = tuple(models)
        self.slots = slots
        self.max_waiting = max_waiting
        self.latency = latency or LatencyModel()
        self.capacity: Capacity | None = None
        self.requests: Counter[tuple[str, int]] = Counter()  # (route, status)
        self.completions = 0  # successful chat completions
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.prefix_queries = 0
        self.prefix_hits = 0
        self.latency_sum = 0.0
        self._prefixes: set[str] = set()
        self.priorities: Counter[int] = Counter()  # completions by vLLM's per-request `priority`
        self.log: list[dict[str, Any]] = []  # every chat request body received (tests inspect them)
        #: (started running, ended, index in `log`, output tokens) of every request served
        self.served: list[tuple[float, float, int, int]] = []
        self.started = time.time()
        self._gate = threading.Event()   # set: requests go through; cleared by hold()
        self._gate.set()
        self._held = threading.Condition()
        self.held = 0   # requests waiting at the gate now

    # -- the gate (tests) ----------------------------------------------------------------------------------

    def hold(self) -> None:
        """From now on, chat requests wait (before being served or counted) until :meth:`release`."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def wait_held(self, count: int = 1, timeout: float = 30.0) -> bool:
        """Block until at least `count` requests wait at the gate (False after `timeout` seconds)."""
        with self._held:
            return self._held.wait_for(lambda: self.held >= count, timeout)

    async def _pass_gate(self) -> None:
        if self._gate.is_set():
            return
        with self._held:
            self.held += 1
            self._held.notify_all()
        try:
            loop = asyncio.get_running_loop()
            while not await loop.run_in_executor(None, self._gate.wait, 0.5):
                pass
        finally:
            with self._held:
                self.held -= 1

    def on_start(self) -> None:
        self.capacity = Capacity(self.slots, max_waiting=self.max_waiting)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)

    @property
    def openai_url(self) -> str:
        """The base URL clients are given (includes /v1, as vLLM documents it)."""
        return f"{self.url}/v1"

    @property
    def chat_requests(self) -> int:
        return sum(n for (route, _status), n in self.requests.items() if route == "chat")

    def reset_counters(self) -> None:
        self.requests.clear()
        self.completions = 0
        self.log.clear()
        self.served.clear()
        if self.capacity is not None:
            self.call_in_loop(self.capacity.reset_peaks)

    # -- routes ------------------------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _models(self, request: web.Request) -> web.Response:
        created = int(self.started)
        data = [{"id": m, "object": "model", "created": created, "owned_by": "vllm", "root": m, "parent": None,
                 "max_model_len": 32768} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    def _error(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> web.Response:
        self.requests[("chat", status)] += 1
        body = {"object": "error", "message": message, "type": kind, "param": None, "code": status}
        return web.json_response(body, status=status, headers=headers)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return self._error(400, "request body is not JSON", "BadRequestError")
        self.log.append(body)
        index = len(self.log) - 1
        model = str(body.get("model", ""))
        if model not in self.models:
            return self._error(404, f"The model `{model}` does not exist.", "NotFoundError")
        if body.get("stream"):
            return self._error(400, "streaming is not supported by this fake server", "BadRequestError")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return self._error(400, "messages must be a non-empty list", "BadRequestError")

        await self._pass_gate()
        fault = self.faults.pick("chat", model)
        if fault is not None and fault.kind in ("429", "500", "503", "hang", "drop"):
            return await self._fault_response(request, fault)

        system, user, images = prompt_parts(body["messages"])
        system_tokens = count_tokens(system)
        prompt_tokens = system_tokens + count_tokens(user) + IMAGE_TOKENS * len(images)
        text = answer_for(body)
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16384)
        tokens = _tokens_with_offsets(text)
        finish = "stop"
        if len(tokens) > max_tokens:
            text = text[: tokens[max_tokens - 1][1]]
            tokens, finish = tokens[:max_tokens], "length"
        if fault is not None and fault.kind == "malformed":
            text = _malformed(text)
        output_tokens = len(tokens)

        prefix = hashlib.sha256(system.encode()).hexdigest()
        cached = system_tokens if prefix in self._prefixes else 0
        self._prefixes.add(prefix)
        self.prefix_queries += prompt_tokens
        self.prefix_hits += cached
        slow = fault.factor if fault is not None and fault.kind == "slow" else 1.0
        try:
            priority = int(body.get("priority") or 0)  # vLLM: lower is served first (priority policy)
        except (TypeError, ValueError):
            return self._error(400, "priority must be an integer", "BadRequestError")
        assert self.capacity is not None
        started = time.perf_counter()
        try:
            async with self.capacity.admit(priority):
                running = time.perf_counter()
                await asyncio.sleep(self.latency.seconds(prompt_tokens=prompt_tokens - cached,
                                                         output_tokens=output_tokens, slow_factor=slow))
            self.served.append((running, time.perf_counter(), index, output_tokens))
        except QueueFull as exc:
            return self._error(503, f"server queue full: {exc}", "ServiceUnavailableError")
        self.latency_sum += time.perf_counter() - started
        self.requests[("chat", 200)] += 1
        self.completions += 1
        self.priorities[priority] += 1
        self.prompt_tokens += prompt_tokens
        self.generation_tokens += output_tokens
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
        return web.json_response({
            "id": f"chatcmpl-{digest}", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": output_tokens,
                      "total_tokens": prompt_tokens + output_tokens},
        })

    async def _fault_response(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
        if fault.kind == "429":
            return self._error(429, "Too many requests (injected)", "RateLimitError", headers)
        if fault.kind in ("500", "503"):
            return self._error(int(fault.kind), "Internal server error (injected)", "InternalServerError",
                               headers if fault.kind == "503" else None)
        if fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
            return self._error(504, "gave up after hanging (injected)", "GatewayTimeout")
        # drop: close the connection without an answer
        self.requests[("chat", 0)] += 1
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=500)

    def metrics_text(self) -> str:
        cap = self.capacity
        running = cap.running if cap else 0
        waiting = cap.waiting if cap else 0
        model = {"model_name": self.models[0] if self.models else ""}
        codes = Counter()
        for (route, status), n in self.requests.items():
            codes[(route, str(status))] += n
        return render_metrics([
            ("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.",
             [(model, running)]),
            ("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", [(model, waiting)]),
            ("vllm:request_success_total", "counter", "Count of successfully processed requests.",
             [({**model, "finished_reason": "stop"}, self.completions)]),
            ("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", [(model, self.prompt_tokens)]),
            ("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.",
             [(model, self.generation_tokens)]),
            ("vllm:prefix_cache_queries_total", "counter", "Prefix cache queries, in tokens.",
             [(model, self.prefix_queries)]),
            ("vllm:prefix_cache_hits_total", "counter", "Prefix cache hits, in tokens.", [(model, self.prefix_hits)]),
            ("vllm:e2e_request_latency_seconds_sum", "counter", "Latency of requests (sum).",
             [(model, round(self.latency_sum, 6))]),
            ("vllm:e2e_request_latency_seconds_count", "counter", "Latency of requests (count).",
             [(model, self.completions)]),
            ("fakeserver_requests_total", "counter", "Requests by route and status (0 = dropped).",
             [({"route": r, "code": c}, n) for (r, c), n in sorted(codes.items())]),
            ("fakeserver_peak_requests_in_flight", "gauge", "Most requests open at once (running + waiting).",
             [({}, cap.peak_in_flight if cap else 0)]),
            ("fakeserver_peak_requests_running", "gauge", "Most requests running at once.",
             [({}, cap.peak_running if cap else 0)]),
            ("fakeserver_slots", "gauge", "Concurrent slots of the capacity model.", [({}, self.slots)]),
            ("fakeserver_busy_seconds_total", "counter", "Slot-seconds spent serving requests (not waiting).",
             [({}, round(cap.busy_seconds, 6) if cap else 0)]),
            ("fakeserver_requests_by_priority_total", "counter", "Completions by the request's priority field.",
             [({"priority": str(p)}, n) for p, n in sorted(self.priorities.items())]),
            ("fakeserver_faults_injected_total", "counter", "Faults injected, by kind.",
             [({"kind": k}, n) for k, n in sorted(self.faults.injected.items())]),
        ])


def _tokens_with_offsets(text: str) -> list[tuple[int, int]]:
    import re

    return [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", text)]


def _malformed(text: str) -> str:
    """Cut in the middle and wrapped the way careless models answer."""
    return "Sure! Here is the JSON:\n```json\n" + text[: max(1, len(text) // 2)]
