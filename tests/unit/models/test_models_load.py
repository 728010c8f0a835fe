"""Calls sized to the backend's load, and the order in which waiting calls get a slot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from loadtests.fakeservers import ChatServer
from osmose.models import ModelRuntime, SegmentBlock, ask_segments
from osmose.models.config import EndpointConfig
from osmose.models.context import PREMIUM_PRIORITY, CallOrder, bind_call_order
from osmose.models.limits import BackendLimits
from osmose.models.structured import call_size
from osmose.services.extractor.llm_extract import TASK
from tests.support import until
from tests.unit.models.backends import router, runtime

pytestmark = pytest.mark.anyio

async def _wait_for_slot(limits: BackendLimits) -> None:
    async with limits.slot():
        pass


UNITS = [SegmentBlock(f"seg-{i}", f"[slide {i}] Topic {i} Platform uses Secure Gateway {i}") for i in range(8)]


async def test_waiting_calls_are_served_by_priority_then_document_order() -> None:
    limits = BackendLimits(EndpointConfig(name="llm", url="http://x", concurrency=1))
    served: list[str] = []
    gate = asyncio.Event()

    async def call(label: str, priority: int, order: int) -> None:
        async with limits.slot(priority=priority, order=order):
            served.append(label)
            await gate.wait()

    first = asyncio.create_task(call("holder", 0, 0))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(call(label, p, o)) for label, p, o in
               [("bulk-doc3", 0, 3), ("bulk-doc1", 0, 1), ("premium-doc9", PREMIUM_PRIORITY, 9), ("bulk-doc2", 0, 2)]]
    await asyncio.sleep(0.01)
    assert limits.in_flight == 1 and limits.waiting == 4 and limits.free == -4
    gate.set()
    await asyncio.gather(first, *waiting)
    assert served == ["holder", "premium-doc9", "bulk-doc1", "bulk-doc2", "bulk-doc3"]
    assert limits.in_flight == 0 and limits.waiting == 0 and limits.free == 1


async def test_a_cancelled_waiter_gives_its_turn_away() -> None:
    limits = BackendLimits(EndpointConfig(name="llm", url="http://x", concurrency=1))
    async with limits.slot():
        waiter = asyncio.create_task(limits.slot().__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert limits.waiting == 0
    async with limits.slot():
        assert limits.in_flight == 1
    assert limits.in_flight == 0


async def test_one_segment_per_call_while_slots_are_free_packed_when_a_queue_grows(chat: ChatServer,
                                                                                      tmp_path: Path) -> None:
    models: ModelRuntime = runtime(router(llm=chat.openai_url, batch_size=4, concurrency=8, packing="load"), tmp_path)
    try:
        session = models.session()
        limits = models.backends["llm"].limits
        assert call_size(session, TASK.name, 16, 4) == 1  # 8 free slots, 16 segments: 2 calls a slot
        assert call_size(session, TASK.name, 50, 4) == 3  # 8 free slots, 50 segments
        async with limits.slot(), limits.slot(), limits.slot(), limits.slot():
            assert call_size(session, TASK.name, 17, 4) == 2  # 4 free
        held = [limits.slot() for _ in range(8)]
        for slot in held:
            await slot.__aenter__()
        assert call_size(session, TASK.name, 7, 4) == 1  # none free, under a wave: drains within a call
        queued: list[asyncio.Task[None]] = []
        # packed with the queue's depth in waves: (queued + these 8 segments) / 8 slots
        for waiting, expected in ((8, 2), (16, 3), (40, 4)):
            queued += [asyncio.create_task(_wait_for_slot(limits)) for _ in range(waiting - len(queued))]
            want = len(queued)
            await until(lambda want=want: limits.waiting == want)
            assert call_size(session, TASK.name, 8, 4) == expected, waiting
        for task in queued:
            task.cancel()
        await asyncio.gather(*queued, return_exceptions=True)
        for slot in held:
            await slot.__aexit__(None, None, None)

        got = await ask_segments(session, TASK, UNITS)
        assert not got.failed and len(got.answers) == len(UNITS)
        assert chat.chat_requests == len(UNITS)  # every segment in its own call, all at once
    finally:
        await models.aclose()


async def test_answers_do_not_depend_on_how_segments_were_packed(chat: ChatServer, tmp_path: Path) -> None:
    packed = runtime(router(llm=chat.openai_url, batch_size=4, concurrency=1, packing="load"), tmp_path / "packed")
    single = runtime(router(llm=chat.openai_url, batch_size=4, concurrency=16, packing="load"), tmp_path / "single")
    try:
        limits = packed.backends["llm"].limits
        async with limits.slot():  # the only slot busy and 4 waves queued: calls are packed
            queued = [asyncio.create_task(_wait_for_slot(limits)) for _ in range(4)]
            await until(lambda: limits.waiting == 4)
            assert call_size(packed.session(), TASK.name, len(UNITS), 4) == 4
            for task in queued:
                task.cancel()
            await asyncio.gather(*queued, return_exceptions=True)
        by_packing = await ask_segments(packed.session(), TASK, UNITS)
        by_segment = await ask_segments(single.session(), TASK, UNITS)
        assert by_packing.answers == by_segment.answers and by_segment.answers
    finally:
        await packed.aclose()
        await single.aclose()


async def test_premium_calls_carry_vllms_priority_only_when_the_endpoint_schedules_by_priority(
        chat: ChatServer, tmp_path: Path) -> None:
    config = router(llm=chat.openai_url, batch_size=4)
    plain = runtime(config, tmp_path / "plain")
    scheduling = config.model_copy(update={"endpoints": {
        **config.endpoints, "llm": config.endpoints["llm"].model_copy(update={"priority_scheduling": True})}})
    prioritised = runtime(scheduling, tmp_path / "prio")
    try:
        with bind_call_order(CallOrder(priority=PREMIUM_PRIORITY, order=0)):
            await ask_segments(plain.session(), TASK, UNITS[:1])
            await ask_segments(prioritised.session(), TASK, UNITS[1:2])
        await ask_segments(prioritised.session(), TASK, UNITS[2:3])  # bulk: no field
        assert ["priority" in body for body in chat.log] == [False, True, False]
        assert chat.log[1]["priority"] == PREMIUM_PRIORITY
        assert chat.scrape()['fakeserver_requests_by_priority_total{priority="-1"}'] == 1
    finally:
        await plain.aclose()
        await prioritised.aclose()


async def test_a_waiter_cancelled_just_before_the_slot_frees_passes_it_on() -> None:
    limits = BackendLimits(EndpointConfig(name="llm", url="http://x", concurrency=1))
    holder = limits.slot()
    await holder.__aenter__()
    gone = asyncio.create_task(_wait_for_slot(limits))
    kept = asyncio.create_task(_wait_for_slot(limits))
    await until(lambda: limits.waiting == 2)
    gone.cancel()                      # its future is cancelled now; the task sees it later
    await holder.__aexit__(None, None, None)   # the release skips it and hands the slot on
    await kept
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert (limits.in_flight, limits.waiting, limits.free) == (0, 0, 1)
