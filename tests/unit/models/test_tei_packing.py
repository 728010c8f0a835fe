"""The queue that packs several documents' texts into embedding requests (no server: the request
function records what it is given)."""

from __future__ import annotations

import asyncio
import contextvars

import numpy as np
import pytest

from osmose.models.context import CallOrder
from osmose.models.retry import RetryBudget
from osmose.models.tei_packing import EmbedRequest, RequestPacker
from osmose.models.usage import TaskUsage

pytestmark = pytest.mark.anyio

DOCUMENT: contextvars.ContextVar[str] = contextvars.ContextVar("document", default="-")


async def test_a_request_runs_in_the_context_of_the_document_leading_it_and_respects_the_token_cap() -> None:
    release = asyncio.Event()
    sent: list[tuple[str, list[str], int]] = []

    async def send(request: EmbedRequest) -> np.ndarray:
        sent.append((DOCUMENT.get(), request.texts, request.tokens))
        if len(sent) == 1:
            await release.wait()  # the only slot stays busy while the others queue
        return np.ones((len(request.texts), 4), np.float32)

    packer = RequestPacker(send, slots=1)

    async def document(name: str, texts: list[str], costs: list[int], order: int) -> TaskUsage:
        DOCUMENT.set(name)
        usage = TaskUsage()
        parts = await packer.embed(texts, costs, usage=usage, budget=RetryBudget(5), call_order=CallOrder(order=order),
                                   max_items=10, max_tokens=100)
        assert sorted(i for indexes, _ in parts for i in indexes) == list(range(len(texts)))
        return usage

    first = asyncio.create_task(document("a", ["a0"], [10], 0))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(document("b", ["b0", "b1"], [40, 40], 1)),
            asyncio.create_task(document("c", ["c0", "c1"], [10, 20], 2))]
    await asyncio.sleep(0)
    release.set()
    usages = await asyncio.gather(first, *rest)
    # b's 80 tokens + c's first 10 fit in 100, c's second (20) does not: the next request, which c leads
    assert sent == [("a", ["a0"], 10), ("b", ["b0", "b1", "c0"], 90), ("c", ["c1"], 20)]
    assert [u.prompt_tokens for u in usages] == [10, 80, 30]
    assert packer.requests == 3 and packer.shared_requests == 1


async def test_a_failed_request_fails_every_document_in_it_and_the_queue_goes_on() -> None:
    calls = 0

    async def send(request: EmbedRequest) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("TEI answered 500")
        return np.ones((len(request.texts), 4), np.float32)

    packer = RequestPacker(send, slots=1)
    usage = TaskUsage()
    with pytest.raises(RuntimeError, match="500"):
        await packer.embed(["x"], [1], usage=usage, budget=RetryBudget(5), call_order=CallOrder(),
                           max_items=4, max_tokens=100)
    assert usage.failures == 1
    parts = await packer.embed(["y", "z"], [1, 1], usage=TaskUsage(), budget=RetryBudget(5),
                               call_order=CallOrder(), max_items=4, max_tokens=100)
    assert [indexes for indexes, _ in parts] == [[0, 1]]
