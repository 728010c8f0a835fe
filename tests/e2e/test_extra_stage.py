"""A seventh stage, declared in a test pipeline only, runs in the service host over the real broker:
its topics and consumer group come from the declaration, and documents pass through it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from osmose.bus.kafka_client import BusConfig
from osmose.bus.topics import consumer_group, describe_pipeline, input_topic
from osmose.config import Settings
from osmose.hosts.service import ServiceHost, ServiceOptions
from osmose.hosts.service_client import ServiceClient
from osmose.v1 import document_pb2 as pb
from osmose.v1 import envelope_pb2 as epb
from tests.e2e.cluster import delete_topics, free_ports, until_serving
from tests.fixtures.builders import build_title_body_pptx
from tests.fixtures.tagger import TEST_PIPELINE, mark

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]


def _committed(bootstrap: str, group: str, topic: str) -> int:
    """Messages of `topic` the consumer group `group` has committed."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return sum((consumer.committed(TopicPartition(topic, p)) or 0) for p in consumer.partitions_for_topic(topic))
    finally:
        consumer.close(autocommit=False)


async def test_declared_stage_runs_in_the_service_host(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    prefix = f"{topic_prefix}-tagger"
    settings = Settings(data_dir=tmp_path / "data", kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix)
    [port] = free_ports(1)
    host = ServiceHost(settings, list(TEST_PIPELINE.names()),
                       ServiceOptions(host="127.0.0.1", port=port, insecure=True, session_timeout_s=10), pipeline=TEST_PIPELINE)
    deck = build_title_body_pptx(tmp_path)

    serving = asyncio.create_task(host.run())
    try:
        await until_serving(port, serving, timeout_s=90)
        async with ServiceClient(f"127.0.0.1:{port}") as client:
            response = await client.submit(deck, tenant="acme", tier=pb.TIER_FAST)
            job = await client.watch(response.job_id, timeout_s=90)
        committed = await asyncio.to_thread(_committed, kafka_bootstrap, consumer_group(prefix, "tagger"),
                                            input_topic(prefix, "tagger", "bulk"))
    finally:
        host.request_stop()
        assert await serving == 0
        delete_topics(kafka_bootstrap, prefix, TEST_PIPELINE)
    assert job.state == epb.JOB_STATE_SUCCEEDED, job.error
    report = json.loads(job.report_json)
    assert report["warnings"].count(mark(report["chunks"])) == 1 and report["chunks"] > 0
    assert [s for s in report["seconds"] if s != "total"] == [s.name for s in TEST_PIPELINE.plan(pb.TIER_FAST)]
    assert committed == 1     # the tagger's own consumer group took the document from its own topic
    described = describe_pipeline(prefix, TEST_PIPELINE)
    tagger = next(s for s in described["stages"] if s["name"] == "tagger")
    assert tagger["topics"]["input"]["bulk"] == f"{prefix}.tagger.bulk"
    assert BusConfig.from_settings(settings, client_id="t").prefix == prefix
