"""The service host: `osmose serve STAGE` (one stage per process) and `osmose serve all`.

One process = its gRPC listeners (:mod:`osmose.hosts.service_listeners`: a public TLS listener
with authenticated calls — the ingestion API with the front-door stage, the query API with the
writer —, an internal mTLS one for the stages' Process RPCs, a plaintext one for health probes;
or one plaintext loopback listener with `--insecure`) + one
Kafka consumer per hosted stage + a tail of the job topic + one shared producer. What a
stage is (port, role, topics) comes from its declaration (:mod:`osmose.pipeline`);
stages are built by :mod:`osmose.hosts.wiring`, exactly as the in-process host builds them.

Start-up:

1. create the declared topics if missing (:mod:`osmose.bus.topics`; idempotent);
2. connect the producer (fails fast without a broker);
3. rebuild the job table from the compacted job topic;
4. start the gRPC listeners (health: NOT_SERVING);
5. start the consumers; once every one has joined its group, health is SERVING.

Supervision and readiness, while serving:

* a stage whose consumer fails (its handler raised: the broker was gone longer than
  ``OSMOSE_PUBLISH_RETRY_S``, or its thread died) is restarted alone, after a pause
  growing to 30 s: the other stages of the process (``serve all``) keep serving; more
  than ``max_restarts`` restarts in 10 minutes is a fatal error (exit 1, the
  orchestrator restarts the process);
* health, every second: a stage's gRPC service and the overall status ``""`` are
  NOT_SERVING (not ready) while the stage waits for a dependency that is down, the
  broker does not answer or its consumer restarts; the ``liveness`` service stays
  SERVING as long as the process runs (the chart's liveness probe asks for it).

Shutdown, on SIGTERM or SIGINT (or a fatal error, then exit status 1):

1. health NOT_SERVING (load balancers stop sending RPCs), no new messages fetched;
2. each consumer finishes its in-flight messages (up to ``drain_timeout_s``; the rest
   are handed back uncommitted), commits and leaves its group;
3. the gRPC listeners stop with a grace period for RPCs in progress;
4. the producer flushes and closes, stores close. Exit status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from grpc_health.v1 import health, health_pb2

from osmose.bus.consumer import StageConsumer
from osmose.bus.envelope import CLAIM_CHECK_BYTES
from osmose.bus.jobs import JobTable, JobTail
from osmose.bus.kafka_client import BusConfig, Producer, ensure_topics
from osmose.bus.topics import declare_topics
from osmose.config import Settings
from osmose.hosts.service_frontdoor import SERVICE_NAME as INGESTION_SERVICE
from osmose.hosts.service_frontdoor import IngestionServicer
from osmose.hosts.service_listeners import Listeners
from osmose.hosts.service_rpc import add_stage_services
from osmose.hosts.service_worker import RetryPolicy, ServiceBus, StageWorker
from osmose.hosts.streaming import LOOKAHEAD_SENDERS
from osmose.pipeline import PIPELINE, Pipeline, Stage
from osmose.security.quotas import QuotaBook
from osmose.telemetry.overdue import OverdueCounter
from osmose.telemetry.server import start_metrics
from osmose.v1 import services_pb2_grpc as sgrpc

if TYPE_CHECKING:
    from osmose.hosts.wiring import Resources

__all__ = ["LIVENESS", "ServiceHost", "ServiceOptions", "job_table", "serve"]

logger = logging.getLogger(__name__)

#: the health service name the liveness probe asks for: SERVING while the process runs
LIVENESS = "liveness"


def job_table(settings: Settings, *, serves_watchers: bool) -> JobTable:
    """The process's job table. Only the front door serves WatchJob, which replays a job's
    history; a worker-only process keeps the latest snapshot of each job and no history
    (about a third of the memory per job: ended jobs stay until the table's bounds)."""
    return JobTable(history_limit=JobTable.DEFAULT_HISTORY if serves_watchers else 1,
                    max_ended=settings.job_table_max_ended, ended_ttl_s=settings.job_table_ended_ttl_s)


@dataclass(frozen=True, kw_only=True)
class ServiceOptions:
    """How one service process runs (Settings says what it connects to)."""

    host: str = "127.0.0.1"
    port: int | None = None                  # None: the declared port of the first stage hosted
    # Plaintext on loopback, no TLS (the laptop and the tests); else TLS + credentials are required.
    insecure: bool = False
    # Ports of the internal (mTLS, Process RPCs) and health (plaintext, probes) listeners when
    # secure; None = port + 100 and port + 200, 0 = any free port.
    internal_port: int | None = None
    health_port: int | None = None
    # gRPC reflection on the public listener; None = only when insecure.
    reflection: bool | None = None
    # Messages one stage works on at once (per priority class; see osmose.bus.lanes); None =
    # derived per stage from the model backends' capacity (Resources.documents_in_flight).
    max_in_flight: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Seconds in-flight messages get to finish at shutdown before being handed back.
    drain_timeout_s: float = 30.0
    # Seconds after which the group evicts a process that stopped heartbeating (kill -9).
    session_timeout_s: float = 10.0
    # Seconds to wait for the broker at start and for each acknowledgement.
    connect_timeout_s: float = 10.0
    claim_check_bytes: int = CLAIM_CHECK_BYTES
    # Seconds RPCs in progress get at shutdown.
    grpc_grace_s: float = 5.0
    # Port of /metrics: None = the declared metrics port of the first stage hosted; 0 = no endpoint.
    metrics_port: int | None = None
    # Restarts of one stage's consumer within 10 minutes before the process gives up (exit 1).
    max_restarts: int = 10


class ServiceHost:
    def __init__(self, settings: Settings, stages: list[str], options: ServiceOptions = ServiceOptions(), *,
                 pipeline: Pipeline = PIPELINE) -> None:
        unknown = [s for s in stages if s not in pipeline]
        if unknown or not stages:
            raise ValueError(f"unknown stage(s) {unknown}; stages are {', '.join(pipeline.names())}")
        self.settings = settings
        self.pipeline = pipeline
        self.stages = [s for s in pipeline.names() if s in stages]    # pipeline order
        self.options = options
        self.port = options.port or pipeline[self.stages[0]].port
        self.metrics_port = pipeline[self.stages[0]].metrics_port if options.metrics_port is None \
            else options.metrics_port
        everything = len(self.stages) == len(pipeline)
        self.config = BusConfig.from_settings(
            settings, client_id=f"osmose-{'all' if everything else '-'.join(self.stages)}",
            session_timeout_s=options.session_timeout_s, connect_timeout_s=options.connect_timeout_s)
        self._stop = asyncio.Event()
        self._exit_code = 0
        self.bound_port: int | None = None
        # Fault settings from Settings (OSMOSE_STAGE_TIMEOUT_S, OSMOSE_MAX_DELIVERIES, OSMOSE_OUTAGE_*).
        self.retry = dataclasses.replace(options.retry, stage_timeout_s=settings.stage_timeout_s,
                                         max_deliveries=settings.max_deliveries,
                                         outage_cap_s=settings.outage_retry_cap_s,
                                         outage_max_s=settings.outage_max_s)
        self.consumers: dict[str, StageConsumer] = {}
        self.workers: dict[str, StageWorker] = {}
        #: stage -> messages its consumer works on at once (per priority class), set at start
        self.in_flight: dict[str, int] = {}
        self.restarts: dict[str, list[float]] = {}
        self._restarting: set[str] = set()

    def in_flight_of(self, decl: Stage, resources: Resources) -> int:
        """Messages the stage's consumer works on at once, per priority class: ``--max-in-flight``
        (OSMOSE_MAX_IN_FLIGHT) when given, else derived from the model backends' capacity with the
        in-process host's rule (:meth:`osmose.hosts.wiring.Resources.documents_in_flight`): a stage
        that calls the models keeps the router's chat slots x ``documents_per_slot`` documents in
        flight, so their calls can fill the pool; the others 2."""
        return self.options.max_in_flight or resources.documents_in_flight(decl)

    def request_stop(self, exit_code: int = 0) -> None:
        if not self._stop.is_set():
            self._exit_code = exit_code
            self._stop.set()

    def _fatal(self, exc: BaseException) -> None:
        logger.critical("stopping after a fatal error: %s", exc)
        self.request_stop(1)

    async def run(self) -> int:
        from osmose.hosts.wiring import Resources, build_stage

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (tests)
                loop.add_signal_handler(sig, self.request_stop)
        resources = Resources(self.settings)
        producer = Producer(self.config)
        table = job_table(self.settings, serves_watchers=self.pipeline.front_door.name in self.stages)
        quotas = QuotaBook()   # the plans' quotas count from every job snapshot, the rebuild included
        table.observers.append(quotas.observe)
        tail = JobTail(self.config, table)
        tail.on_fatal = self._fatal
        consumers = self.consumers
        listeners: Listeners | None = None
        readiness: asyncio.Task | None = None
        # late documents, counted once by the front door (telemetry.overdue); it reads the rebuild too
        overdue = OverdueCounter(table) if self.pipeline.front_door.name in self.stages else None
        overdue_task: asyncio.Task | None = None
        health_servicer = health.aio.HealthServicer()
        metrics = None
        try:
            metrics = start_metrics(host=self.options.host, port=self.metrics_port,
                                    table=table if self.pipeline.front_door.name in self.stages else None,
                                    otlp_endpoint=self.settings.otlp_endpoint,
                                    service_name=f"osmose-{'-'.join(self.stages)}")
            await asyncio.to_thread(ensure_topics, self.config, declare_topics(self.config.prefix, self.pipeline))   # 1.
            await asyncio.to_thread(producer.start)                                                   # 2.
            await tail.start()                                                                        # 3.
            if not await self._until(tail.ready):
                return self._exit_code
            bus = ServiceBus(config=self.config, producer=producer, blobs=resources.blobs,
                             jobs=table, host=f"{socket.gethostname()}:{os.getpid()}",
                             claim_check_bytes=self.options.claim_check_bytes, pipeline=self.pipeline,
                             publish_retry_s=self.settings.publish_retry_s)
            if self.pipeline.writer.name in self.stages:
                # Open the stores now (on the loop: async store clients bind to it), so a second
                # writer of the embedded stores fails at start, not on its first document.
                _ = resources.graph, resources.vectors
            listeners = Listeners(settings=self.settings, host=self.options.host, port=self.port,    # 4.
                                  internal_port=self.options.internal_port, health_port=self.options.health_port,
                                  insecure=self.options.insecure, reflection=self.options.reflection,
                                  health_servicer=health_servicer)
            workers = {}
            for name in self.stages:
                decl = self.pipeline[name]
                worker = StageWorker(stage=build_stage(decl, resources), bus=bus, retry=self.retry,
                                     exclusive=decl.role == "writer", lookahead=self.settings.lookahead,
                                     models=resources.models if name in LOOKAHEAD_SENDERS else None)
                workers[name] = worker
                self.in_flight[name] = self.in_flight_of(decl, resources)
                add_stage_services(listeners, decl, worker, resources)
            if self.pipeline.front_door.name in self.stages:
                servicer = IngestionServicer(bus=bus, settings=self.settings, ready=tail.ready.is_set, quotas=quotas)
                listeners.add_public(INGESTION_SERVICE,
                                     lambda server: sgrpc.add_IngestionServiceServicer_to_server(servicer, server))
            names = listeners.service_names
            for name in ["", *names]:
                await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
            await health_servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
            await listeners.start()
            self.bound_port = listeners.bound_port
            self.workers = workers
            for name in workers:                                                                     # 5.
                await self._start_consumer(name)
            for consumer in list(consumers.values()):
                if not await self._until(consumer.ready):
                    return self._exit_code
            readiness = asyncio.create_task(self._follow_readiness(health_servicer, bus, names))
            if overdue is not None:
                overdue_task = asyncio.create_task(overdue.run(bus.ledger.publish_marker))
            logger.warning("osmose serving %s on %s %s (%s; Kafka %s, topics %s.*; in flight %s)",
                           ", ".join(self.stages), self.options.host, listeners.ports(),
                           "plaintext, loopback" if self.options.insecure else "TLS, authenticated",
                           self.config.bootstrap, self.config.prefix,
                           ", ".join(f"{s} {n}" for s, n in self.in_flight.items()))
            await self._stop.wait()
            return self._exit_code
        finally:
            logger.warning("osmose %s stopping", ", ".join(self.stages))
            for task in (readiness, overdue_task):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            if overdue is not None:
                overdue.close()
            await health_servicer.enter_graceful_shutdown()                                          # 1.
            await asyncio.gather(*(c.stop(drain_timeout_s=self.options.drain_timeout_s)
                                   for c in list(consumers.values())), return_exceptions=True)       # 2.
            if listeners is not None:
                await listeners.stop(self.options.grpc_grace_s)                                      # 3.
            await tail.stop()
            await asyncio.to_thread(producer.close)                                                  # 4.
            await resources.close()
            if metrics is not None:
                metrics.close()
            logger.warning("osmose %s stopped", ", ".join(self.stages))

    async def _start_consumer(self, name: str) -> StageConsumer:
        worker = self.workers[name]
        consumer = StageConsumer(config=self.config, stage=name, handler=worker.handle,
                                 max_in_flight=self.in_flight[name],
                                 on_fatal=lambda exc: self._consumer_failed(name, exc),
                                 blocked=lambda: worker.waiting)
        worker.on_resume = consumer._wake
        self.consumers[name] = consumer
        await consumer.start()
        return consumer

    def _consumer_failed(self, name: str, exc: BaseException) -> None:
        """Supervision: restart the stage's consumer, unless it failed too often (then exit)."""
        if self._stop.is_set() or name in self._restarting:
            return
        now = time.monotonic()
        recent = [t for t in self.restarts.get(name, []) if t > now - 600] + [now]
        self.restarts[name] = recent
        if len(recent) > self.options.max_restarts:
            logger.critical("stage %s failed %d times in 10 minutes", name, len(recent))
            self._fatal(exc)
            return
        self._restarting.add(name)
        asyncio.get_running_loop().create_task(self._restart(name, exc, pause_s=min(30.0, 2.0 ** (len(recent) - 1))))

    async def _restart(self, name: str, exc: BaseException, *, pause_s: float) -> None:
        logger.error("stage %s failed (%s); restarting its consumer in %.0f s", name, exc, pause_s)
        try:
            await self.consumers[name].stop(drain_timeout_s=self.options.drain_timeout_s)
            await asyncio.sleep(pause_s)
            if not self._stop.is_set():
                await self._start_consumer(name)
                logger.warning("stage %s restarted (%d restart(s) in 10 minutes)", name, len(self.restarts[name]))
        except Exception as error:
            logger.critical("restarting stage %s failed: %s", name, error)
            self._fatal(error)
        finally:
            self._restarting.discard(name)

    def not_ready(self, bus: ServiceBus) -> dict[str, str]:
        """Stage -> why it is not ready (empty: every stage is)."""
        why = {}
        for name, worker in self.workers.items():
            consumer = self.consumers.get(name)
            if name in self._restarting or consumer is None or not consumer.ready.is_set():
                why[name] = "its consumer is restarting"
            elif worker.waiting:
                why[name] = f"waiting for a dependency: {worker.waiting_for()}"
            elif bus.broker_down_since is not None:
                why[name] = "the broker does not answer"
        return why

    async def _follow_readiness(self, health_servicer: health.aio.HealthServicer, bus: ServiceBus,
                                names: list[str]) -> None:
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        services = {name: self.pipeline[name].grpc_service for name in self.stages}
        last: dict[str, int] = {}
        while True:
            why = self.not_ready(bus)
            status: dict[str, int] = {"": not_serving if why else serving}
            for name in names:
                stage = next((s for s, service in services.items() if service == name), None)
                down = stage in why if stage else bus.broker_down_since is not None   # the APIs: the broker
                status[name] = not_serving if down else serving
            for name, value in status.items():
                if last.get(name) != value:
                    await health_servicer.set(name, value)
            if why and last.get("") != status[""]:
                logger.warning("not ready: %s", "; ".join(f"{s}: {w}" for s, w in why.items()))
            elif not why and last.get("") == not_serving:
                logger.warning("ready again")
            last = status
            await asyncio.sleep(0.5)

    async def _until(self, event: asyncio.Event) -> bool:
        """Wait for `event` unless a stop comes first; True when the event is set."""
        waiter = asyncio.ensure_future(event.wait())
        stopper = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()
        return event.is_set() and not self._stop.is_set()


def serve(settings: Settings, stages: list[str], options: ServiceOptions = ServiceOptions(), *,
          pipeline: Pipeline = PIPELINE) -> int:
    """Run a service host until SIGTERM/SIGINT; returns the process exit status."""
    return asyncio.run(ServiceHost(settings, stages, options, pipeline=pipeline).run())
