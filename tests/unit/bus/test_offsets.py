"""Commit points: never past a message that is not done, whatever order messages finish in."""

from __future__ import annotations

from osmose.bus.offsets import OffsetTracker

TP = ("t", 0)


def test_commit_point_is_the_lowest_unfinished_offset() -> None:
    tracker = OffsetTracker()
    tracker.assign([TP])
    for offset in (10, 11, 12):
        tracker.add(TP, offset)
    assert tracker.committable() == {TP: 10}
    tracker.start(TP, 11)
    tracker.done(TP, 11)                  # out of order: 10 still holds the point back
    assert tracker.committable() == {TP: 10}
    tracker.start(TP, 10)
    tracker.done(TP, 10)
    assert tracker.committable() == {TP: 12}
    tracker.committed({TP: 12})
    assert tracker.committable() == {}    # nothing moved since
    tracker.done(TP, 12)
    assert tracker.committable() == {TP: 13}


def test_released_messages_keep_the_point_and_revoked_partitions_are_forgotten() -> None:
    tracker = OffsetTracker()
    tracker.assign([TP])
    tracker.add(TP, 5)
    assert tracker.start(TP, 5) and tracker.running() == 1
    tracker.release(TP, 5)                # shutdown handed it back
    assert tracker.running() == 0 and tracker.committable() == {TP: 5}
    tracker.forget([TP])
    assert not tracker.owns(TP) and tracker.committable() == {}
    assert not tracker.start(TP, 5)       # a queued message of a revoked partition never starts
    tracker.done(TP, 5)                   # a late finish is ignored
