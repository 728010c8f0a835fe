"""The ingestion front door on a real gRPC server, without a broker: Submit streams the file
into the blob store and queues the job (the envelope first, then the status: a crash between
leaves work that creates its job, never a job without work), GetJob/WatchJob/Cancel
answer from the ledger's table, and bad requests get a status code with a reason."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import grpc
import pytest

from osmose.bus.blobs import LocalBlobStore
from osmose.bus.envelope import decode, now_ms
from osmose.bus.jobs import JobTable
from osmose.bus.kafka_client import BusConfig
from osmose.config import Limits, Settings
from osmose.hosts.job_ledger import event_name
from osmose.hosts.service_client import RequestRejected, ServiceClient
from osmose.hosts.service_frontdoor import IngestionServicer
from osmose.hosts.service_worker import ServiceBus
from osmose.security import PLANS, ApiKeys, Authenticator, Principal, hash_api_key
from osmose.security.interceptor import AuthInterceptor
from osmose.security.quotas import QuotaBook
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import services_pb2 as spb
from osmose.v1 import services_pb2_grpc as sgrpc


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]] | None = None,
                      timeout_s: float | None = None) -> None:
        self.sent.append((topic, value))


Scenario = Callable[[ServiceClient, ServiceBus, FakeProducer], Awaitable[None]]


pytestmark = pytest.mark.anyio


async def _serve(tmp_path: Path, scenario: Scenario, *, max_file_bytes: int = 1024 * 1024,
                 authenticator: Authenticator | None = None, quotas: QuotaBook | None = None, api_key: str | None = None,
                 **settings_values: object) -> None:
    producer = FakeProducer()
    table = JobTable()
    if quotas is not None:
        table.observers.append(quotas.observe)
    bus = ServiceBus(config=BusConfig(prefix="p"), producer=producer,  # type: ignore[arg-type]
                     blobs=LocalBlobStore(tmp_path / "blobs"), jobs=table, host="test:1")
    settings = Settings(data_dir=tmp_path, limits=Limits(max_file_bytes=max_file_bytes), **settings_values)
    server = grpc.aio.server(interceptors=[AuthInterceptor(authenticator)])   # None: every call as the local CLI
    sgrpc.add_IngestionServiceServicer_to_server(
        IngestionServicer(bus=bus, settings=settings, ready=lambda: True, quotas=quotas), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with ServiceClient(f"127.0.0.1:{port}", api_key=api_key) as client:
            await scenario(client, bus, producer)
    finally:
        await server.stop(0)


def _deck(tmp_path: Path, size: int = 5000) -> Path:
    path = tmp_path / "deck.pptx"
    path.write_bytes(b"PK\x03\x04" + bytes(size))
    return path


async def test_submit_stores_the_file_and_queues_work_before_status(tmp_path: Path) -> None:
    async def scenario(client: ServiceClient, bus: ServiceBus, producer: FakeProducer) -> None:
        response = await client.submit(_deck(tmp_path), tenant="acme", priority=epb.PRIORITY_HIGH)
        topics = [t for t, _ in producer.sent]
        assert topics == ["p.triage.high", "p.jobs"]        # the work first, then the status
        job = epb.Job.FromString(producer.sent[1][1])
        envelope = decode(producer.sent[0][1])
        assert (job.job_id, job.state, event_name(job.event)) == (response.job_id, epb.JOB_STATE_QUEUED, "queued")
        assert (envelope.job_id, envelope.tenant, envelope.stage) == (response.job_id, "acme", "triage")
        assert (await client.get_job(response.job_id)).state == epb.JOB_STATE_QUEUED
        cancelled = await client.cancel(response.job_id)
        assert cancelled.state == epb.JOB_STATE_CANCELLED and cancelled.reason == "cancelled"
        final = await client.watch(response.job_id, timeout_s=10)
        assert final.state == epb.JOB_STATE_CANCELLED
        with pytest.raises(RequestRejected) as ended:
            await client.cancel(response.job_id)
        assert ended.value.code == grpc.StatusCode.FAILED_PRECONDITION and "already-ended" in str(ended.value)

    await _serve(tmp_path, scenario)


async def test_bad_requests_get_a_status_and_a_reason(tmp_path: Path) -> None:
    async def scenario(client: ServiceClient, bus: ServiceBus, producer: FakeProducer) -> None:
        with pytest.raises(RequestRejected) as too_large:
            await client.submit(_deck(tmp_path, size=4096), tenant="acme")
        assert too_large.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and str(too_large.value).startswith("too-large")
        with pytest.raises(RequestRejected) as unknown:
            await client.get_job("no-such-job")
        assert unknown.value.code == grpc.StatusCode.NOT_FOUND and str(unknown.value).startswith("unknown-job")
        with pytest.raises(RequestRejected) as tenant:
            await client.submit(_deck(tmp_path, size=10), tenant="two words")
        assert tenant.value.code == grpc.StatusCode.INVALID_ARGUMENT and "invalid-tenant" in str(tenant.value)

        async def chunk_first() -> AsyncIterator[spb.SubmitRequest]:
            yield spb.SubmitRequest(chunk=b"no header")

        with pytest.raises(grpc.aio.AioRpcError) as headless:
            await client.ingestion.Submit(chunk_first())
        assert headless.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert headless.value.details().startswith("missing-header")
        assert producer.sent == []                            # nothing was queued for any of them

    await _serve(tmp_path, scenario, max_file_bytes=1024)


async def test_a_retry_with_the_same_idempotency_key_returns_the_same_job(tmp_path: Path) -> None:
    async def scenario(client: ServiceClient, bus: ServiceBus, producer: FakeProducer) -> None:
        deck = _deck(tmp_path)
        first = await client.submit(deck, tenant="acme", idempotency_key="run-1-file-0")
        again = await client.submit(deck, tenant="acme", idempotency_key="run-1-file-0")
        assert (again.job_id, again.doc_id, again.existing) == (first.job_id, first.doc_id, True)
        assert not first.existing
        assert [t for t, _ in producer.sent] == ["p.triage.bulk", "p.jobs"]   # one job published, once
        assert len(bus.jobs) == 1
        other = await client.submit(deck, tenant="acme", idempotency_key="run-1-file-1")
        assert other.job_id != first.job_id and not other.existing
        elsewhere = await client.submit(deck, tenant="globex", idempotency_key="run-1-file-0")
        assert elsewhere.job_id != first.job_id           # keys are per tenant
        changed = tmp_path / "changed.pptx"
        changed.write_bytes(b"PK\x03\x04" + bytes(7000))
        with pytest.raises(RequestRejected) as conflict:
            await client.submit(changed, tenant="acme", idempotency_key="run-1-file-0")
        assert conflict.value.code == grpc.StatusCode.ALREADY_EXISTS
        assert str(conflict.value).startswith("idempotency-conflict")

    await _serve(tmp_path, scenario)


async def test_a_silent_submit_stream_is_ended_and_streams_are_capped(tmp_path: Path) -> None:
    async def scenario(client: ServiceClient, bus: ServiceBus, producer: FakeProducer) -> None:
        gate = anyio.Event()

        async def header_then_silence() -> AsyncIterator[spb.SubmitRequest]:
            yield spb.SubmitRequest(header=spb.SubmitHeader(file_name="deck.pptx", tenant="acme"))
            yield spb.SubmitRequest(chunk=b"PK\x03\x04")
            await gate.wait()

        with pytest.raises(grpc.aio.AioRpcError) as idle:
            await client.ingestion.Submit(header_then_silence(), timeout=30)
        assert idle.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert idle.value.details().startswith("idle-timeout")
        assert not list((tmp_path / "blobs" / "tmp").glob("*"))   # the partial upload is gone
        assert producer.sent == []

        # One stream allowed: a second WatchJob while one is open is refused.
        response = await client.submit(_deck(tmp_path), tenant="acme")
        watching = client.ingestion.WatchJob(spb.GetJobRequest(job_id=response.job_id))
        first = await watching.read()
        assert first.job_id == response.job_id
        with pytest.raises(grpc.aio.AioRpcError) as full:
            async for _ in client.ingestion.WatchJob(spb.GetJobRequest(job_id=response.job_id)):
                pass
        assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert full.value.details().startswith("too-many-streams")
        watching.cancel()
        gate.set()

    await _serve(tmp_path, scenario, submit_idle_timeout_s=0.5, max_streams=1)


async def test_the_plans_quotas_refuse_before_storing_and_the_plan_travels_on_the_envelope(tmp_path: Path) -> None:
    """A starter key (5 concurrent jobs): with 5 of its tenant's jobs open, Submit is refused with
    RESOURCE_EXHAUSTED naming the quota, nothing is stored or queued; a retry of an existing job's
    Submit (same idempotency key) is still answered; when jobs end, Submit works again, and the job
    carries the plan it is counted under."""
    key = "osk_starter-test-key"
    starter = Principal(subject="svc", tenant="acme", plan=PLANS["starter"], method="api-key")
    authenticator = Authenticator(api_keys=ApiKeys({hash_api_key(key): starter}))
    quotas = QuotaBook()

    async def scenario(client: ServiceClient, bus: ServiceBus, producer: FakeProducer) -> None:
        deck = _deck(tmp_path)
        first = await client.submit(deck, tenant="", idempotency_key="k0")
        assert decode(producer.sent[0][1]).plan == "starter"
        assert epb.Job.FromString(producer.sent[1][1]).plan == "starter"
        for n in range(1, 5):
            bus.jobs.apply(epb.Job(job_id=f"open-{n}", tenant="acme", state=epb.JOB_STATE_RUNNING,
                                   submitted_at_ms=now_ms(), progress=10))
        sent, blobs = len(producer.sent), sorted((tmp_path / "blobs").rglob("*"))
        other = tmp_path / "other.pptx"
        other.write_bytes(b"PK\x03\x04" + bytes(6000))
        with pytest.raises(RequestRejected) as refused:
            await client.submit(other, tenant="")
        assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert str(refused.value).startswith("quota-concurrent-jobs: 5 jobs of tenant acme")
        assert len(producer.sent) == sent and sorted((tmp_path / "blobs").rglob("*")) == blobs
        again = await client.submit(deck, tenant="", idempotency_key="k0")       # a retry is not a new document
        assert again.existing and again.job_id == first.job_id
        bus.jobs.apply(epb.Job(job_id="open-1", tenant="acme", state=epb.JOB_STATE_SUCCEEDED,
                               submitted_at_ms=now_ms(), progress=1000))
        accepted = await client.submit(other, tenant="")
        assert not accepted.existing and quotas.usage("acme") == (5, 6)

    await _serve(tmp_path, scenario, authenticator=authenticator, quotas=quotas, api_key=key)
