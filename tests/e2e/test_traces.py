"""One trace per document across gRPC and Kafka: the six stages in one service host on the real
broker, the model calls against local vLLM-like and TEI servers, spans kept by an in-memory
exporter. Each document's spans form exactly one trace, which holds the Submit RPC, a message and
a stage span for every stage that ran, and one GenAI span per model call the report counts."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from loadtests.fakeservers import ChatServer, LatencyModel, TeiServer
from osmose.config import Settings
from osmose.hosts.service import ServiceHost, ServiceOptions
from osmose.hosts.service_client import ServiceClient
from osmose.pipeline import PIPELINE
from osmose.telemetry import tracing
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from tests.e2e.cluster import delete_topics, free_ports, until_serving
from tests.fixtures.builders import build_picture_pptx, build_title_body_pptx
from tests.unit.models.backends import write_router

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]


async def test_one_trace_per_document_with_every_stage_and_model_call(kafka_bootstrap: str, topic_prefix: str,
                                                                      tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = tracing.installed()
    tracing.install(provider)
    prefix = f"{topic_prefix}-traces"
    grpc_port, metrics_port = free_ports(2)
    decks = {pb.TIER_STANDARD: build_title_body_pptx(tmp_path, body=("Zero Trust Network Access replaces VPN",
                                                                     "Identity aware proxies check each request")),
             pb.TIER_DEEP: build_picture_pptx(tmp_path)}
    with ChatServer(latency=LatencyModel(time_scale=0)) as chat, TeiServer(latency=LatencyModel(time_scale=0)) as tei:
        router = write_router(tmp_path / "router.yaml", llm=f"{chat.url}/v1", vision=f"{chat.url}/v1", tei=tei.url)
        settings = Settings(data_dir=tmp_path / "data", kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix,
                            router_config=router, llm_url=f"{chat.url}/v1", vision_url=f"{chat.url}/v1",
                            tei_url=tei.url)
        host = ServiceHost(settings, list(PIPELINE.names()),
                           ServiceOptions(host="127.0.0.1", port=grpc_port, insecure=True, metrics_port=metrics_port,
                                          session_timeout_s=10))
        serving = asyncio.create_task(host.run())
        try:
            await until_serving(grpc_port, serving, timeout_s=120)
            jobs = {}
            async with ServiceClient(f"127.0.0.1:{grpc_port}") as client:
                for tier, deck in decks.items():
                    response = await client.submit(deck, tenant="acme", tier=tier)
                    jobs[response.job_id] = await client.watch(response.job_id, timeout_s=150)
            # the persister's message span ends just after the job is done: wait for it
            deadline = time.monotonic() + 30
            while sum(1 for s in exporter.get_finished_spans()
                      if s.name.startswith(f"process {prefix}.persister")) < len(jobs):
                assert time.monotonic() < deadline, "the persister's spans did not end"
                await asyncio.sleep(0.1)
        finally:
            host.request_stop()
            assert await serving == 0
            tracing.install(previous)
            delete_topics(kafka_bootstrap, prefix)
    spans = exporter.get_finished_spans()
    provider.shutdown()
    model_spans_seen = lookaheads_seen = 0
    for job_id, job in jobs.items():
        assert job.state == epb.JOB_STATE_SUCCEEDED, job.error
        traces = {s.context.trace_id for s in spans if s.attributes.get("osmose.job_id") == job_id}
        assert len(traces) == 1, f"job {job_id} is spread over {len(traces)} traces"
        (trace_id,) = traces
        assert format(trace_id, "032x") == job.trace_id
        mine = [s for s in spans if s.context.trace_id == trace_id]
        ids = {s.context.span_id for s in mine}
        roots = [s for s in mine if s.parent is None or s.parent.span_id not in ids]
        assert [r.name for r in roots] == ["osmose.v1.IngestionService/Submit"], "one tree under Submit"
        report = json.loads(job.report_json)
        ran = [stage for stage in report["seconds"] if stage != "total"]
        assert ran == [s.name for s in PIPELINE.plan(job.tier)]
        # Look-aheads (osmose.hosts.streaming) are in the job's trace too, marked, each a subtree of its
        # own; the report counts the real messages' calls only.
        by_id = {s.context.span_id: s for s in mine}

        def in_lookahead(span: ReadableSpan, by_id: dict[int, ReadableSpan] = by_id) -> bool:
            current: ReadableSpan | None = span
            while current is not None:
                if current.attributes.get("osmose.lookahead"):
                    return True
                current = by_id.get(current.parent.span_id) if current.parent is not None else None
            return False

        ahead = [s for s in mine if s.kind == SpanKind.CONSUMER and s.attributes.get("osmose.lookahead")]
        assert {s.attributes["osmose.stage"] for s in ahead} <= {"embedder", "miner"}
        lookaheads_seen += len(ahead)
        real = [s for s in mine if not in_lookahead(s)]
        for stage in ran:
            consumer = [s for s in real if s.kind == SpanKind.CONSUMER and s.attributes["osmose.stage"] == stage]
            assert len(consumer) == 1, (stage, [s.name for s in mine])
            assert consumer[0].attributes["messaging.system"] == "kafka"
            assert consumer[0].attributes["messaging.consumer.group.name"] == f"{prefix}.{stage}"
            assert sum(1 for s in real if s.name == f"stage {stage}") == 1, stage
        model = [s for s in real if s.kind == SpanKind.CLIENT and "gen_ai.operation.name" in s.attributes]
        calls = report["model"]["calls"] - report["model"]["retries"]
        assert len(model) == calls and calls > 0, (len(model), report["model"])
        model_spans_seen += len(model)
        for span in model:
            assert span.attributes["gen_ai.request.model"] and span.attributes["server.address"] == "127.0.0.1"
    assert model_spans_seen > 0
    assert lookaheads_seen >= len(jobs)   # with TEI, each job's extractor sent its input to the embedder
