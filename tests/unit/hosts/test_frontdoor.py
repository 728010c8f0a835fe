"""The ingestion front door on a real gRPC server, without a broker: Submit streams the file
into the blob store and queues the job (status first, then the envelope), GetJob/WatchJob/Cancel
answer from the ledger's table, and bad requests get a status code with a reason."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from osmose.bus.blobs import LocalBlobStore
from osmose.bus.envelope import decode
from osmose.bus.jobs import JobTable
from osmose.bus.kafka_client import BusConfig
from osmose.config import Limits, Settings
from osmose.hosts.job_ledger import event_name
from osmose.hosts.service_client import RequestRejected, ServiceClient
from osmose.hosts.service_frontdoor import IngestionServicer
from osmose.hosts.service_worker import ServiceBus
from osmose.security.interceptor import AuthInterceptor
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


async def _serve(tmp_path: Path, scenario: Scenario, *, max_file_bytes: int = 1024 * 1024) -> None:
    producer = FakeProducer()
    bus = ServiceBus(config=BusConfig(prefix="p"), producer=producer,  # type: ignore[arg-type]
                     blobs=LocalBlobStore(tmp_path / "blobs"), jobs=JobTable(), host="test:1")
    settings = Settings(data_dir=tmp_path, limits=Limits(max_file_bytes=max_file_bytes))
    server = grpc.aio.server(interceptors=[AuthInterceptor(None)])   # every call as the local CLI
    sgrpc.add_IngestionServiceServicer_to_server(
        IngestionServicer(bus=bus, settings=settings, ready=lambda: True), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with ServiceClient(f"127.0.0.1:{port}") as client:
            await scenario(client, bus, producer)
    finally:
        await server.stop(0)


def _deck(tmp_path: Path, size: int = 5000) -> Path:
    path = tmp_path / "deck.pptx"
    path.write_bytes(b"PK\x03\x04" + bytes(size))
    return path


async def test_submit_stores_the_file_and_queues_status_before_work(tmp_path: Path) -> None:
    async def scenario(client: ServiceClient, bus: ServiceBus, producer: FakeProducer) -> None:
        response = await client.submit(_deck(tmp_path), tenant="acme", priority=epb.PRIORITY_HIGH)
        topics = [t for t, _ in producer.sent]
        assert topics == ["p.jobs", "p.triage.high"]        # the status first, then the work
        job = epb.Job.FromString(producer.sent[0][1])
        envelope = decode(producer.sent[1][1])
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
