"""Identical calls in flight at once in one process (a look-ahead and the real message of one document)
make one request: the second waits for the first's answer; if the first fails, the second asks itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from loadtests.fakeservers import ChatServer
from osmose.cache import SqliteCache
from osmose.embeddings.cached import CachedEmbeddings
from osmose.embeddings.minilm import MiniLMEmbeddings
from osmose.models import ChatRequest
from tests.unit.models.backends import router, runtime

pytestmark = pytest.mark.anyio

TASK = "concept_extraction"


def _request(user: str = "SEGMENT s1\nZero trust network access") -> ChatRequest:
    return ChatRequest(system="Extract the concepts.", user=user)


async def _held(chat: ChatServer, count: int = 1) -> None:
    assert await asyncio.to_thread(chat.wait_held, count, 30.0)


async def test_a_second_identical_call_waits_for_the_first(chat: ChatServer, tmp_path: Path) -> None:
    models = runtime(router(llm=chat.openai_url), tmp_path)
    try:
        chat.hold()
        first_session, second_session = models.session(scope="acme"), models.session(scope="acme")
        first = asyncio.create_task(first_session.chat(TASK, _request()))
        await _held(chat)                                  # the first request is at the server
        second = asyncio.create_task(second_session.chat(TASK, _request()))
        other = asyncio.create_task(models.session(scope="globex").chat(TASK, _request()))  # another tenant
        await _held(chat, 2)                               # the other tenant's request: never shared
        chat.release()
        a, b, c = await first, await second, await other
    finally:
        chat.release()
        await models.aclose()
    assert chat.chat_requests == 2
    assert (a.cached, b.cached, c.cached) == (False, True, False)
    assert a.text == b.text
    assert (first_session.usage.task(TASK).calls, first_session.usage.task(TASK).cache_hits) == (1, 0)
    assert (second_session.usage.task(TASK).calls, second_session.usage.task(TASK).cache_hits) == (0, 1)
    assert models.in_flight == {}


async def test_when_the_first_call_is_lost_the_waiting_one_asks_itself(chat: ChatServer, tmp_path: Path) -> None:
    models = runtime(router(llm=chat.openai_url), tmp_path)
    try:
        chat.hold()
        first = asyncio.create_task(models.session().chat(TASK, _request()))
        await _held(chat)
        session = models.session()
        second = asyncio.create_task(session.chat(TASK, _request()))
        await asyncio.sleep(0.2)       # the second is waiting for the first's answer (no request of its own)
        assert chat.held == 1
        first.cancel()                 # e.g. a look-ahead cancelled at shutdown
        await _held(chat)              # now the second's own request
        chat.release()
        answer = await second
    finally:
        chat.release()
        await models.aclose()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert answer.cached is False and session.usage.task(TASK).calls == 1
    assert models.in_flight == {}


class GatedModel:
    """The real local model, counting the texts that reach it; embedding waits for `gate`."""

    def __init__(self) -> None:
        self.inner = MiniLMEmbeddings()
        self.model_id, self.dim = self.inner.model_id, self.inner.dim
        self.seen: list[str] = []
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.fail = False

    async def embed(self, texts):  # noqa: ANN001, ANN201
        self.seen.extend(texts)
        self.entered.set()
        await self.gate.wait()
        if self.fail:
            self.fail = False
            raise RuntimeError("backend lost the batch")
        return await self.inner.embed(texts)


async def test_texts_being_embedded_are_not_embedded_twice(tmp_path: Path) -> None:
    model = GatedModel()
    cached = CachedEmbeddings(model, SqliteCache(tmp_path / "cache.sqlite"))
    first = asyncio.create_task(cached.embed_texts(["alpha", "beta"], scope="acme"))
    await model.entered.wait()
    second = asyncio.create_task(cached.embed_texts(["beta", "gamma"], scope="acme"))
    other = asyncio.create_task(cached.embed_texts(["beta"], scope="globex"))   # never shared across tenants
    await asyncio.sleep(0.1)
    model.gate.set()
    a, b, c = await first, await second, await other
    assert sorted(model.seen) == ["alpha", "beta", "beta", "gamma"]   # beta once per tenant
    assert (a.computed, a.cache_hits, b.computed, b.cache_hits, c.computed) == (2, 0, 1, 1, 1)
    np.testing.assert_array_equal(a.vectors[1], b.vectors[0])
    assert cached._in_flight == {}


async def test_a_failed_embedding_is_retried_by_whoever_waited(tmp_path: Path) -> None:
    model = GatedModel()
    model.fail = True
    cached = CachedEmbeddings(model, SqliteCache(tmp_path / "cache.sqlite"))
    first = asyncio.create_task(cached.embed_texts(["alpha"]))
    await model.entered.wait()
    second = asyncio.create_task(cached.embed_texts(["alpha"]))
    await asyncio.sleep(0.1)
    model.gate.set()
    with pytest.raises(RuntimeError):
        await first
    again = await second
    assert (again.computed, again.cache_hits) == (1, 0) and model.seen == ["alpha", "alpha"]
    assert cached._in_flight == {}
