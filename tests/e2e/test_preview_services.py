"""Searchable in seconds, enriched in the background, through the service host over the real
broker: a deck submitted with ``preview`` is found by the Search RPC while its DEEP enrichment
waits on the model server (held by the local vLLM-protocol server until the search has
succeeded), the job shows both milestones in order, the final graph and vectors are those of
a direct DEEP ingest, and submitting the unchanged deck again calls no model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from loadtests.fakeservers import ChatServer, LatencyModel, TeiServer
from osmose.hosts.inprocess import InProcessPipeline
from osmose.hosts.service import ServiceHost, ServiceOptions
from osmose.hosts.service_client import ServiceClient
from osmose.pipeline import PIPELINE
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from tests.e2e.cluster import delete_topics, free_ports, job_when, until_serving
from tests.unit.hosts.test_preview_inprocess import SENTENCE, TENANT, _same_vectors, _settings, _stores
from tests.unit.models.test_models_pipeline import build_deck

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]


async def test_preview_over_kafka_is_searchable_before_the_enrichment_and_ends_as_direct_deep(
        kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    deck = build_deck(tmp_path / "deck.pptx")
    prefix = f"{topic_prefix}-preview"
    with ChatServer(latency=LatencyModel(time_scale=0)) as llm, TeiServer(latency=LatencyModel(time_scale=0)) as tei:
        settings = _settings(tmp_path, "service", llm, tei, kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix)
        [port] = free_ports(1)
        host = ServiceHost(settings, list(PIPELINE.names()),
                           ServiceOptions(host="127.0.0.1", port=port, insecure=True, session_timeout_s=10))
        serving = asyncio.create_task(host.run())
        try:
            await until_serving(port, serving, timeout_s=120)
            llm.hold()   # the enrichment's model calls wait here until the search below has succeeded
            async with ServiceClient(f"127.0.0.1:{port}") as client:
                job_id = (await client.submit(deck, tenant=TENANT, tier=pb.TIER_DEEP, preview=True)).job_id
                searchable = await job_when(client, job_id, lambda j: j.searchable_at_ms > 0)
                assert await asyncio.to_thread(llm.wait_held, 1, 60.0)   # the enrichment is on its first call
                hits = await client.search(SENTENCE, tenant=TENANT, limit=3)
                during = await client.get_job(job_id)
                llm.release()
                job = await client.watch(job_id, timeout_s=180)
                calls = llm.chat_requests + tei.embed_requests

                again_id = (await client.submit(deck, tenant=TENANT, tier=pb.TIER_DEEP, preview=True)).job_id
                again = await client.watch(again_id, timeout_s=180)
        finally:
            llm.release()
            host.request_stop()
            assert await serving == 0
            delete_topics(kafka_bootstrap, prefix, PIPELINE)
        assert llm.chat_requests + tei.embed_requests == calls   # the unchanged deck again: no model call

        async with InProcessPipeline(settings) as pipeline:   # the service's stores, after it stopped
            service_graph, service_vectors = await _stores(pipeline)
        async with InProcessPipeline(_settings(tmp_path, "direct", llm, tei)) as pipeline:
            direct = await pipeline.ingest_one(deck, tenant=TENANT, tier=pb.TIER_DEEP)
            assert direct.status == "ok", direct.error
            direct_graph, direct_vectors = await _stores(pipeline)

    assert hits and SENTENCE in hits[0].text and hits[0].concepts == []   # found at FAST, no concepts yet
    assert searchable.state == epb.JOB_STATE_RUNNING and searchable.tier in (pb.TIER_FAST, pb.TIER_DEEP)
    assert during.enriched_at_ms == 0 and during.state == epb.JOB_STATE_RUNNING   # still enriching
    assert job.state == epb.JOB_STATE_SUCCEEDED, job.error
    assert 0 < job.searchable_at_ms <= job.enriched_at_ms and job.tier == pb.TIER_DEEP
    report = json.loads(job.report_json)
    assert report["tier"] == "deep" and report["concepts"] > 0 and report["relations"] > 0
    assert 0 < report["seconds"]["searchable"] <= report["seconds"]["total"]
    assert again.state == epb.JOB_STATE_SUCCEEDED and json.loads(again.report_json)["model"]["calls"] == 0

    assert direct_graph["concepts"] and direct_graph["relations"]
    assert service_graph == direct_graph
    _same_vectors(service_vectors, direct_vectors)
