"""Six `osmose serve STAGE` processes against a real broker, as the e2e tests run them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from osmose.bus.kafka_client import BusConfig, ensure_topics
from osmose.bus.topics import declare_topics
from osmose.hosts.service_client import ServiceClient
from osmose.pipeline import PIPELINE, Pipeline
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import services_pb2 as spb
from tests.support import OSMOSE

STAGES = list(PIPELINE.names())


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def broker_reachable(bootstrap: str, timeout_s: float = 2.0) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def health_status(port: int, service: str = "", timeout_s: float = 2.0) -> int | None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            return health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s).status
        except grpc.RpcError:
            return None


class Cluster:
    """One process per stage, sharing a data directory (blob store included), a broker and
    a topic prefix. Each process runs in its own session so kill -9 takes its children too
    (as a container's death would)."""

    def __init__(self, *, bootstrap: str, prefix: str, data_dir: Path, log_dir: Path,
                 extra_env: dict[str, str] | None = None, claim_check_bytes: int = 4096) -> None:
        self.bootstrap = bootstrap
        # small by default, so most work items travel by claim check through the shared blob folder
        self.claim_check_bytes = claim_check_bytes
        self.prefix = prefix
        self.extra_env = dict(extra_env or {})
        self.data_dir = data_dir
        self.log_dir = log_dir
        ports = free_ports(2 * len(STAGES))
        self.ports = dict(zip(STAGES, ports[:len(STAGES)], strict=True))
        self.metrics_ports = dict(zip(STAGES, ports[len(STAGES):], strict=True))
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def front_door(self) -> str:
        return f"127.0.0.1:{self.ports['triage']}"

    @property
    def persister(self) -> str:
        return f"127.0.0.1:{self.ports['persister']}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OSMOSE_")}
        env.update(OSMOSE_KAFKA_BOOTSTRAP=self.bootstrap, OSMOSE_TOPIC_PREFIX=self.prefix, **self.extra_env)
        return env

    def start(self, stage: str) -> None:
        log = (self.log_dir / f"{stage}.log").open("ab")
        self.procs[stage] = subprocess.Popen(
            [str(OSMOSE), "serve", stage, "--insecure", "--host", "127.0.0.1", "--port", str(self.ports[stage]),
             "--metrics-port", str(self.metrics_ports[stage]),
             "--data-dir", str(self.data_dir), "--session-timeout", "6", "--drain-timeout", "20",
             "--claim-check-bytes", str(self.claim_check_bytes), "--log-format", "json"],
            env=self.env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()

    def start_all(self) -> None:
        for stage in STAGES:
            self.start(stage)

    def wait_serving(self, stages: list[str] | None = None, timeout_s: float = 240.0) -> None:
        pending = list(stages or STAGES)
        deadline = time.monotonic() + timeout_s
        while pending:
            for stage in list(pending):
                proc = self.procs[stage]
                if proc.poll() is not None:
                    raise AssertionError(f"{stage} exited with {proc.returncode}:\n{self.log_tail(stage)}")
                if health_status(self.ports[stage]) == health_pb2.HealthCheckResponse.SERVING:
                    pending.remove(stage)
            if pending and time.monotonic() > deadline:
                raise AssertionError(f"not serving after {timeout_s:.0f} s: {pending}\n"
                                     + "\n".join(self.log_tail(s) for s in pending))
            if pending:
                time.sleep(0.25)

    def kill9(self, stage: str) -> None:
        proc = self.procs[stage]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def terminate(self, stage: str, timeout_s: float = 90.0, *, signal_it: bool = True) -> int:
        """SIGTERM (once: a second one would interrupt the drain) and the exit status."""
        proc = self.procs[stage]
        if signal_it and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            return -9
        return proc.returncode

    def stop_all(self) -> dict[str, int]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        return {stage: self.terminate(stage, signal_it=False) for stage in list(self.procs)}

    def log_tail(self, stage: str, lines: int = 30) -> str:
        path = self.log_dir / f"{stage}.log"
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        return f"--- {stage} log ---\n" + "\n".join(text)


def wait_for_leaders(bootstrap: str, topics: list[str], timeout_s: float = 60.0) -> None:
    """Until every partition of `topics` has a leader: on a fresh broker, new topics elect
    theirs for a while, and a message produced meanwhile waits in retries (which a test
    about ordering would read as the consumer's fault)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, bootstrap_timeout_ms=5000)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            described = admin.describe_topics(topics)
            if len(described) == len(topics) and all(
                    t["error_code"] == 0 and t["partitions"]
                    and all(p["error_code"] == 0 and p["leader_id"] >= 0 for p in t["partitions"])
                    for t in described):
                return
            assert time.monotonic() < deadline, f"no leader for every partition of {topics}: {described}"
            time.sleep(0.1)
    finally:
        admin.close()


def delete_topics(bootstrap: str, prefix: str, pipeline: Pipeline = PIPELINE) -> None:
    """Best effort: leave the shared dev broker as it was."""
    from kafka import KafkaAdminClient

    from osmose.bus.topics import consumer_group, declare_topics

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, bootstrap_timeout_ms=5000)
    except Exception:
        return
    try:
        admin.delete_topics([s.name for s in declare_topics(prefix, pipeline)], raise_errors=False)
        groups = [consumer_group(prefix, stage) for stage in pipeline.names()]
        with contextlib.suppress(Exception):
            admin.delete_groups(groups)
    except Exception:
        pass
    finally:
        admin.close()


async def first_stage_entering(target: str, job_ids: list[str], wanted: Callable[[str], bool], *,
                               timeout_s: float = 180) -> str:
    """The first stage the job-event streams show entering one of the jobs (a stage for which
    `wanted` is true), returned while it holds that document; fails if every job ends first."""
    holding: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_event(event: spb.JobEvent) -> None:
        if event.event == epb.JOB_EVENT_ENTERED and wanted(event.stage) and not holding.done():
            holding.set_result(event.stage)

    async with ServiceClient(target) as client:
        watchers = [asyncio.create_task(client.watch(j, on_event=on_event, timeout_s=timeout_s)) for j in job_ids]
        try:
            async with asyncio.timeout(timeout_s):
                while not holding.done() and not all(w.done() for w in watchers):
                    await asyncio.wait([holding, *watchers], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
    assert holding.done(), "no wanted stage entered any of the jobs before they ended"
    return holding.result()


@contextlib.contextmanager
def running_cluster(bootstrap: str, prefix: str, root: Path, stages: list[str], *,
                    extra_env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """`stages` as `osmose serve` processes on the broker under `prefix`, serving; topics made and
    led before the processes start (a fresh broker elects leaders for a while); everything stopped
    and the topics deleted at exit. `extra_env`: OSMOSE_* settings of every process."""
    (root / "logs").mkdir(parents=True, exist_ok=True)
    cluster = Cluster(bootstrap=bootstrap, prefix=prefix, data_dir=root / "data", log_dir=root / "logs",
                      extra_env=extra_env)
    try:
        ensure_topics(BusConfig(bootstrap=bootstrap, prefix=prefix), declare_topics(prefix))
        wait_for_leaders(bootstrap, [t.name for t in declare_topics(prefix)])
        for stage in stages:
            cluster.start(stage)
        cluster.wait_serving(stages)
        yield cluster
    finally:
        cluster.stop_all()
        delete_topics(bootstrap, prefix)


async def until_serving(port: int, serving: asyncio.Task, timeout_s: float = 120) -> None:
    """Returns once the in-test service host `serving` (its `run()` task) answers SERVING on `port`."""
    deadline = time.monotonic() + timeout_s
    while await asyncio.to_thread(health_status, port) != health_pb2.HealthCheckResponse.SERVING:
        assert not serving.done(), "the host stopped before serving"
        assert time.monotonic() < deadline, "the host did not become ready"
        await asyncio.sleep(0.2)


async def job_when(client: ServiceClient, job_id: str, condition: Callable[[epb.Job], bool],
                   timeout_s: float = 120) -> epb.Job:
    """The job once `condition` holds, polled with a deadline (the front door's job table lags the
    broker a little)."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = await client.get_job(job_id)
        if condition(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id} never got there: {job}"
        await asyncio.sleep(0.1)
