"""The model backends of one process (:class:`ModelRuntime`) and one document's use of them
(:class:`ModelSession`).

The runtime is built once per process from the settings and the router
configuration; it owns one :class:`~osmose.models.backend.Backend` per endpoint
that is on (so limits and breakers are shared by every document), the model-call
cache, and the TEI embeddings. A stage opens a session per document: the session
routes each task down its chain, goes through the cache first, charges calls,
tokens and seconds to the document and spends the document's retry budget.

    answer = await session.chat("concept_extraction", request)   # cache -> chain -> error
    session.add_to(item)                                          # cost accounting on the work item
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from osmose.cache import erase_document_entries, scope_prefix, scoped_key
from osmose.config import Settings
from osmose.models.backend import Backend
from osmose.models.cache import ModelCache, open_content_cache
from osmose.models.config import KEY_SETTINGS, RouterConfig, Target, TaskRoute, load_router_config
from osmose.models.context import DEFAULT_CALL_ORDER, Accounting, CallOrder, current_call_order
from osmose.models.exceptions import (
    CircuitOpenError,
    ModelRequestError,
    ModelUnavailableError,
)
from osmose.models.openai_chat import (
    ChatRequest,
    ChatResponse,
    build_payload,
    chat_completion,
    key_material,
)
from osmose.models.retry import RetryBudget
from osmose.models.tei import TeiEmbeddings
from osmose.models.usage import TaskUsage, UsageRecorder, add_to_proto
from osmose.telemetry import models as telemetry
from osmose.telemetry.tracing import model_span
from osmose.text.budget import CHAT_CHARS_PER_TOKEN, approx_tokens
from osmose.v1 import pipeline_pb2 as ppb

if TYPE_CHECKING:
    import httpx

__all__ = ["ChatAnswer", "ModelRuntime", "ModelSession"]

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT_TOKENS = 512


def _estimate_tokens(text: str) -> int:
    """A chat model's tokens, before the server counts them (rate limits) or when it does not say."""
    return approx_tokens(text, chars_per_token=CHAT_CHARS_PER_TOKEN, special_tokens=0)


@dataclass(frozen=True)
class ChatAnswer:
    text: str
    target: Target  # which link of the chain answered
    cached: bool
    response: ChatResponse


