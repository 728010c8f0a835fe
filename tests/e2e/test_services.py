"""Distributed mode end to end: the six stages as six `osmose serve STAGE` processes over a
real Kafka broker, driven through the gRPC front door.

One cluster serves the whole module (starting six processes is the expensive part);
each test uses its own tenant so they do not see each other's data. Documents are small
corpus files so the module stays around two minutes on two cores.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from osmose.hosts.service_client import ServiceClient
from osmose.pipeline import PIPELINE
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import services_pb2 as spb
from tests.e2e.cluster import STAGES, Cluster, delete_topics, first_stage_entering, health_status, job_when
from tests.fixtures.builders import build_title_body_pptx
from tests.support import CliResult, run_osmose

pytestmark = [pytest.mark.anyio, pytest.mark.corpus, pytest.mark.slow, pytest.mark.timeout(900)]

GOOD = ["pptx/pptx-table-cells.pptx", "pptx/docling-powerpoint-sample.pptx", "pdf/pypdfsf-google-doc.pdf",
        "pptx/docling-pptx-chart.pptx"]
TENANT_FILES = {"acme": GOOD, "globex": GOOD[1:3]}
BAD = ["bad/pypdf-02voc-1byte.pdf", "bad/owasp-2010-rc1-html-as-pptx.pptx", "bad/poi-password-protected.ppt",
       "bad/pdfjs-poppler-67295-0.pdf", "bad/truncated-sql2019-modern-data-platform.pptx"]
SERVING = health_pb2.HealthCheckResponse.SERVING


@dataclass
class Baseline:
    reports: dict[str, list[dict]]
    stats: dict[str, dict[str, int]]


@pytest.fixture(scope="module")
def cluster(kafka_bootstrap: str, topic_prefix: str, corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cluster")
    (root / "logs").mkdir()
    cluster = Cluster(bootstrap=kafka_bootstrap, prefix=topic_prefix, data_dir=root / "data", log_dir=root / "logs")
    cluster.start_all()
    try:
        cluster.wait_serving()
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture(scope="module")
def baseline(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    """The in-process result (`osmose ingest`) for the same files and tenants, in order."""
    data = tmp_path_factory.mktemp("inprocess")
    reports = {}
    for tenant, files in TENANT_FILES.items():
        result = run_osmose("ingest", *(corpus / f for f in files), "--tenant", tenant, "--json", data_dir=data)
        assert result.code == 0, result.stderr
        reports[tenant] = result.json_lines()
    stats = json.loads(run_osmose("stats", "--json", data_dir=data).stdout)
    return Baseline(reports, stats)


def _without_seconds(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "seconds"}


def _osmose(cluster: Cluster, *args: object, timeout: float = 300) -> CliResult:
    return run_osmose(*args, env={"OSMOSE_KAFKA_BOOTSTRAP": cluster.bootstrap,
                                  "OSMOSE_TOPIC_PREFIX": cluster.prefix}, timeout=timeout)


async def _submit_all(target: str, paths: list[Path], *, tenant: str, priority: int = epb.PRIORITY_BULK
                      ) -> list[str]:
    async with ServiceClient(target) as client:
        return [(await client.submit(p, tenant=tenant, priority=priority)).job_id for p in paths]


async def _watch_all(target: str, job_ids: list[str], timeout_s: float = 300) -> list[epb.Job]:
    async with ServiceClient(target, connect_timeout_s=60) as client:
        return list(await asyncio.gather(*(client.watch(j, timeout_s=timeout_s) for j in job_ids)))


async def _wait_for(target: str, job_id: str, condition: Callable[[epb.Job], bool], timeout_s: float = 120
                    ) -> epb.Job:
    async with ServiceClient(target) as client:
        return await job_when(client, job_id, condition, timeout_s)


def test_every_process_is_healthy_and_lists_its_services_by_reflection(cluster: Cluster) -> None:
    common = {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
    for stage, port in cluster.ports.items():
        assert health_status(port) == SERVING
        assert health_status(port, PIPELINE[stage].grpc_service) == SERVING
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            database = ProtoReflectionDescriptorDatabase(channel)
            services = set(database.get_services())
            expected = {PIPELINE[stage].grpc_service, *common}
            if stage == "triage":
                expected.add("osmose.v1.IngestionService")
            if stage == "persister":
                expected.add("osmose.v1.QueryService")
            assert expected <= services, (stage, services)
            methods = {m.name for m in DescriptorPool(database).FindServiceByName(PIPELINE[stage].grpc_service).methods}
            assert "Process" in methods
            if stage == "persister":
                query = DescriptorPool(database).FindServiceByName("osmose.v1.QueryService")
                assert {m.name for m in query.methods} == {"Search", "Stats", "DeleteDocument", "DeleteTenant"}
            if stage == "triage":
                front = DescriptorPool(database).FindServiceByName("osmose.v1.IngestionService")
                assert {m.name for m in front.methods} == {"Submit", "GetJob", "WatchJob", "Cancel"}


def test_six_processes_give_exactly_the_in_process_result(cluster: Cluster, baseline: Baseline,
                                                          corpus: Path) -> None:
    for tenant, files in TENANT_FILES.items():   # in order, as the in-process run (same cache hits)
        result = run_osmose("submit", *(corpus / f for f in files), "--server", cluster.front_door,
                            "--tenant", tenant, "--wait", "--json", timeout=300)
        assert result.code == 0, result.stderr
        lines = result.json_lines()
        expected = baseline.reports[tenant]
        assert [_without_seconds(r) for r in lines] == [_without_seconds(r) for r in expected]
        assert [set(r["seconds"]) for r in lines] == [set(r["seconds"]) for r in expected]
        # the same keys in the same order: the very line `osmose ingest --json` prints
        assert [list(r) for r in lines] == [list(r) for r in expected]
    stats = json.loads(run_osmose("stats", "--server", cluster.persister, "--json").stdout)
    for tenant in TENANT_FILES:
        assert stats[tenant] == baseline.stats[tenant], tenant
    remote = run_osmose("search", "Population", "--server", cluster.persister, "--tenant", "acme", "--json")
    assert remote.code == 0, remote.stderr
    hits = json.loads(remote.stdout)
    assert hits and hits[0]["file"] == "pypdfsf-google-doc.pdf"
    assert set(hits[0]) == {"doc_id", "file", "slide", "score", "text", "concepts", "related"}


async def test_bad_files_fail_with_their_reason_and_a_dead_letter_while_good_ones_flow(
        cluster: Cluster, corpus: Path, tmp_path: Path) -> None:
    expected = run_osmose("ingest", *(corpus / f for f in BAD), "--json", data_dir=tmp_path).json_lines()
    paths = [corpus / f for f in BAD] + [corpus / GOOD[0]]
    job_ids = await _submit_all(cluster.front_door, paths, tenant="bad")
    jobs = await _watch_all(cluster.front_door, job_ids)
    *failed, good = jobs
    assert good.state == epb.JOB_STATE_SUCCEEDED, good.error
    for job, want in zip(failed, expected, strict=True):
        assert job.state == epb.JOB_STATE_FAILED
        assert want["status"] == "error"
        assert job.error == want["error"] and job.reason == want["error"].split(":")[0]
        assert _without_seconds(json.loads(job.report_json)) == _without_seconds(want)
    listed = _osmose(cluster, "dlq", "list", "triage", "--json")
    assert listed.code == 0, listed.stderr
    letters = {d["job_id"]: d for d in listed.json_lines()}
    for job in failed:
        letter = letters[job.job_id]
        assert letter["reason"] == job.reason and letter["error_class"].endswith("Error")
        assert letter["retryable"] is False and letter["attempts"] == 1 and letter["tenant"] == "bad"
    assert good.job_id not in letters

    # a replay re-drives the job: a permanent error fails it again, with a second dead letter
    replayed = _osmose(cluster, "dlq", "replay", "triage", "--job", failed[0].job_id)
    assert replayed.code == 0, replayed.stderr
    again = await _wait_for(cluster.front_door, failed[0].job_id,
                                  lambda j: j.replay == 1 and j.state == epb.JOB_STATE_FAILED)
    assert again.state == epb.JOB_STATE_FAILED and again.replay == 1 and again.error == failed[0].error
    relisted = [d for d in _osmose(cluster, "dlq", "list", "triage", "--json").json_lines()
                if d["job_id"] == failed[0].job_id]
    assert [d["replay"] for d in relisted] == [0, 1]


async def test_a_premium_document_is_not_queued_behind_a_bulk_backlog(cluster: Cluster, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Premium work overtakes the bulk backlog at every stage. Measured against two figures of
    the same run rather than an order of arrivals: `alone`, the latency of a premium deck on the
    idle pipeline, and `drained`, the time the bulk backlog takes to drain after the premium
    submit - what the premium job would wait if it queued behind the backlog (first in, first
    out, it would end last). The premium job must end nearer the first figure than the second."""
    def deck(name: str, title: str, body: list[str]) -> Path:
        return build_title_body_pptx(tmp_path, name=name, title=title, body=body)

    backlog = [deck(f"onboarding-{i:02d}.pptx", f"Onboarding deck {i}",
                    [f"Migration wave {i} covers {i * 7} applications",
                     f"Cutover window {i} needs sign-off from region {i % 5}"]) for i in range(16)]
    solo = deck("premium-alone.pptx", "Quarterly review", ["Premium customer renewal", "Answer needed this week"])
    premium = deck("premium.pptx", "Board update", ["Premium customer escalation", "Answer needed today"])
    finished: dict[str, float] = {}
    async with ServiceClient(cluster.front_door) as client:
        async def follow(job_id: str) -> None:
            job = await client.watch(job_id, timeout_s=300)
            assert job.state == epb.JOB_STATE_SUCCEEDED, job.error
            finished[job_id] = time.monotonic()

        started = time.monotonic()
        await follow((await client.submit(solo, tenant="burst", priority=epb.PRIORITY_HIGH)).job_id)
        alone = time.monotonic() - started
        bulk_ids = [(await client.submit(p, tenant="burst")).job_id for p in backlog]
        submitted_at = time.monotonic()
        premium_id = (await client.submit(premium, tenant="burst", priority=epb.PRIORITY_HIGH)).job_id
        await asyncio.gather(*(follow(j) for j in [*bulk_ids, premium_id]))
    latency = finished[premium_id] - submitted_at
    drained = max(finished[j] for j in bulk_ids) - submitted_at
    bound = (alone + drained) / 2
    with capsys.disabled():  # the figures belong in the test log, passing or not
        print(f"\npremium job: {latency:.2f} s from submit to done (alone on the pipeline: {alone:.2f} s); "
              f"the bulk backlog of {len(backlog)} drained {drained:.2f} s after it; bound {bound:.2f} s")
    assert drained > 2 * alone, "the backlog was too small to hold anything up: the test proves nothing"
    assert latency < bound, "the premium job waited for the bulk backlog"


