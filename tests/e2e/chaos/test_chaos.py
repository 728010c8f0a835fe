"""The chaos suite (issue 13): the six stages as seven processes (two persisters) against the
real broker, a real Neo4j and the local TEI-protocol server; a burst of documents per fault,
the fault injected while the pipeline is busy; every run must end with every document
completed, the graph and vector counts of a clean run, no dead letter for a transient fault
and every process up. A table (fault, documents, dead letters, duplicates, recovery time) is
printed at the end.

Two sizes: the bounded core (the default, part of `make test`: shorter outages, one kill wave)
and the full suite (`make chaos`, OSMOSE_CHAOS=full: kill waves over every stage, broker down
45 s, Neo4j 60 s, TEI 120 s, Redis stopped, the blob folder's filesystem full).

Needs: the broker started by dev/kafka.sh (it is stopped and started again), Neo4j by
dev/neo4j.sh at OSMOSE_TEST_GRAPH_URI (idem), the `mount` of a tmpfs for the blob folder (root;
else that fault is reported as not run), redis-server on PATH for the Redis fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from osmose.bus.kafka_client import BusConfig
from osmose.hosts.dead_letters import list_dead_letters
from osmose.hosts.service import LIVENESS
from osmose.hosts.service_client import ServiceClient
from osmose.pipeline import PIPELINE
from osmose.v1 import envelope_pb2 as epb
from tests.e2e.cluster import (
    STAGES,
    broker_reachable,
    delete_topics,
    first_stage_entering,
    free_ports,
    health_status,
)
from tests.fixtures.builders import build_title_body_pptx
from tests.support import OSMOSE, REPO

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(3600)]

FULL = os.environ.get("OSMOSE_CHAOS") == "full"
DOCS = 8 if FULL else 6
OUTAGE_S = {"broker": 45, "neo4j": 60, "tei": 120, "redis": 30, "blob": 30} if FULL else \
    {"broker": 15, "neo4j": 20, "tei": 20, "redis": 10, "blob": 10}
# full: every stage but the front door (its clients reconnect; the other waves cover the commit protocol)
KILL_VICTIMS = ["vision", "extractor", "embedder", "miner", "persister", "persister2"] if FULL else ["embedder"]
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
PROCESSES = [*STAGES, "persister2"]
MAX_DELIVERIES = 3
#: tenants are named per run: Neo4j keeps the graphs of earlier runs
RUN = uuid.uuid4().hex[:6]
CLEAN = f"clean-{RUN}"


def _fail_or_skip(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Row:
    fault: str
    documents: int = 0
    completed: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    recovery_s: float | None = None
    note: str = ""


@dataclass
class Services:
    """How to stop and start the dependencies the way dev/*.sh started them."""

    env: dict[str, str]

    def run(self, script: str, command: str) -> None:
        # a session of its own: the server it starts must not share the test's process group (a
        # signal to the test run, e.g. from `timeout`, would stop the broker too)
        result = subprocess.run([str(REPO / "dev" / script), command], env=self.env, capture_output=True, text=True,
                                timeout=300, start_new_session=True)
        if result.returncode != 0 and command == "up" and "running" in self.status(script):
            # a loaded machine: the server started but took longer than the script waits
            port = self.env.get("KAFKA_PORT", "9092") if script == "kafka.sh" else self.env.get(
                "NEO4J_BOLT_PORT", "7687")
            deadline = time.monotonic() + 300
            while not broker_reachable(f"127.0.0.1:{port}", 1.0) and time.monotonic() < deadline:
                time.sleep(1)
            return
        assert result.returncode == 0, f"dev/{script} {command}: {result.stdout}{result.stderr}"

    def status(self, script: str) -> str:
        return subprocess.run([str(REPO / "dev" / script), "status"], env=self.env, capture_output=True,
                              text=True).stdout


class ChaosCluster:
    """Seven `osmose serve` processes (persister twice) plus a TEI-protocol server."""

    def __init__(self, *, root: Path, bootstrap: str, prefix: str, graph_uri: str, blob_dir: Path,
                 redis_url: str | None) -> None:
        self.root, self.bootstrap, self.prefix = root, bootstrap, prefix
        self.graph_uri, self.blob_dir = graph_uri, blob_dir
        ports = free_ports(2 * len(PROCESSES) + 1)
        self.ports = dict(zip(PROCESSES, ports[:len(PROCESSES)], strict=True))
        self.metrics = dict(zip(PROCESSES, ports[len(PROCESSES):-1], strict=True))
        self.tei_port = ports[-1]
        self.redis_url = redis_url
        self.procs: dict[str, subprocess.Popen] = {}
        self.tei: subprocess.Popen | None = None
        (root / "logs").mkdir(parents=True, exist_ok=True)

    def data_dir(self, name: str) -> Path:
        # the persisters keep their own vector folder (Qdrant local mode has one writer); the
        # other stages share one (caches); everyone shares the blob folder and the graph
        return self.root / ("data-p2" if name == "persister2" else "data-p1" if name == "persister" else "data")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OSMOSE_")}
        env.update(OSMOSE_KAFKA_BOOTSTRAP=self.bootstrap, OSMOSE_TOPIC_PREFIX=self.prefix,
                   OSMOSE_GRAPH_URI=self.graph_uri, OSMOSE_BLOB_DIR=str(self.blob_dir),
                   OSMOSE_TEI_URL=f"http://127.0.0.1:{self.tei_port}",
                   OSMOSE_GRAPH_PASSWORD=os.environ.get("OSMOSE_GRAPH_PASSWORD", "osmose-dev-password"),
                   OSMOSE_MAX_DELIVERIES=str(MAX_DELIVERIES), OSMOSE_OUTAGE_RETRY_CAP_S="5")
        if self.redis_url:
            env["OSMOSE_CACHE_URL"] = self.redis_url
        return env

    def start_tei(self) -> None:
        log = (self.root / "logs" / "tei.log").open("ab")
        self.tei = subprocess.Popen([sys.executable, "-m", "loadtests.fakeservers", "tei", "--port", str(self.tei_port),
                                     "--time-scale", "0"], cwd=REPO, stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 60
        while not broker_reachable(f"127.0.0.1:{self.tei_port}", 0.5):
            assert self.tei.poll() is None and time.monotonic() < deadline, "the TEI server did not start"
            time.sleep(0.2)

    def stop_tei(self) -> None:
        if self.tei is not None and self.tei.poll() is None:
            os.killpg(self.tei.pid, signal.SIGKILL)
            self.tei.wait(10)

    def start(self, name: str) -> None:
        stage = "persister" if name == "persister2" else name
        log = (self.root / "logs" / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [str(OSMOSE), "serve", stage, "--insecure", "--host", "127.0.0.1", "--port", str(self.ports[name]),
             "--metrics-port", str(self.metrics[name]), "--data-dir", str(self.data_dir(name)),
             "--session-timeout", "6", "--drain-timeout", "20", "--claim-check-bytes", "4096", "--log-format",
             "json"], env=self.env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()

    def wait_serving(self, names: list[str] | None = None, timeout_s: float = 300.0) -> None:
        pending = list(names or PROCESSES)
        deadline = time.monotonic() + timeout_s
        while pending:
            for name in list(pending):
                proc = self.procs[name]
                assert proc.poll() is None, f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}"
                if health_status(self.ports[name]) == SERVING:
                    pending.remove(name)
            assert not pending or time.monotonic() < deadline, f"not serving after {timeout_s:.0f} s: {pending}"
            time.sleep(0.25)

    def down(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def kill9(self, name: str) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(30)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill9(name)
        self.stop_tei()

    def log_tail(self, name: str, lines: int = 25) -> str:
        path = self.root / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    @property
    def front_door(self) -> str:
        return f"127.0.0.1:{self.ports['triage']}"


@dataclass
class Suite:
    cluster: ChaosCluster
    services: Services
    decks: list[Path]
    redis: subprocess.Popen | None
    rows: list[Row] = field(default_factory=list)
    clean: dict[str, int] = field(default_factory=dict)
    tenants: list[str] = field(default_factory=list)

    @property
    def bus(self) -> BusConfig:
        return BusConfig(bootstrap=self.cluster.bootstrap, prefix=self.cluster.prefix)


@pytest.fixture(scope="module")
def suite(kafka_bootstrap: str, topic_prefix: str, tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[Suite]:
    env = dict(os.environ)
    kafka_status = subprocess.run([str(REPO / "dev" / "kafka.sh"), "status"], env=env, capture_output=True, text=True)
    if kafka_status.returncode != 0 or "running (pid" not in kafka_status.stdout or \
            f":{kafka_bootstrap.rpartition(':')[2]}" not in kafka_status.stdout:
        _fail_or_skip("the chaos suite stops the broker: start it with dev/kafka.sh (KAFKA_PORT as the bootstrap)")
    graph_uri = os.environ.get("OSMOSE_TEST_GRAPH_URI") or f"bolt://127.0.0.1:{os.environ.get('NEO4J_BOLT_PORT', '7687')}"
    if not broker_reachable(graph_uri.rpartition("/")[2]):
        _fail_or_skip(f"no Neo4j at {graph_uri}: start it with dev/neo4j.sh (NEO4J_BOLT_PORT)")
    env.setdefault("NEO4J_BOLT_PORT", graph_uri.rpartition(":")[2])
    root = tmp_path_factory.mktemp("chaos")
    blob_dir = root / "blobs"
    blob_dir.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(blob_dir)],
                             capture_output=True).returncode == 0
    redis = None
    redis_url = None
    if shutil.which("redis-server"):
        [redis_port] = free_ports(1)
        redis = _start_redis(root, redis_port)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
    prefix = f"{topic_prefix}-chaos"
    cluster = ChaosCluster(root=root, bootstrap=kafka_bootstrap, prefix=prefix, graph_uri=graph_uri,
                           blob_dir=blob_dir, redis_url=redis_url)
    decks = [build_title_body_pptx(root, name=f"burst-{i:02d}.pptx", title=f"Chaos deck {i}",
                                   body=[f"Region {i} migrates {i * 3} services to the new platform",
                                         f"Team {i % 3} owns the cutover of cluster {i}"]) for i in range(DOCS)]
    suite = Suite(cluster=cluster, services=Services(env), decks=decks, redis=redis)
    suite.blob_mounted = mounted  # type: ignore[attr-defined]
    cluster.start_tei()
    for name in PROCESSES:
        cluster.start(name)
    try:
        cluster.wait_serving()
        yield suite
    finally:
        cluster.stop_all()
        mismatches = _final_vector_check(suite) if suite.tenants else []
        _print_table(request, suite.rows)
        for server in {id(p): p for p in (redis, suite.redis) if p is not None}.values():
            server.kill()   # the one started first and, after the Redis fault, the one restarted
            server.wait(10)
        if mounted:
            subprocess.run(["umount", "-l", str(blob_dir)], capture_output=True)
        delete_topics(kafka_bootstrap, prefix)
    assert not mismatches, f"vector counts differ from the clean run's: {mismatches}"


def _start_redis(root: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(root)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 20
    while not broker_reachable(f"127.0.0.1:{port}", 0.5):
        assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.1)
    return proc


def _print_table(request: pytest.FixtureRequest, rows: list[Row]) -> None:
    lines = [f"chaos suite ({'full' if FULL else 'core'}):",
             f"{'fault':<34} {'documents':>9} {'completed':>9} {'dead letters':>12} {'duplicates':>10} "
             f"{'recovery s':>10}  note"]
    for r in rows:
        recovery = f"{r.recovery_s:.1f}" if r.recovery_s is not None else "-"
        lines.append(f"{r.fault:<34} {r.documents:>9} {r.completed:>9} {r.dead_letters:>12} {r.duplicates:>10} "
                     f"{recovery:>10}  {r.note}")
    text = "\n".join(lines)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n" + text, flush=True)


def _final_vector_check(suite: Suite) -> list[str]:
    """After the processes stopped: the points of each tenant over both persisters' vector
    folders (the union, by point id) against the clean run's; points stored by both persisters
    are the same points (one Qdrant server would hold them once) and are noted, not counted."""
    from qdrant_client import QdrantClient

    from osmose.stores.qdrant_store import _read_local_index

    points: dict[str, set[str]] = {}
    both = 0
    for name in ("persister", "persister2"):
        folder = suite.cluster.data_dir(name) / "qdrant"
        if not folder.exists():
            continue
        client = QdrantClient(path=str(folder))
        try:
            for collection in client.get_collections().collections:
                if not collection.name.startswith("osmose_chunks"):
                    continue
                for (tenant, _), ids in _read_local_index(client, collection.name).items():
                    held = points.setdefault(tenant, set())
                    both += len(held & ids)
                    held |= ids
        finally:
            client.close()
    clean = len(points.get(CLEAN, set()))
    mismatches = []
    for row, tenant in zip(suite.rows, suite.tenants, strict=False):
        count = len(points.get(tenant, set()))
        row.note += f"; vectors {count}/{clean}"
        if row.completed == row.documents and count != clean:
            mismatches.append(f"{row.fault}: {count}")
    if not clean:
        mismatches.append("the clean run stored no vector")
    suite.rows.append(Row("(points held by both persisters)", note=f"{both} (same ids: one Qdrant server holds "
                                                                    "them once)"))
    return mismatches


async def _submit(suite: Suite, tenant: str) -> list[str]:
    async with ServiceClient(suite.cluster.front_door, connect_timeout_s=60) as client:
        return [(await client.submit(deck, tenant=tenant)).job_id for deck in suite.decks]


async def _wait_all(suite: Suite, job_ids: list[str], timeout_s: float) -> list[epb.Job]:
    """Every job's final snapshot; the front door may be restarting or the broker down
    meanwhile, so this polls and reconnects."""
    deadline = time.monotonic() + timeout_s
    final: dict[str, epb.Job] = {}
    while len(final) < len(job_ids):
        assert time.monotonic() < deadline, f"{len(job_ids) - len(final)} job(s) not finished in {timeout_s:.0f} s"
        with contextlib.suppress(Exception):
            async with ServiceClient(suite.cluster.front_door, connect_timeout_s=5) as client:
                for job_id in job_ids:
                    if job_id not in final:
                        job = await client.get_job(job_id)
                        if job.state in (epb.JOB_STATE_SUCCEEDED, epb.JOB_STATE_FAILED, epb.JOB_STATE_CANCELLED):
                            final[job_id] = job
        if len(final) < len(job_ids):
            await asyncio.sleep(1.0)
    return [final[j] for j in job_ids]


async def _graph_stats(suite: Suite, tenant: str) -> dict[str, int]:
    async with ServiceClient(f"127.0.0.1:{suite.cluster.ports['persister']}", connect_timeout_s=30) as client:
        stats = await client.stats(tenant)
    return {k: v for k, v in stats.get(tenant, {}).items() if k != "chunks"}


def _dead_letters(suite: Suite, tenant: str) -> list[dict]:
    letters = []
    for stage in PIPELINE.names():
        letters += [e.as_dict() for e in list_dead_letters(suite.bus, stage) if e.letter.envelope.tenant == tenant]
    return letters


async def _until_entered(suite: Suite, job_ids: list[str], stages: set[str], timeout_s: float = 180,
                         deliveries: int = 1) -> str:
    """The first of `stages` the job table shows holding one of the jobs (entered, not finished;
    taken at least `deliveries` times), polled so a restarting front door does not matter."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            async with ServiceClient(suite.cluster.front_door, connect_timeout_s=5) as client:
                while time.monotonic() < deadline:
                    for job_id in job_ids:
                        job = await client.get_job(job_id)
                        if job.event in (epb.JOB_EVENT_ENTERED, epb.JOB_EVENT_RETRYING) and job.stage in stages \
                                and job.deliveries >= deliveries:
                            return job.stage
                    await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    raise AssertionError(f"none of {sorted(stages)} held one of the jobs within {timeout_s:.0f} s")


async def _run(suite: Suite, fault: str, inject: Callable[[list[str]], AsyncIterator[None]] | None, *,
               transient: bool = True, timeout_s: float = 600) -> Row:
    """A burst under a fresh tenant; `inject` (an async generator) runs the fault while the
    burst is in flight and yields once the fault is over; then every job must end well."""
    tenant = CLEAN if fault == "none (clean run)" else f"chaos{len(suite.rows)}-{RUN}"
    row = Row(fault, documents=len(suite.decks))
    suite.rows.append(row)
    suite.tenants.append(tenant)
    logs = suite.cluster.root / "logs"
    sizes = {f.name: f.stat().st_size for f in logs.glob("*.log")}
    job_ids = await _submit(suite, tenant)
    ended_at = time.monotonic()
    if inject is not None:
        async for _ in inject(job_ids):
            ended_at = time.monotonic()
    jobs = await _wait_all(suite, job_ids, timeout_s)
    row.recovery_s = time.monotonic() - ended_at if inject is not None else None
    row.completed = sum(j.state == epb.JOB_STATE_SUCCEEDED for j in jobs)
    row.dead_letters = len(_dead_letters(suite, tenant))
    stats = await _graph_stats(suite, tenant)
    if fault == "none (clean run)":
        suite.clean = stats
    else:
        row.duplicates = sum(max(0, stats.get(k, 0) - v) for k, v in suite.clean.items())
        row.note = "graph = clean" if stats == suite.clean else f"graph {stats} vs clean {suite.clean}"
    # evidence the fault was felt: documents that waited for a dependency, publishes retried
    waited = retried = 0
    for f in logs.glob("*.log"):
        with f.open("rb") as fh:
            fh.seek(sizes.get(f.name, 0))
            text = fh.read().decode(errors="replace")
        waited += text.count("waits, a dependency is down")
        retried += text.count("; retrying in ")
    if waited or retried:
        row.note += f"; waits {waited}, publish retries {retried}"
    down = suite.cluster.down()
    assert not down, f"processes down after {fault}: {down}"
    assert row.completed == row.documents, [(j.job_id, j.error) for j in jobs if j.state != epb.JOB_STATE_SUCCEEDED]
    if transient:
        assert row.dead_letters == 0, _dead_letters(suite, tenant)
    if suite.clean and fault != "none (clean run)":
        assert stats == suite.clean, row.note
    return row


async def test_clean_run(suite: Suite) -> None:
    await _run(suite, "none (clean run)", None)
    assert suite.clean["documents"] == DOCS


@pytest.mark.parametrize("victim", KILL_VICTIMS)
async def test_kill_9_of_a_busy_stage(suite: Suite, victim: str) -> None:
    """A burst per wave; the victim is killed (SIGKILL to its process group) as soon as the job
    events show its stage holding one of the burst's documents, then restarted."""
    stage = "persister" if victim == "persister2" else victim

    async def inject(job_ids: list[str]) -> AsyncIterator[None]:
        await _watch_entered(suite, job_ids, stage)
        suite.cluster.kill9(victim)
        suite.cluster.start(victim)
        await asyncio.to_thread(suite.cluster.wait_serving, [victim])
        yield

    await _run(suite, f"kill -9 {victim} (busy)", inject)


async def _watch_entered(suite: Suite, job_ids: list[str], stage: str | set[str], timeout_s: float = 180) -> None:
    """Returns when the job-event stream shows `stage` (one of them) entering one of the jobs."""
    stages = {stage} if isinstance(stage, str) else stage
    await first_stage_entering(suite.cluster.front_door, job_ids, stages.__contains__, timeout_s=timeout_s)


async def test_tei_down_then_back(suite: Suite) -> None:
    """The embedder waits (not ready, still live), dead-letters nothing and carries on."""
    seen: dict[str, bool] = {}

    async def inject(job_ids: list[str]) -> AsyncIterator[None]:
        await _watch_entered(suite, job_ids, {"extractor", "embedder"})
        suite.cluster.stop_tei()
        deadline = time.monotonic() + OUTAGE_S["tei"]
        port = suite.cluster.ports["embedder"]
        while time.monotonic() < deadline:
            status = await asyncio.to_thread(health_status, port)
            live = await asyncio.to_thread(health_status, port, LIVENESS)
            if status == NOT_SERVING:
                seen["not_ready"] = True
            if live == SERVING:
                seen["live"] = True
            await asyncio.sleep(1.0)
        suite.cluster.start_tei()
        yield

    row = await _run(suite, f"TEI down {OUTAGE_S['tei']} s", inject)
    row.note += f"; embedder not ready during: {seen.get('not_ready', False)}, live: {seen.get('live', False)}"
    assert seen.get("live"), "the embedder's liveness must stay SERVING"
    assert seen.get("not_ready"), "the embedder must report NOT_SERVING while TEI is down"


async def test_broker_stopped_mid_burst(suite: Suite) -> None:
    async def inject(job_ids: list[str]) -> AsyncIterator[None]:
        await _watch_entered(suite, job_ids, {"vision", "extractor", "embedder"})
        await asyncio.to_thread(suite.services.run, "kafka.sh", "down")
        await asyncio.sleep(OUTAGE_S["broker"])
        await asyncio.to_thread(suite.services.run, "kafka.sh", "up")
        yield

    await _run(suite, f"broker stopped {OUTAGE_S['broker']} s", inject)


@pytest.mark.skipif(not FULL, reason="full suite only (make chaos)")
async def test_neo4j_stopped(suite: Suite) -> None:
    async def inject(job_ids: list[str]) -> AsyncIterator[None]:
        await _watch_entered(suite, job_ids, {"embedder", "miner"})
        await asyncio.to_thread(suite.services.run, "neo4j.sh", "down")
        await asyncio.sleep(OUTAGE_S["neo4j"])
        await asyncio.to_thread(suite.services.run, "neo4j.sh", "up")
        yield

    await _run(suite, f"Neo4j stopped {OUTAGE_S['neo4j']} s", inject)


@pytest.mark.skipif(not FULL, reason="full suite only (make chaos)")
async def test_redis_stopped(suite: Suite) -> None:
    if suite.redis is None:
        pytest.skip("no redis-server on PATH (apt-get install redis-server)")

    async def inject(job_ids: list[str]) -> AsyncIterator[None]:
        assert suite.redis is not None and suite.cluster.redis_url
        await _watch_entered(suite, job_ids, {"extractor", "embedder"})
        suite.redis.kill()
        suite.redis.wait(10)
        await asyncio.sleep(OUTAGE_S["redis"])
        suite.redis = _start_redis(suite.cluster.root, int(suite.cluster.redis_url.rsplit(":", 1)[1].split("/")[0]))
        yield

    await _run(suite, f"Redis stopped {OUTAGE_S['redis']} s", inject)


@pytest.mark.skipif(not FULL, reason="full suite only (make chaos)")
async def test_blob_folder_full(suite: Suite) -> None:
    if not getattr(suite, "blob_mounted", False):
        pytest.skip("cannot mount a tmpfs for the blob folder here (needs root)")
    filler = suite.cluster.blob_dir / "filler"

    async def inject(job_ids: list[str]) -> AsyncIterator[None]:
        await _watch_entered(suite, job_ids, {"triage", "vision"})
        with contextlib.suppress(OSError), filler.open("wb") as fh:   # ENOSPC ends it: the filesystem is full
            while True:
                fh.write(b"\0" * (1 << 20))
        await asyncio.sleep(OUTAGE_S["blob"])
        filler.unlink()
        yield

    await _run(suite, f"blob filesystem full {OUTAGE_S['blob']} s", inject)


async def test_poison_messages_end_failed_while_the_stages_serve_on(suite: Suite) -> None:
    """A 600 KB `file` header (refused by the front door; so also sent straight to a stage's
    topic, past the door, as a message whose snapshots would exceed the producer's limit), and a
    document whose process is killed each time it holds it: all end failed with a dead letter;
    the stages keep serving (a burst after them completes)."""
    from osmose.bus.envelope import encode, headers, message_key, now_ms
    from osmose.bus.kafka_client import Producer
    from osmose.bus.topics import input_topic
    from osmose.bus.trace import TraceContext
    from osmose.v1 import pipeline_pb2 as ppb

    tenant = f"poison-{RUN}"
    row = Row("poison: 600 KB header + killed x3", documents=3)
    suite.rows.append(row)
    suite.tenants.append(tenant)
    notes = []
    async with ServiceClient(suite.cluster.front_door, connect_timeout_s=30) as client:
        try:
            door = (await client.submit(suite.decks[0], tenant=tenant, file="x" * 600_000)).job_id
        except Exception as exc:   # the front door bounds header fields: an end too
            door = None
            notes.append(f"door refused the header ({str(exc)[:40]})")
    # past the door: the same header straight onto the embedder's topic
    raw_job = str(uuid.uuid4())
    item = ppb.WorkItem(job_id=raw_job, tenant=tenant)
    envelope = epb.Envelope(job_id=raw_job, doc_id="f" * 32, tenant=tenant, stage="embedder", created_at_ms=now_ms(),
                            file="x" * 600_000, payload=item.SerializeToString())
    producer = Producer(suite.bus)
    try:
        await asyncio.to_thread(producer.publish_sync, input_topic(suite.cluster.prefix, "embedder", "bulk"),
                                key=message_key(envelope), value=encode(envelope),
                                headers=headers(envelope, TraceContext.new()))
    finally:
        producer.close()
    # TEI holds every request, so the embedder holds the next document until it is killed
    tei = f"http://127.0.0.1:{suite.cluster.tei_port}"
    subprocess.run([sys.executable, "-m", "loadtests.fakeservers", "faults", tei, "hang:seconds=600"], cwd=REPO,
                   check=True, capture_output=True)
    try:
        async with ServiceClient(suite.cluster.front_door, connect_timeout_s=30) as client:
            victim = (await client.submit(suite.decks[1], tenant=tenant)).job_id
        for death in range(MAX_DELIVERIES):
            await _until_entered(suite, [victim], {"embedder"}, deliveries=death + 1)
            suite.cluster.kill9("embedder")
            suite.cluster.start("embedder")
            await asyncio.to_thread(suite.cluster.wait_serving, ["embedder"])
        ids = [j for j in (door, victim) if j]
        jobs = await _wait_all(suite, ids, 300)
    finally:
        subprocess.run([sys.executable, "-m", "loadtests.fakeservers", "faults", tei], cwd=REPO, capture_output=True)
    assert all(j.state == epb.JOB_STATE_FAILED for j in jobs), [(j.state, j.error) for j in jobs]
    deadline = time.monotonic() + 60
    letters: dict[str, dict] = {}
    while time.monotonic() < deadline and not {victim, raw_job} <= set(letters):
        letters = {d["job_id"]: d for d in _dead_letters(suite, tenant)}
        await asyncio.sleep(1)
    assert letters[victim]["reason"] == "delivery-limit" and letters[victim]["stage"] == "embedder"
    assert letters[raw_job]["reason"] == "header-too-large" and len(letters[raw_job]["file"]) < 2000
    if door:
        assert letters[door]["reason"] == "header-too-large"
    row.dead_letters = len(letters)
    row.note = "; ".join([*notes, f"reasons: {sorted(d['reason'] for d in letters.values())}"])
    assert not suite.cluster.down()
    await _run(suite, "burst after the poison messages", None)
