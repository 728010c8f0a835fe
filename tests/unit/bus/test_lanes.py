"""Priority lanes: high work starts first and never waits for a bulk slot; fetching stays bounded;
bulk work keeps a guaranteed share under a sustained premium stream."""

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


def test_bulk_gets_its_share_under_a_sustained_premium_stream() -> None:
    """A premium stream that never lets up: high messages always waiting, every slot busy. Bulk
    partitions are fetched again once its share is due, and one start in five goes to bulk."""
    lanes: Lanes[str] = Lanes(2, bulk_every=4)
    running: list[str] = []          # classes of the running messages, oldest first
    started: list[str] = []
    for n in range(100):
        while lanes.outstanding(HIGH) - running.count(HIGH) < 2:   # high always waiting in front
            lanes.push(HIGH, f"h{n}")
        if lanes.wants(BULK, high_waiting_in_kafka=True):          # what the consumer fetches
            lanes.push(BULK, f"b{n}")
        while (start := lanes.pop_startable()) is not None:
            running.append(start[0])
            started.append(start[0])
        lanes.finished(running.pop(0))                               # the oldest message ends
    assert len(started) >= 100
    assert started.count(BULK) >= len(started) // 5 - 1, "".join(p[0] for p in started)
    runs = "".join(p[0] for p in started).split("b")
    assert max(len(run) for run in runs[1:]) == 4                # exactly bulk_every high starts between two bulk


def test_without_premium_work_bulk_takes_every_slot_and_high_still_goes_first() -> None:
    lanes: Lanes[str] = Lanes(2, bulk_every=4)
    for n in range(6):
        lanes.push(BULK, f"b{n}")
    assert [lanes.pop_startable(), lanes.pop_startable()] == [(BULK, "b0"), (BULK, "b1")]
    lanes.finished(BULK)
    lanes.push(HIGH, "h0")
    assert lanes.pop_startable() == (HIGH, "h0")             # the share is not due: high first
