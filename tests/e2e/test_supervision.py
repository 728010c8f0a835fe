"""The service host supervises its stages and reports readiness (issue 13): a stage whose
consumer fails is restarted alone while the others keep serving; a stage waiting for a
dependency is not ready (its service and the overall status) but still live."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from osmose.config import Settings
from osmose.hosts.service import LIVENESS, ServiceHost, ServiceOptions
from osmose.hosts.service_client import ServiceClient
from osmose.pipeline import PIPELINE
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from tests.e2e.cluster import delete_topics, free_ports, health_status
from tests.fixtures.builders import build_title_body_pptx
from tests.support import until

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


async def test_serve_all_restarts_a_failed_stage_and_readiness_follows_dependencies(
        kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    prefix = f"{topic_prefix}-supervision"
    settings = Settings(data_dir=tmp_path / "data", kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix)
    [port] = free_ports(1)
    host = ServiceHost(settings, list(PIPELINE.names()),
                       ServiceOptions(host="127.0.0.1", port=port, insecure=True, session_timeout_s=10,
                                      metrics_port=0, drain_timeout_s=5))
    serving = asyncio.create_task(host.run())
    embedder = PIPELINE["embedder"].grpc_service
    try:
        await until(lambda: health_status(port) == SERVING, "serving", 120, blocking=True, interval_s=0.2)
        assert not serving.done()

        # a stage waits for a dependency: not ready (overall and its service), still live
        host.workers["embedder"]._start_waiting("job-x", "TEI breaker open")
        await until(lambda: health_status(port) == NOT_SERVING, "not ready", 10, blocking=True, interval_s=0.2)
        # (in threads: the host runs on this event loop)
        assert await asyncio.to_thread(health_status, port, embedder) == NOT_SERVING
        assert await asyncio.to_thread(health_status, port, PIPELINE["miner"].grpc_service) == SERVING
        assert await asyncio.to_thread(health_status, port, LIVENESS) == SERVING
        host.workers["embedder"]._stop_waiting("job-x")
        await until(lambda: health_status(port) == SERVING, "ready again", 10, blocking=True, interval_s=0.2)

        # a stage's consumer fails: that consumer alone is replaced; the process keeps serving
        old = host.consumers["miner"]
        host._consumer_failed("miner", RuntimeError("the handler raised"))
        await until(lambda: host.consumers["miner"] is not old and host.consumers["miner"].ready.is_set(),
                    "the miner's consumer restarted", 60, interval_s=0.2)
        assert not serving.done() and host.restarts["miner"]
        await until(lambda: health_status(port) == SERVING, "ready after the restart", 30, blocking=True,
                    interval_s=0.2)
        deck = build_title_body_pptx(tmp_path, name="after-restart.pptx", title="After a restart",
                                     body=["The miner was restarted", "Work still flows"])
        async with ServiceClient(f"127.0.0.1:{port}") as client:
            job = await client.watch((await client.submit(deck, tenant="acme", tier=pb.TIER_STANDARD)).job_id,
                                     timeout_s=120)
        assert job.state == epb.JOB_STATE_SUCCEEDED, job.error
    finally:
        host.request_stop()
        assert await serving == 0
        delete_topics(kafka_bootstrap, prefix)