async def test_front_door_errors_carry_codes_and_reasons_and_cancel_stops_a_queued_job(
        cluster: Cluster, tmp_path: Path) -> None:
    from osmose.v1 import services_pb2_grpc as sgrpc

    with grpc.insecure_channel(cluster.front_door) as channel:
        stub = sgrpc.IngestionServiceStub(channel)
        for call, code, reason in [
            (lambda: stub.GetJob(spb.GetJobRequest(job_id="nope"), timeout=10), grpc.StatusCode.NOT_FOUND,
             "unknown-job"),
            (lambda: stub.Cancel(spb.GetJobRequest(job_id="nope"), timeout=10), grpc.StatusCode.NOT_FOUND,
             "unknown-job"),
            (lambda: stub.Submit(iter([spb.SubmitRequest(chunk=b"x")]), timeout=10),
             grpc.StatusCode.INVALID_ARGUMENT, "missing-header"),
            (lambda: stub.Submit(iter([spb.SubmitRequest(header=spb.SubmitHeader(
                file_name="huge.pdf", tenant="t", size_bytes=10**12))]), timeout=10),
             grpc.StatusCode.RESOURCE_EXHAUSTED, "too-large"),
            (lambda: stub.Submit(iter([spb.SubmitRequest(header=spb.SubmitHeader(
                file_name="a.pdf", tenant="two words"))]), timeout=10),
             grpc.StatusCode.INVALID_ARGUMENT, "invalid-tenant"),
        ]:
            with pytest.raises(grpc.RpcError) as caught:
                call()
            assert caught.value.code() == code and caught.value.details().startswith(reason), caught.value

    decks = [build_title_body_pptx(tmp_path, name=f"queue-{i}.pptx", title=f"Queue deck {i}",
                                   body=[f"Ticket {i} for the cancel test", f"Owner {i}"]) for i in range(6)]

    async def scenario() -> tuple[list[epb.Job], epb.Job]:
        async with ServiceClient(cluster.front_door) as client:
            ids = [(await client.submit(p, tenant="cancel")).job_id for p in decks]
            cancelled = await client.cancel(ids[-1])       # still queued behind the others
            jobs = [await client.watch(j, timeout_s=120) for j in ids]
            with pytest.raises(Exception, match="already-ended"):
                await client.cancel(ids[0])
            return jobs, cancelled

    jobs, cancelled = await scenario()
    assert cancelled.state == epb.JOB_STATE_CANCELLED
    assert [j.state for j in jobs] == [epb.JOB_STATE_SUCCEEDED] * 5 + [epb.JOB_STATE_CANCELLED]
    assert json.loads(jobs[-1].report_json)["error"].startswith("cancelled")
    stats = json.loads(run_osmose("stats", "--server", cluster.persister, "--json", "--tenant", "cancel").stdout)
    assert stats["cancel"]["documents"] == 5      # the cancelled job's stages did no work


