"""One process's real /metrics -- after a stage worked on documents, called a chat and a TEI server
and dead-lettered one -- passes `promtool check metrics` and carries every family of
osmose.telemetry.metrics, with bounded labels only."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from loadtests.fakeservers import ChatServer, LatencyModel, TeiServer
from osmose.bus.blobs import LocalBlobStore
from osmose.bus.consumer import Delivery
from osmose.bus.envelope import encode, now_ms, pack
from osmose.bus.jobs import JobTable
from osmose.bus.kafka_client import BusConfig
from osmose.errors import CorruptDocumentError
from osmose.hosts.service_worker import RetryPolicy, ServiceBus, StageWorker
from osmose.models import ChatRequest
from osmose.models.context import bind_accounting
from osmose.telemetry.server import start_metrics
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from osmose.v1 import pipeline_pb2 as ppb
from tests.unit.models.backends import router, runtime

pytestmark = pytest.mark.anyio

FAMILIES = (
    "osmose_document_e2e_seconds", "osmose_documents_accepted_total", "osmose_documents_persisted_total",
    "osmose_documents_failed_total", "osmose_dead_letters_total", "osmose_stage_duration_seconds",
    "osmose_stage_messages_total", "osmose_stage_in_flight_messages", "osmose_stage_kafka_wait_seconds",
    "osmose_gen_ai_client_operation_duration_seconds", "osmose_gen_ai_client_token_usage",
    "osmose_model_queue_wait_seconds", "osmose_model_cache_requests_total", "osmose_model_breaker_state",
    "osmose_model_concurrency_in_use", "osmose_model_concurrency_limit", "osmose_model_free_slots",
    "osmose_documents_in_flight",
    "osmose_documents_in_flight_oldest_age_seconds", "osmose_documents_overdue",
)


class FakeProducer:
    async def publish(self, topic: str, *, key: bytes, value: bytes, headers=None, timeout_s=None) -> None:  # noqa: ANN001
        pass


class ModelStage:
    """Asks the chat server and embeds with TEI, like the extractor and the embedder do."""

    name = "extractor"

    def __init__(self, models, fail_on: str = "") -> None:  # noqa: ANN001
        self.models = models
        self.fail_on = fail_on

    async def process(self, item: ppb.WorkItem) -> ppb.WorkItem:
        if item.job_id == self.fail_on:
            raise CorruptDocumentError("not a deck")
        session = self.models.session(label=item.job_id)
        await session.chat("concept_extraction", ChatRequest(system="Extract.", user=f"deck {item.job_id}"))
        with bind_accounting(session.accounting):
            await self.models.embeddings.embed(["zero trust", "network access"])
        return item


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _delivery(bus: ServiceBus, job_id: str) -> Delivery:
    item = ppb.WorkItem(job_id=job_id, tenant="acme")
    item.plan.tier = pb.TIER_STANDARD
    env = pack(epb.Envelope(job_id=job_id, doc_id="d" * 32, tenant="acme", tier=pb.TIER_STANDARD, stage="extractor",
                            created_at_ms=now_ms() - 1500, file="deck.pptx"), item, bus.blobs)
    return Delivery(topic="p.extractor.bulk", partition=0, offset=1, key=b"k", value=encode(env), headers=[],
                    priority="bulk", timestamp_ms=now_ms() - 500)


@pytest.mark.skipif((shutil.which("promtool") is None) and not os.environ.get("CI"), reason="promtool (Debian package prometheus) not installed")
async def test_real_metrics_output_passes_promtool(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    with ChatServer(latency=LatencyModel(time_scale=0)) as chat, TeiServer(latency=LatencyModel(time_scale=0)) as tei:
        models = runtime(router(llm=f"{chat.url}/v1", tei=tei.url), tmp_path)
        table = JobTable()
        bus = ServiceBus(config=BusConfig(prefix="p"), producer=FakeProducer(),  # type: ignore[arg-type]
                         blobs=LocalBlobStore(tmp_path / "blobs"), jobs=table, host="test:1")
        worker = StageWorker(stage=ModelStage(models, fail_on="bad"), bus=bus,  # type: ignore[arg-type]
                             retry=RetryPolicy(max_attempts=1))
        endpoint = start_metrics(host="127.0.0.1", port=_free_port(), table=table)
        try:
            for job_id in ("one", "two", "bad"):
                await worker.handle(_delivery(bus, job_id))
            url = f"http://127.0.0.1:{endpoint.port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
                text = response.read().decode()
            request = urllib.request.Request(url, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
                openmetrics = response.read().decode()
        finally:
            endpoint.close()
            await models.aclose()
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    missing = [f for f in FAMILIES if f"# TYPE {f} " not in text]
    assert not missing, missing
    assert openmetrics.rstrip().endswith("# EOF")
    for forbidden in ("job_id=", "tenant=", "doc_id="):
        assert forbidden not in text
    # a model call is a GenAI span under the stage's span, under the message's span
    chat_span = next(s for s in spans.get_finished_spans() if s.name.startswith("chat "))
    assert chat_span.attributes["gen_ai.operation.name"] == "chat"
    assert chat_span.attributes["gen_ai.usage.output_tokens"] > 0
    by_name = {s.name: s for s in spans.get_finished_spans() if s.context.trace_id == chat_span.context.trace_id}
    assert any(name.startswith("embeddings ") for name in by_name)
    stage = by_name["stage extractor"]
    assert chat_span.parent.span_id == stage.context.span_id
    assert stage.parent.span_id == by_name["process p.extractor.bulk"].context.span_id
