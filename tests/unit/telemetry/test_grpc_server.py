"""The gRPC interceptor on a real server (the front door, no broker): RPCs counted per method and
status code, a SERVER span per RPC parented on the caller's traceparent, and what Submit publishes
to Kafka carries that span's context (the trace continues into the pipeline)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from osmose.bus.blobs import LocalBlobStore
from osmose.bus.jobs import JobTable
from osmose.bus.kafka_client import BusConfig
from osmose.bus.trace import from_headers
from osmose.config import Settings
from osmose.hosts.service_client import RequestRejected, ServiceClient
from osmose.hosts.service_frontdoor import IngestionServicer
from osmose.hosts.service_worker import ServiceBus
from osmose.security.interceptor import AuthInterceptor
from osmose.telemetry.grpc_server import ServerTelemetry
from osmose.v1 import services_pb2_grpc as sgrpc

pytestmark = pytest.mark.anyio
SERVICE = "osmose.v1.IngestionService"


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[tuple[str, bytes]]]] = []

    async def publish(self, topic: str, *, key: bytes, value: bytes, headers=None, timeout_s=None) -> None:  # noqa: ANN001
        self.sent.append((topic, list(headers or [])))


def _handled(method: str, code: str) -> float:
    return REGISTRY.get_sample_value("osmose_grpc_server_handled_total",
                                     {"grpc_service": SERVICE, "grpc_method": method, "grpc_code": code}) or 0.0


async def test_rpcs_are_counted_and_traced_into_kafka(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    producer = FakeProducer()
    bus = ServiceBus(config=BusConfig(prefix="p"), producer=producer,  # type: ignore[arg-type]
                     blobs=LocalBlobStore(tmp_path / "blobs"), jobs=JobTable(), host="test:1")
    server = grpc.aio.server(interceptors=[ServerTelemetry(), AuthInterceptor(None)])   # as the local CLI
    sgrpc.add_IngestionServiceServicer_to_server(
        IngestionServicer(bus=bus, settings=Settings(data_dir=tmp_path), ready=lambda: True), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    before = {("Submit", "OK"): _handled("Submit", "OK"), ("GetJob", "NOT_FOUND"): _handled("GetJob", "NOT_FOUND"),
              ("WatchJob", "OK"): _handled("WatchJob", "OK")}
    deck = tmp_path / "deck.pptx"
    deck.write_bytes(b"PK\x03\x04" + bytes(100))
    try:
        async with ServiceClient(f"127.0.0.1:{port}") as client:
            response = await client.submit(deck, tenant="acme")
            with pytest.raises(RequestRejected):
                await client.get_job("no-such-job")
            await client.cancel(response.job_id)
            await client.watch(response.job_id, timeout_s=10)
    finally:
        await server.stop(0)
    assert _handled("Submit", "OK") - before[("Submit", "OK")] == 1
    assert _handled("GetJob", "NOT_FOUND") - before[("GetJob", "NOT_FOUND")] == 1
    assert _handled("WatchJob", "OK") - before[("WatchJob", "OK")] == 1
    assert (REGISTRY.get_sample_value("osmose_grpc_server_handling_seconds_count",
                                      {"grpc_service": SERVICE, "grpc_method": "Submit"}) or 0) >= 1

    by_name = {s.name: s for s in spans.get_finished_spans()}
    submit = by_name[f"{SERVICE}/Submit"]
    assert submit.kind == SpanKind.SERVER and submit.parent is not None and submit.parent.is_remote
    assert submit.attributes["rpc.system.name"] == "grpc" and submit.attributes["rpc.response.status_code"] == "OK"
    assert by_name[f"{SERVICE}/GetJob"].attributes["rpc.response.status_code"] == "NOT_FOUND"
    assert f"{SERVICE}/WatchJob" in by_name
    # what Submit published (job status, triage envelope) is parented on the Submit span
    for topic, headers in producer.sent[:2]:
        context = from_headers(headers)
        assert context is not None, topic
        assert (context.trace_id, context.span_id) == (format(submit.context.trace_id, "032x"),
                                                       format(submit.context.span_id, "016x")), topic
