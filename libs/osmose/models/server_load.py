"""The backend's own view of its load, scraped from its Prometheus ``/metrics`` (optional per endpoint).

The client's view of an endpoint (:class:`~osmose.models.limits.BackendLimits`: this process's
calls in flight and queued) misses every other client of the same server: several pods
(extractor and miner replicas) share one vLLM pool, and each would see free slots while the
server already queues the others' requests. With ``load_source: metrics`` on an endpoint, a
:class:`LoadProbe` polls the server's metrics every ``metrics_interval`` seconds and keeps the
last reading with its time:

* vLLM: ``vllm:num_requests_running`` and ``vllm:num_requests_waiting``, summed over label
  sets (engines of a data-parallel server) of the models the router sends to the endpoint
  (every label set when none of them is named);
* TEI: ``te_queue_size`` (inputs waiting to be batched) as the waiting count; TEI reports
  no running count.

The reading is used only while fresh (younger than ``STALE_INTERVALS`` intervals): a scrape
that fails (404, connection refused, a body without the metrics) leaves the last reading to
age out, so sizing falls back to the client's view; it is logged once per run of failures
and never fails a model call. The probe starts with the endpoint's first use and stops with
the runtime (:meth:`LoadProbe.aclose`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from osmose.models.http import USER_AGENT

__all__ = ["STALE_INTERVALS", "LoadProbe", "ServerLoad", "metrics_url_of", "parse_server_load", "same_origin"]

logger = logging.getLogger(__name__)

#: a reading older than this many intervals is not used (the client's view is)
STALE_INTERVALS = 3
VLLM_RUNNING = "vllm:num_requests_running"
VLLM_WAITING = "vllm:num_requests_waiting"
TEI_QUEUE = "te_queue_size"
_SCRAPE_TIMEOUT_CAP = 2.0  # seconds; a scrape never takes longer than this, nor than one interval


@dataclass(frozen=True)
class ServerLoad:
    """Requests the server runs and queues (all its clients together), and when it said so."""

    running: int
    waiting: int
    at: float  # the probe's clock when read


def metrics_url_of(url: str, protocol: str) -> str:
    """Where an endpoint's server publishes its metrics: the server root + ``/metrics``
    (an OpenAI-style base URL drops its ``/v1``)."""
    base = url.rstrip("/")
    if protocol == "openai" and base.endswith("/v1"):
        base = base[: -len("/v1")]
    return f"{base}/metrics"


def parse_server_load(text: str, *, protocol: str, models: Collection[str] = ()) -> tuple[int, int]:
    """(running, waiting) from a Prometheus text exposition; ValueError when the server's
    metrics are not in it (a wrong URL answering 200, another server)."""
    wanted = {VLLM_RUNNING: "running", VLLM_WAITING: "waiting"} if protocol == "openai" else {TEI_QUEUE: "waiting"}
    samples: dict[str, list[tuple[dict[str, str], float]]] = {name: [] for name in wanted}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in samples:
                samples[sample.name].append((sample.labels, sample.value))
    if not any(samples.values()):
        raise ValueError(f"none of {', '.join(sorted(wanted))} in the metrics")
    totals = {"running": 0.0, "waiting": 0.0}
    for name, values in samples.items():
        ours = [v for labels, v in values if labels.get("model_name") in models]
        totals[wanted[name]] += sum(ours) if ours else sum(v for _, v in values)
    return round(totals["running"]), round(totals["waiting"])


class LoadProbe:
    """Polls one server's metrics in the background; :meth:`current` is the fresh reading or None."""

    def __init__(self, url: str, *, protocol: str, interval: float, models: Collection[str] = (),
                 api_key: str = "", endpoint: str = "", clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.protocol = protocol
        self.interval = interval
        self.models = frozenset(models)
        self.endpoint = endpoint or url
        self._api_key = api_key
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self.last: ServerLoad | None = None
        self.scrapes = 0
        self.failures = 0
        self._failing = False

    def current(self) -> ServerLoad | None:
        """The last reading while it is fresh (younger than STALE_INTERVALS intervals), else None."""
        last = self.last
        if last is None or self._clock() - last.at >= STALE_INTERVALS * self.interval:
            return None
        return last

    def start(self) -> None:
        """Starts polling (idempotent); a no-op outside an event loop. A probe left on a loop
        that is gone (the runtime reused by a later ``asyncio.run``) starts again on this one."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._task is not None and not self._task.done() and self._task.get_loop() is loop:
            return
        if self._task is not None and self._task.get_loop() is not loop:
            self._http = None  # bound to the old loop's connections
        self._task = loop.create_task(self._poll(), name=f"load-probe {self.endpoint}")

    async def _poll(self) -> None:
        while True:
            await self.scrape()
            await asyncio.sleep(self.interval)

    async def scrape(self) -> ServerLoad | None:
        """One scrape; the reading, or None when it failed (logged once per run of failures)."""
        if self._http is None:
            headers = {"User-Agent": USER_AGENT}
            if self._api_key:
                headers["Authorization"] = f"Bearer {self._api_key}"
            self._http = httpx.AsyncClient(headers=headers, trust_env=False,
                                           timeout=httpx.Timeout(min(_SCRAPE_TIMEOUT_CAP, self.interval * 2)))
        try:
            response = await self._http.get(self.url)
            response.raise_for_status()
            running, waiting = parse_server_load(response.text, protocol=self.protocol, models=self.models)
        except Exception as exc:  # noqa: BLE001 - any failure: the client's view, never a failed call
            self.failures += 1
            if not self._failing:
                self._failing = True
                logger.warning("%s: cannot read the server's load from %s (%s: %s); sizing calls from this "
                               "process's own view until it answers", self.endpoint, self.url,
                               type(exc).__name__, exc)
            return None
        self.scrapes += 1
        if self._failing:
            self._failing = False
            logger.info("%s: reading the server's load from %s again", self.endpoint, self.url)
        self.last = ServerLoad(running=running, waiting=waiting, at=self._clock())
        return self.last

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        elif task is not None:
            self._http = None  # its loop is gone, and its connections with it
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def same_origin(a: str, b: str) -> bool:
    """Whether two URLs name the same scheme, host and port (the endpoint's key goes only there)."""
    x, y = urlsplit(a), urlsplit(b)
    return (x.scheme, x.hostname, x.port) == (y.scheme, y.hostname, y.port)
