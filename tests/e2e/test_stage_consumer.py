"""The stage consumer against the real broker: priority, bounded in-flight work, pause and
resume, commits after the work is done."""

from __future__ import annotations

import asyncio
import time

import pytest

from osmose.bus.consumer import Delivery, StageConsumer
from osmose.bus.kafka_client import BusConfig, Producer, ensure_topics
from osmose.bus.topics import consumer_group, declare_topics, input_topic
from tests.e2e.cluster import wait_for_leaders

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


def _committed(config: BusConfig, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=config.servers, group_id=consumer_group(config.prefix, "embedder"),
                             enable_auto_commit=False)
    try:
        return sum((consumer.committed(TopicPartition(topic, p)) or 0)
                   for p in consumer.partitions_for_topic(topic))
    finally:
        consumer.close(autocommit=False)


async def test_high_priority_work_overtakes_a_paused_bulk_backlog_and_nothing_stalls(
        kafka_bootstrap: str, topic_prefix: str) -> None:
    config = BusConfig(bootstrap=kafka_bootstrap, prefix=f"{topic_prefix}-consumer", session_timeout_s=30)
    ensure_topics(config, declare_topics(config.prefix))
    bulk, high = (input_topic(config.prefix, "embedder", p) for p in ("bulk", "high"))
    wait_for_leaders(kafka_bootstrap, [bulk, high])
    producer = Producer(config)
    for i in range(12):   # one key: one partition, one fetched batch the consumer pauses mid-way
        producer.send(bulk, key=b"backlog", value=f"b{i}".encode())
    producer.flush()

    async def scenario() -> list[str]:
        order: list[str] = []

        async def handler(delivery: Delivery) -> None:
            order.append(delivery.value.decode())
            if order == ["b0"]:   # the backlog is being worked on: premium work arrives
                await producer.publish(high, key=b"premium", value=b"h")
            await asyncio.sleep(0.05)   # the work itself

        consumer = StageConsumer(config=config, stage="embedder", handler=handler, max_in_flight=1)
        await consumer.start()
        deadline = time.monotonic() + 60
        while len(order) < 13 and time.monotonic() < deadline and consumer.error is None:
            await asyncio.sleep(0.05)
        await consumer.stop(drain_timeout_s=5)
        return order

    order = await scenario()
    producer.close()
    assert sorted(order) == sorted([f"b{i}" for i in range(12)] + ["h"]), order   # nothing stalled or lost
    assert order.index("h") <= 3, order     # overtook the backlog (at most the batch already in hand)
    # Committed after the work (the group's last commit may take a moment to be readable).
    deadline = time.monotonic() + 30
    while (_committed(config, bulk), _committed(config, high)) != (12, 1) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (_committed(config, bulk), _committed(config, high)) == (12, 1)
