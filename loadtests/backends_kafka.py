"""The backlog of `make bench-backends` through the six `osmose serve` processes over Kafka.

One process per stage (``tests/e2e/cluster.py``, as the e2e tests and the soak run them) on a
real broker (``dev/kafka.sh``: ``OSMOSE_KAFKA_BOOTSTRAP``, else ``127.0.0.1:$KAFKA_PORT``), a
fresh topic prefix, a shared data folder (blob store, embedded stores, caches: cold), the
default claim-check size, and the model servers of the scenario. The documents are
submitted to the front door largest file first (the in-process host's start order; the
submission time is the order of their model calls), each watched as soon as it is
submitted; the wall time runs from the first submission to the last job's end.

Besides the reports (the same JSON line `osmose ingest` prints) it returns what tells where
the time goes on this path: the work in flight each stage's consumer took (from the
processes' start line), the CPU seconds of the six processes and their children, and for
each stage the seconds jobs waited between the previous stage's end and its start (consumer
poll and commit, claim-check I/O, and the queue for the stage's in-flight slots), summed over
the jobs, from the job events the front door streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from osmose.hosts.report import IngestReport
from osmose.hosts.service_client import ServiceClient
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import services_pb2 as spb
from tests.e2e.cluster import Cluster, broker_reachable, delete_topics

__all__ = ["KafkaRun", "bootstrap", "run_backlog"]

_IN_FLIGHT = re.compile(r"in flight ([a-z]+ \d+)")


def bootstrap() -> str:
    return os.environ.get("OSMOSE_KAFKA_BOOTSTRAP") or f"127.0.0.1:{os.environ.get('KAFKA_PORT') or 9092}"


@dataclass
class KafkaRun:
    reports: list[IngestReport]
    wall_s: float
    cpu_s: float
    in_flight: dict[str, int]
    #: stage -> seconds jobs waited before it started (after the previous stage ended, or the submission)
    waited_s: dict[str, float] = field(default_factory=dict)
    submit_s: float = 0.0
    started: float = 0.0  # perf_counter at the first submission


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    ctimes = child.cpu_times()
                    total += ctimes.user + ctimes.system
    return total


def _report(job: epb.Job) -> IngestReport:
    if job.report_json:
        return IngestReport(**json.loads(job.report_json))
    return IngestReport(file=job.file, status="error", error=job.error or epb.JobState.Name(job.state))


class _Waits:
    """From each job's events: how long it waited before each stage started."""

    def __init__(self) -> None:
        self.ready_ms: dict[str, int] = {}            # job -> when its next stage could start
        self.waited: dict[str, float] = defaultdict(float)

    def __call__(self, event: spb.JobEvent) -> None:
        job = event.job
        if event.event == epb.JOB_EVENT_QUEUED:
            self.ready_ms.setdefault(job.job_id, job.updated_at_ms)
        elif event.event == epb.JOB_EVENT_ENTERED and job.deliveries <= 1:
            ready = self.ready_ms.pop(job.job_id, None)
            if ready is not None:
                self.waited[event.stage or job.stage] += max(0, job.updated_at_ms - ready) / 1000
        elif event.event == epb.JOB_EVENT_FINISHED:
            self.ready_ms[job.job_id] = job.updated_at_ms


async def _drive(front_door: str, files: list[Path], *, tier: pb.Tier, job_timeout_s: float,
                 waits: _Waits) -> tuple[list[IngestReport], float, float, float]:
    async with ServiceClient(front_door, connect_timeout_s=60) as client:
        watches: dict[int, asyncio.Task[epb.Job]] = {}
        t0 = time.perf_counter()
        for i in sorted(range(len(files)), key=lambda i: -files[i].stat().st_size):
            response = await client.submit(files[i], tenant="bench", tier=tier)
            watches[i] = asyncio.create_task(client.watch(response.job_id, on_event=waits, timeout_s=job_timeout_s))
        submitted = time.perf_counter() - t0
        jobs = await asyncio.gather(*(watches[i] for i in range(len(files))))
        return [_report(job) for job in jobs], time.perf_counter() - t0, submitted, t0


def run_backlog(files: list[Path], *, tier: pb.Tier, llm_url: str, tei_url: str, router: Path,
                job_timeout_s: float = 3600.0) -> KafkaRun:
    """The backlog through six `osmose serve` processes; the model servers are the caller's."""
    broker = bootstrap()
    if not broker_reachable(broker):
        raise SystemExit(f"bench-backends: no Kafka broker at {broker} for the Kafka scenario (`make kafka-up` "
                         "with KAFKA_PORT, or set OSMOSE_KAFKA_BOOTSTRAP)")
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="osmose-bench-kafka-") as tmp:
        root = Path(tmp)
        (root / "logs").mkdir()
        env = {"OSMOSE_LLM_URL": llm_url, "OSMOSE_VISION_URL": llm_url, "OSMOSE_TEI_URL": tei_url,
               "OSMOSE_ROUTER_CONFIG": str(router)}
        if os.environ.get("BENCH_MAX_IN_FLIGHT"):  # the fixed number, to compare with the derived one
            env["OSMOSE_MAX_IN_FLIGHT"] = os.environ["BENCH_MAX_IN_FLIGHT"]
        if os.environ.get("BENCH_LOOKAHEAD"):  # "false": the staged service run, to compare with look-aheads
            env["OSMOSE_LOOKAHEAD"] = os.environ["BENCH_LOOKAHEAD"]
        cluster = Cluster(bootstrap=broker, prefix=prefix, data_dir=root / "data", log_dir=root / "logs",
                          extra_env=env, claim_check_bytes=256 * 1024)
        cluster.start_all()
        try:
            cluster.wait_serving()
            procs = [psutil.Process(p.pid) for p in cluster.procs.values()]
            cpu0 = _cpu(procs)
            waits = _Waits()
            reports, wall, submitted, started = asyncio.run(_drive(cluster.front_door, files, tier=tier,
                                                          job_timeout_s=job_timeout_s, waits=waits))
            cpu = _cpu(procs) - cpu0
            in_flight: dict[str, int] = {}
            for stage in cluster.procs:
                text = (root / "logs" / f"{stage}.log").read_text(errors="replace")
                for match in _IN_FLIGHT.finditer(text):
                    name, count = match.group(1).split()
                    in_flight[name] = int(count)
        finally:
            codes = cluster.stop_all()
            delete_topics(broker, prefix)
        failed_exits = {s: c for s, c in codes.items() if c != 0}
        if failed_exits:
            print("\n".join(cluster.log_tail(s) for s in failed_exits))
            raise SystemExit(f"bench-backends: stage processes exited with {failed_exits}")
    return KafkaRun(reports=reports, wall_s=wall, cpu_s=cpu, in_flight=in_flight,
                    waited_s={s: round(v, 1) for s, v in waits.waited.items()}, submit_s=round(submitted, 2),
                    started=started)
