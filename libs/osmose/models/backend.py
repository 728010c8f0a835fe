"""One model server endpoint as the process sees it: pool, limits, breaker, deadlines, retries.

A :class:`Backend` is shared by every document of the process (the runtime
holds one per configured endpoint), so its concurrency limit, rate limits and
circuit breaker protect the server from the whole process, not per document.
:meth:`Backend.call` runs one request through all of it::

    for each attempt (tenacity; see osmose.models.retry for when it retries):
        1. breaker.acquire()        open -> CircuitOpenError, never retried
        2. rate limits, then a concurrency slot
        3. the request under asyncio.timeout(adaptive deadline)
        4. outcome -> breaker (5xx/timeout/connection = failure; 429 = neither: back-pressure
           is not ill health) and, on success, the latency -> adaptive timeout

:attr:`Backend.free` is what call sizing reads: the client's view of free slots, or, with
``load_source: metrics``, that view corrected by the server's own (:mod:`osmose.models.server_load`).
The slot limit itself stays the client's: the server's load sizes calls, it never admits more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import TypeVar

import httpx

from osmose.models.breaker import CircuitBreaker
from osmose.models.config import EndpointConfig
from osmose.models.exceptions import (
    ModelOverloadedError,
    ModelRequestError,
    ModelTimeoutError,
    ModelUnavailableError,
)
from osmose.models.http import make_client, translate
from osmose.models.limits import BackendLimits
from osmose.models.retry import RetryBudget, retrying
from osmose.models.server_load import LoadProbe, ServerLoad, metrics_url_of, same_origin
from osmose.models.timeouts import AdaptiveTimeout
from osmose.models.usage import TaskUsage
from osmose.telemetry import models as telemetry

__all__ = ["Backend"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: one request: gets the pooled client and the deadline in seconds
Operation = Callable[[httpx.AsyncClient, float], Awaitable[T]]


class Backend:
    def __init__(self, config: EndpointConfig, *, clock: Callable[[], float] = time.monotonic,
                 models: Collection[str] = ()) -> None:
        """`models`: the model names the router sends to this endpoint (they pick the
        label sets of the server's metrics)."""
        self.config = config
        self.name = config.name
        self.breaker = CircuitBreaker(config.breaker, name=config.name, clock=clock)
        self.limits = BackendLimits(config)
        self.probe: LoadProbe | None = None
        if config.load_source == "metrics":
            url = config.metrics_url or metrics_url_of(config.url, config.protocol)
            key = config.api_key.get_secret_value() if same_origin(url, config.url) else ""
            self.probe = LoadProbe(url, protocol=config.protocol, interval=config.metrics_interval,
                                   models=models, api_key=key, endpoint=config.name, clock=clock)
        self._timeouts: dict[str, AdaptiveTimeout] = {}
        self._http: httpx.AsyncClient | None = None
        self.requests = 0
        self.errors = 0

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:  # created on first use: constructors never touch the network
            self._http = make_client(self.config.url, concurrency=self.config.concurrency,
                                     connect_timeout=self.config.timeout.connect,
                                     api_key=self.config.api_key.get_secret_value())
        return self._http

    def server_load(self) -> ServerLoad | None:
        """The server's fresh reading (all its clients), or None: no probe, not read yet,
        failing or stale. Starts the probe on first use."""
        if self.probe is None:
            return None
        self.probe.start()
        return self.probe.current()

    @property
    def free(self) -> int:
        """Free slots as call sizing sees them (negative: a queue). The client's view:
        concurrency - in flight - queued here. While the server's reading is fresh, also no more
        than the server's: a server that queues (any client's requests) has no free slot, its
        queue is ahead of ours; one that does not has ``server_slots`` (default: concurrency)
        minus the larger of its running count and ours."""
        limits = self.limits
        load = self.server_load()
        if load is None:
            return limits.free
        if load.waiting > 0:
            server = -load.waiting
        else:
            server = (self.config.server_slots or limits.concurrency) - max(limits.in_flight, load.running)
        return min(limits.free, server)

    def timeout(self, task: str) -> AdaptiveTimeout:
        tracker = self._timeouts.get(task)
        if tracker is None:
            tracker = self._timeouts[task] = AdaptiveTimeout(self.config.timeout)
        return tracker

    async def call(self, op: Operation[T], *, task: str, usage: TaskUsage, budget: RetryBudget,
                   tokens: int = 0, priority: int = 0, order: int = 0) -> T:
        """`op` with retries; raises the last error when it cannot succeed. Waiting for a
        slot, lower `priority` goes first, then lower `order` (the older document)."""

        def on_retry(state: object) -> None:
            usage.retries += 1
            telemetry.observe_retry(endpoint=self.name, task=task)

        result: T
        async for attempt in retrying(self.config.retries, budget, on_retry=on_retry):
            with attempt:
                result = await self._attempt(op, task=task, usage=usage, tokens=tokens, priority=priority,
                                             order=order)
        return result

    async def _attempt(self, op: Operation[T], *, task: str, usage: TaskUsage, tokens: int, priority: int = 0,
                       order: int = 0) -> T:
        self.breaker.acquire()
        if self.probe is not None:
            self.probe.start()
        recorded = False
        try:
            waited = time.perf_counter()
            async with self.limits.slot(tokens, priority=priority, order=order):
                telemetry.observe_queue_wait(endpoint=self.name, task=task, seconds=time.perf_counter() - waited)
                deadline = self.timeout(task).current()
                started = time.perf_counter()
                self.requests += 1
                usage.calls += 1
                failure: BaseException | None = None
                try:
                    async with asyncio.timeout(deadline):
                        result = await op(self.http, deadline)
                except TimeoutError:
                    failure = ModelTimeoutError(f"{self.name}: no answer within {deadline:.1f}s (adaptive deadline)",
                                                endpoint=self.name)
                    raise failure from None
                except httpx.HTTPError as exc:
                    failure = translate(exc, endpoint=self.name)
                    raise failure from exc
                except BaseException as exc:
                    failure = exc
                    raise
                finally:
                    elapsed = time.perf_counter() - started
                    usage.backend_seconds += elapsed
                    telemetry.observe_attempt(endpoint=self.name, task=task, seconds=elapsed, exc=failure)
            self.timeout(task).observe(elapsed)
            self.breaker.record(failed=False)
            recorded = True
            return result
        except ModelOverloadedError:
            raise  # back-pressure, not ill health: released below without an outcome
        except ModelUnavailableError as exc:
            self.errors += 1
            self.breaker.record(failed=True)
            recorded = True
            logger.info("%s: %s", self.name, exc)
            raise
        except ModelRequestError:
            self.breaker.record(failed=False)  # the server answered: it is alive
            recorded = True
            raise
        finally:
            if not recorded:
                self.breaker.release()

    async def aclose(self) -> None:
        if self.probe is not None:
            await self.probe.aclose()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def snapshot(self) -> dict[str, object]:
        return {"endpoint": self.name, "url": self.config.url, "breaker": self.breaker.snapshot(),
                "requests": self.requests, "errors": self.errors, "in_flight": self.limits.in_flight,
                "peak_in_flight": self.limits.peak_in_flight, "free": self.free,
                "deadlines": {task: round(t.current(), 3) for task, t in sorted(self._timeouts.items())}}
