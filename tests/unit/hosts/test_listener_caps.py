"""The listeners cap concurrent calls (OSMOSE_MAX_CONCURRENT_RPCS): an open stream takes a slot,
a call beyond the cap is refused with RESOURCE_EXHAUSTED instead of queueing without bound."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health

from osmose.bus.blobs import LocalBlobStore
from osmose.bus.jobs import JobTable
from osmose.bus.kafka_client import BusConfig
from osmose.config import Settings
from osmose.hosts.service_client import RequestRejected, ServiceClient
from osmose.hosts.service_frontdoor import SERVICE_NAME, IngestionServicer
from osmose.hosts.service_listeners import Listeners
from osmose.hosts.service_worker import ServiceBus
from osmose.v1 import services_pb2 as spb
from osmose.v1 import services_pb2_grpc as sgrpc
from tests.unit.hosts.test_frontdoor import FakeProducer, _deck

pytestmark = pytest.mark.anyio


async def test_a_call_beyond_the_cap_is_refused_while_a_stream_holds_the_slots(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_concurrent_rpcs=2)
    bus = ServiceBus(config=BusConfig(prefix="p"), producer=FakeProducer(),  # type: ignore[arg-type]
                     blobs=LocalBlobStore(tmp_path / "blobs"), jobs=JobTable(), host="test:1")
    listeners = Listeners(settings=settings, host="127.0.0.1", port=0, internal_port=None, health_port=None,
                          insecure=True, reflection=False, health_servicer=health.aio.HealthServicer())
    servicer = IngestionServicer(bus=bus, settings=settings, ready=lambda: True)
    listeners.add_public(SERVICE_NAME, lambda server: sgrpc.add_IngestionServiceServicer_to_server(servicer, server))
    await listeners.start()
    try:
        async with ServiceClient(f"127.0.0.1:{listeners.bound_port}") as client:
            job_id = (await client.submit(_deck(tmp_path), tenant="acme")).job_id
            streams = [client.ingestion.WatchJob(spb.GetJobRequest(job_id=job_id)) for _ in range(2)]
            for stream in streams:
                assert (await stream.read()).job_id == job_id     # both open: the two slots are taken
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await client.ingestion.GetJob(spb.GetJobRequest(job_id=job_id), timeout=10)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            for stream in streams:
                stream.cancel()
            for _ in range(100):                                  # the slots come back once the streams end
                try:
                    assert (await client.get_job(job_id)).job_id == job_id
                    break
                except RequestRejected:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the cap never released its slots")
    finally:
        await listeners.stop(0)
