"""The fake server's capacity model: waiting requests go by vLLM priority (lower first), then
arrival; busy seconds count serving, not waiting."""

from __future__ import annotations

import asyncio

import pytest

from loadtests.fakeservers import Capacity

pytestmark = pytest.mark.anyio


async def test_waiting_requests_are_served_by_priority_then_arrival() -> None:
    capacity = Capacity(1)
    served: list[str] = []

    async def request(label: str, priority: int, seconds: float) -> None:
        async with capacity.admit(priority):
            served.append(label)
            await asyncio.sleep(seconds)

    first = asyncio.create_task(request("first", 0, 0.05))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(request(label, p, 0.0)) for label, p in
            [("bulk-a", 0), ("premium", -1), ("bulk-b", 0)]]
    await asyncio.sleep(0.01)
    assert (capacity.running, capacity.waiting) == (1, 3)
    await asyncio.gather(first, *rest)
    assert served == ["first", "premium", "bulk-a", "bulk-b"]
    assert capacity.served == 4 and capacity.running == 0
    assert 0.05 <= capacity.busy_seconds < 0.5  # the waiting time is not counted