class ModelRuntime:
    """Endpoints, routes and cache of one process. Use :meth:`from_settings`; close with :meth:`aclose`."""

    def __init__(self, config: RouterConfig, *, cache: ModelCache,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.cache = cache
        served = {name: {t.model for route in config.tasks.values() for t in route.chain if t.endpoint == name}
                  for name in config.endpoints}
        self.backends: dict[str, Backend] = {
            name: Backend(endpoint, clock=clock, models=served[name])
            for name, endpoint in config.endpoints.items() if endpoint.enabled}
        self._embeddings: TeiEmbeddings | None = None
        #: cache key -> the answer of an identical chat call in flight in this process (None: it failed)
        self.in_flight: dict[str, asyncio.Future[ChatResponse | None]] = {}
        telemetry.track_runtime(self)

    @classmethod
    def from_settings(cls, settings: Settings, *, config: RouterConfig | None = None) -> ModelRuntime:
        config = config or load_router_config(settings.router_config, urls={
            "llm_url": settings.llm_url, "vision_url": settings.vision_url, "tei_url": settings.tei_url},
            keys={name: secret.get_secret_value() if (secret := getattr(settings, name)) else None
                  for name in KEY_SETTINGS})
        cache_url = settings.cache_url.get_secret_value() if settings.cache_url else None
        store = open_content_cache(cache_url=cache_url, sqlite_path=settings.data_dir / "cache" / "models.sqlite",
                                   namespace="models", ttl_s=settings.cache_ttl_days * 86400,
                                   max_entries=settings.cache_max_entries)
        runtime = cls(config, cache=ModelCache(store))
        logger.info("model router (%s): %s; embeddings: %s; cache: %s", config.source,
                    ", ".join(f"{task} -> {' | '.join(t.label for t, _ in runtime.targets(task)) or 'offline path'}"
                              for task in sorted(config.tasks)),
                    config.embedding_endpoint.url if config.embedding_endpoint else "local model",
                    "redis" if settings.cache_url else "sqlite")
        return runtime

    # -- what is configured ------------------------------------------------------------------------

    def route(self, task: str) -> TaskRoute | None:
        return self.config.route(task)

    def targets(self, task: str) -> list[tuple[Target, Backend]]:
        """The links of `task`'s chain whose endpoint is on, in order."""
        route = self.config.route(task)
        if route is None:
            return []
        return [(t, self.backends[t.endpoint]) for t in route.chain if t.endpoint in self.backends]

    def serves(self, task: str) -> bool:
        """Whether any endpoint of `task`'s chain is configured (breakers aside)."""
        return bool(self.targets(task))

    @property
    def embeddings(self) -> TeiEmbeddings | None:
        """TEI embeddings when the router's embeddings endpoint is on, else None."""
        endpoint = self.config.embedding_endpoint
        if endpoint is None:
            return None
        if self._embeddings is None:
            self._embeddings = TeiEmbeddings(self.backends[endpoint.name],
                                             retry_budget=self.config.retry_budget_per_document)
        return self._embeddings

    def session(self, *, label: str = "", scope: str = "") -> ModelSession:
        """A session for one document (`label` appears in logs) of tenant `scope`: its cached
        answers are the tenant's own, never another tenant's."""
        return ModelSession(self, budget=RetryBudget(self.config.retry_budget_per_document), label=label,
                            scope=scope, call_order=current_call_order())

    def erase(self, scope: str) -> int:
        """Forget every answer cached for `scope` (a tenant's erasure); the number removed."""
        return self.cache.store.delete_prefix(scope_prefix(scope))

    def erase_document(self, scope: str, doc_id: str) -> int:
        """Forget the answers document `doc_id` of `scope` used (see :mod:`osmose.cache`)."""
        return erase_document_entries(self.cache.store, scope, doc_id)

    # -- lifecycle and observability ------------------------------------------------------------------

    def snapshot(self) -> dict[str, object]:
        """Breaker states, in-flight requests, deadlines and cache counters, for metrics and logs."""
        return {"backends": [b.snapshot() for b in self.backends.values()],
                "cache": {"hits": self.cache.hits, "misses": self.cache.misses, "errors": self.cache.errors}}

    async def aclose(self) -> None:
        for backend in self.backends.values():
            await backend.aclose()
        self.cache.close()


class ModelSession:
    """One document's use of the runtime: routing, cache, accounting and retry budget."""

    def __init__(self, runtime: ModelRuntime, *, budget: RetryBudget, label: str = "", scope: str = "",
                 call_order: CallOrder = DEFAULT_CALL_ORDER) -> None:
        self.runtime = runtime
        self.call_order = call_order
        self.budget = budget
        self.usage = UsageRecorder()
        self.label = label
        self.scope = scope

    def _key(self, *parts: str) -> str:
        return scoped_key(self.scope, *parts) if self.scope else self.runtime.cache.key(*parts)

    @property
    def accounting(self) -> Accounting:
        return Accounting(usage=self.usage, budget=self.budget)

    def route(self, task: str) -> TaskRoute | None:
        return self.runtime.route(task)

    def serves(self, task: str) -> bool:
        return self.runtime.serves(task)

    def available(self, task: str) -> bool:
        """Whether a call for `task` could be made now: an endpoint of its chain is on and
        its breaker lets calls through."""
        return any(backend.breaker.allows() for _, backend in self.runtime.targets(task))

    def fallback(self, task: str, units: int = 1) -> None:
        """Record that `units` pieces of work took the non-LLM path."""
        self.usage.task(task).fallbacks += units

    def add_to(self, item: ppb.WorkItem) -> None:
        add_to_proto(item.model_usage, self.usage)

    async def chat(self, task: str, request: ChatRequest) -> ChatAnswer:
        """The answer for `request` from the first link of `task`'s chain that gives one:
        the cache, else the model. Raises :class:`ModelUnavailableError` when no link
        answers (:class:`ModelRequestError` when every link rejected the request)."""
        targets = self.runtime.targets(task)
        if not targets:
            raise ModelUnavailableError(f"no endpoint configured for task {task!r}")
        usage = self.usage.task(task)
        cache = self.runtime.cache
        errors: list[Exception] = []
        for target, backend in targets:
            key = self._key("chat", key_material(target.model, target.params, request))
            hit = await cache.get(key)
            shared = self.runtime.in_flight.get(key) if hit is None else None
            if shared is not None:
                # The same question is being asked in this process now (a look-ahead and the real
                # message of one document): its answer, not a second call; if it fails, ask ourselves.
                joined = await asyncio.shield(shared)
                if joined is not None:
                    hit = joined.to_json()
            telemetry.observe_cache(task=task, hit=hit is not None)
            if hit is not None:
                usage.cache_hits += 1
                response = ChatResponse.from_json(hit)
                return ChatAnswer(text=response.text, target=target, cached=True, response=response)
            if not backend.breaker.allows():
                errors.append(CircuitOpenError(f"circuit open for {backend.name}", endpoint=backend.name))
                continue
            mine: asyncio.Future[ChatResponse | None] = asyncio.get_running_loop().create_future()
            self.runtime.in_flight.setdefault(key, mine)   # unless another started while we waited
            answer: ChatAnswer | None = None
            try:
                answer = await self._call(task, target, backend, request, key, usage, errors)
            finally:
                if self.runtime.in_flight.get(key) is mine:
                    del self.runtime.in_flight[key]
                mine.set_result(answer.response if answer is not None else None)
            if answer is not None:
                return answer
        summary = "; ".join(f"{type(e).__name__}: {e}" for e in errors)
        if errors and all(isinstance(e, ModelRequestError) for e in errors):
            raise ModelRequestError(f"{task}: every endpoint rejected the request: {summary}") from errors[-1]
        raise ModelUnavailableError(f"{task}: no endpoint answered: {summary}") from (errors[-1] if errors else None)

    async def _call(self, task: str, target: Target, backend: Backend, request: ChatRequest, key: str,
                    usage: TaskUsage, errors: list[Exception]) -> ChatAnswer | None:
        """One link's call (the cache missed); None when it failed (the error is in `errors`)."""
        cache = self.runtime.cache
        payload = await build_payload(target.model, target.params, request)
        if backend.config.priority_scheduling and self.call_order.priority:
            payload["priority"] = self.call_order.priority  # not in the cache key: same answer
        expected = request.expected_output_tokens or int(target.params.get("max_tokens") or DEFAULT_OUTPUT_TOKENS)
        prompt_estimate = _estimate_tokens(request.system) + _estimate_tokens(request.user)
        name = backend.name

        def op(http: httpx.AsyncClient, _timeout: float, p: dict[str, Any] = payload,
               n: str = name) -> Awaitable[ChatResponse]:
            return chat_completion(http, p, endpoint=n)

        try:
            with model_span(operation="chat", model=target.model, endpoint=name, task=task,
                            server=backend.config.url) as span:
                response = await backend.call(op, task=task, usage=usage, budget=self.budget,
                                              tokens=prompt_estimate + expected,
                                              priority=self.call_order.priority, order=self.call_order.order)
                prompt_tokens = response.prompt_tokens or prompt_estimate
                output_tokens = response.output_tokens or _estimate_tokens(response.text)
                span.set_attributes({"gen_ai.usage.input_tokens": prompt_tokens,
                                     "gen_ai.usage.output_tokens": output_tokens})
        except (ModelUnavailableError, ModelRequestError) as exc:
            usage.failures += 1
            errors.append(exc)
            logger.warning("%s: %s on %s failed: %s", self.label or "model call", task, target.label, exc)
            return None
        usage.prompt_tokens += prompt_tokens
        usage.output_tokens += output_tokens
        telemetry.observe_tokens(operation="chat", task=task, input_tokens=prompt_tokens,
                                 output_tokens=output_tokens)
        await cache.put(key, response.to_json())
        return ChatAnswer(text=response.text, target=target, cached=False, response=response)

    # -- results of one unit of work (a segment), whatever call produced them ---------------------------

    def _item_key(self, task: str, target: Target, item_key: str) -> str:
        params = json.dumps(dict(target.params), sort_keys=True, separators=(",", ":"))
        return self._key("item", task, target.model, params, item_key)

    async def recall(self, task: str, item_key: str) -> tuple[Any, Target] | None:
        """A unit's result stored by :meth:`remember` for any link of the chain (first link first).

        Several units (segments) are packed into one call; storing each unit's part of the
        answer under its own content key means a deck with one changed segment makes one
        call for that segment only, whatever it was packed with the first time."""
        for target, _backend in self.runtime.targets(task):
            value = await self.runtime.cache.get(self._item_key(task, target, item_key))
            if value is not None:
                self.usage.task(task).cache_hits += 1
                telemetry.observe_cache(task=task, hit=True)
                return value, target
        return None

    async def remember(self, task: str, target: Target, item_key: str, value: Any) -> None:
        await self.runtime.cache.put(self._item_key(task, target, item_key), value)

