"""Fixtures: local chat (vLLM-like) and TEI servers on ephemeral ports, one per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loadtests.fakeservers import ChatServer, LatencyModel, TeiServer


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    """A chat server that answers at once (latency scaled to zero) with 8 slots."""
    with ChatServer(latency=LatencyModel(time_scale=0)) as server:
        yield server


@pytest.fixture
def tei() -> Iterator[TeiServer]:
    with TeiServer(latency=LatencyModel(time_scale=0), max_client_batch_size=8) as server:
        yield server
