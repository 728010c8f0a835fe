"""Topics owned by an operator (Strimzi KafkaTopic, OSMOSE_KAFKA_CREATE_TOPICS=false), on the real broker:
services create nothing, wait for the declared topics, and name the missing ones when they never come;
`osmose topics --create` still creates them."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from osmose.bus.exceptions import TopicError
from osmose.bus.kafka_client import BusConfig, ensure_topics
from osmose.bus.topics import declare_topics
from tests.e2e.cluster import delete_topics
from tests.support import run_osmose

pytestmark = [pytest.mark.timeout(300)]


def _existing(bootstrap: str, prefix: str) -> set[str]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return {name for name in admin.list_topics() if name.startswith(f"{prefix}.")}
    finally:
        admin.close()


def test_services_wait_for_the_operators_topics_and_create_none(kafka_bootstrap: str, topic_prefix: str) -> None:
    prefix = f"{topic_prefix}-operator"
    specs = declare_topics(prefix)
    waiting = BusConfig(bootstrap=kafka_bootstrap, prefix=prefix, create_topics=False)
    try:
        with pytest.raises(TopicError) as refused:
            ensure_topics(waiting, specs, wait_s=0.5, poll_s=0.1)
        message = str(refused.value)
        assert "OSMOSE_KAFKA_CREATE_TOPICS is false" in message
        assert all(spec.name in message for spec in specs)
        assert _existing(kafka_bootstrap, prefix) == set()      # nothing created while refusing

        # A waiter started before the operator creates the topics returns once they exist.
        outcome: dict[str, object] = {}
        started = threading.Event()

        def wait() -> None:
            started.set()
            try:
                outcome["created"] = ensure_topics(waiting, specs, wait_s=120, poll_s=0.2)
            except Exception as exc:   # reported below
                outcome["error"] = exc

        waiter = threading.Thread(target=wait)
        waiter.start()
        started.wait()
        ensure_topics(dataclasses.replace(waiting, create_topics=True), specs)   # the operator's part
        waiter.join(timeout=150)
        assert not waiter.is_alive()
        assert outcome == {"created": []}, outcome
        assert _existing(kafka_bootstrap, prefix) == {spec.name for spec in specs}
    finally:
        delete_topics(kafka_bootstrap, prefix)


def test_topics_create_creates_even_when_services_do_not(kafka_bootstrap: str, topic_prefix: str) -> None:
    prefix = f"{topic_prefix}-operator-cli"
    try:
        result = run_osmose("topics", "--create", "--kafka", kafka_bootstrap, "--topic-prefix", prefix,
                            env={"OSMOSE_KAFKA_CREATE_TOPICS": "false"})
        assert result.code == 0, result.stderr
        assert _existing(kafka_bootstrap, prefix) == {spec.name for spec in declare_topics(prefix)}
    finally:
        delete_topics(kafka_bootstrap, prefix)