async def _stage_holding_a_document(target: str, job_ids: list[str], *, not_in: list[str],
                                    timeout_s: float = 120) -> str:
    """The first stage the job-status stream shows entering one of the jobs (one not in
    `not_in`: each wave kills another stage), while it holds that document."""
    return await first_stage_entering(target, job_ids, lambda stage: stage not in not_in, timeout_s=timeout_s)


async def test_kill_9_of_stages_mid_flight_loses_and_duplicates_nothing(cluster: Cluster, baseline: Baseline,
                                                                        corpus: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Three waves of the same files for three tenants; in each, a stage the job-status stream
    shows holding a document (it has `entered` it) is killed with SIGKILL (process group, as a
    container dies) and restarted, a different stage each wave. Every job must end well and
    each tenant's counts equal the clean run's (acme: same files)."""
    def log(line: str) -> None:
        with capsys.disabled():
            print(line)

    jobs_of: dict[str, list[str]] = {}
    killed: list[str] = []
    for wave in range(3):
        tenant = f"crash{wave}"
        jobs_of[tenant] = await _submit_all(cluster.front_door, [corpus / f for f in GOOD], tenant=tenant)
        victim = await _stage_holding_a_document(cluster.front_door, jobs_of[tenant], not_in=killed)
        log(f"{'' if wave else chr(10)}wave {wave}: kill -9 {victim}, which has entered a document")
        cluster.kill9(victim)
        killed.append(victim)
        cluster.start(victim)
        cluster.wait_serving([victim])
    for tenant, job_ids in jobs_of.items():
        jobs = await _watch_all(cluster.front_door, job_ids)
        assert [j.state for j in jobs] == [epb.JOB_STATE_SUCCEEDED] * len(GOOD), [j.error for j in jobs]
        stats = json.loads(run_osmose("stats", "--server", cluster.persister, "--json", "--tenant", tenant).stdout)
        assert stats[tenant] == baseline.stats["acme"], tenant   # no duplicate node, point or relation
        assert stats[tenant]["chunks"] == sum(json.loads(j.report_json)["chunks"] for j in jobs)
    assert len(set(killed)) == 3, killed


async def test_sigterm_drains_commits_and_exits_zero(kafka_bootstrap: str, topic_prefix: str,
                                                    tmp_path: Path) -> None:
    """Its own six processes (and topics): stopping them leaves the module's cluster alone,
    so this test may run in any order."""
    (tmp_path / "logs").mkdir()
    own = Cluster(bootstrap=kafka_bootstrap, prefix=f"{topic_prefix}-sigterm", data_dir=tmp_path / "data",
                  log_dir=tmp_path / "logs")
    own.start_all()
    try:
        own.wait_serving()
        deck = build_title_body_pptx(tmp_path, name="drain.pptx", title="Drain check", body=["One deck", "Then stop"])
        (job_id,) = await _submit_all(own.front_door, [deck], tenant="sigterm")
        (job,) = await _watch_all(own.front_door, [job_id])
        assert job.state == epb.JOB_STATE_SUCCEEDED, job.error
    finally:
        codes = own.stop_all()
        delete_topics(kafka_bootstrap, own.prefix)
    assert codes == dict.fromkeys(STAGES, 0), {s: own.log_tail(s) for s, c in codes.items() if c}
