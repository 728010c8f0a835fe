"""Priority lanes: high work starts first and never waits for a bulk slot; fetching stays bounded."""

from __future__ import annotations

from osmose.bus.lanes import BULK, HIGH, Lanes


def test_high_is_started_before_queued_bulk() -> None:
    lanes: Lanes[str] = Lanes(2)
    lanes.push(BULK, "b1")
    lanes.push(BULK, "b2")
    lanes.push(HIGH, "h1")
    assert lanes.pop_startable() == (HIGH, "h1")
    assert lanes.pop_startable() == (BULK, "b1")
    assert lanes.pop_startable() is None          # two running: the bulk slot is full
    lanes.finished(BULK)
    assert lanes.pop_startable() == (BULK, "b2")


def test_high_does_not_wait_for_running_bulk_work() -> None:
    lanes: Lanes[str] = Lanes(1)
    lanes.push(BULK, "b1")
    assert lanes.pop_startable() == (BULK, "b1")
    lanes.push(HIGH, "h1")
    assert lanes.pop_startable() == (HIGH, "h1")  # premium lane, although the bulk slot is busy
    lanes.push(HIGH, "h2")
    assert lanes.pop_startable() is None          # high is bounded too


def test_fetching_follows_the_lanes() -> None:
    lanes: Lanes[str] = Lanes(2)
    assert lanes.wants(HIGH) and lanes.wants(BULK)
    assert not lanes.wants(BULK, high_waiting_in_kafka=True)   # bulk pauses while high waits in Kafka
    lanes.push(BULK, "b1")
    lanes.push(BULK, "b2")
    assert not lanes.wants(BULK) and lanes.wants(HIGH)          # bulk full: only high is fetched
    lanes.push(HIGH, "h1")
    assert not lanes.wants(BULK)
    lanes.push(HIGH, "h2")
    assert not lanes.wants(HIGH)                                # high full too: everything paused
    assert lanes.queued() == 4 and lanes.outstanding(HIGH) == 2


def test_drop_removes_queued_messages_only() -> None:
    lanes: Lanes[int] = Lanes(1)
    for n in (1, 2, 3):
        lanes.push(BULK, n)
    assert lanes.pop_startable() == (BULK, 1)
    assert lanes.drop(lambda n: n >= 2) == [2, 3]
    assert lanes.queued() == 0 and lanes.running() == 1
