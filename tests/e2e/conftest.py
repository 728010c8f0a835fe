"""E2E fixtures: the real broker (OSMOSE_KAFKA_BOOTSTRAP, default 127.0.0.1:9092) and a
unique topic prefix per session, so runs on a shared broker never see each other."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.cluster import broker_reachable, delete_topics


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = os.environ.get("OSMOSE_KAFKA_BOOTSTRAP") or "127.0.0.1:9092"
    if not broker_reachable(bootstrap):
        message = f"no Kafka broker at {bootstrap}: start one with `make kafka-up` (or set OSMOSE_KAFKA_BOOTSTRAP)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return bootstrap


@pytest.fixture(scope="session")
def topic_prefix(kafka_bootstrap: str) -> Iterator[str]:
    prefix = f"e2e-{uuid.uuid4().hex[:10]}"
    yield prefix
    for used in (prefix, f"{prefix}-consumer"):   # test_stage_consumer.py uses the second
        delete_topics(kafka_bootstrap, used)
