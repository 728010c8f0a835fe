"""The resilience pieces on their own: breaker states, adaptive deadlines, Retry-After, JSON answers, usage."""

from __future__ import annotations

import email.utils
import time

import pytest

from osmose.models import CircuitOpenError, ModelOutputError, parse_json_answer, usage_dict
from osmose.models.breaker import BreakerState, CircuitBreaker
from osmose.models.config import BreakerConfig, TimeoutConfig
from osmose.models.http import parse_retry_after
from osmose.models.timeouts import AdaptiveTimeout
from osmose.models.usage import UsageRecorder, add_to_proto
from osmose.v1 import pipeline_pb2 as ppb
from tests.unit.models.backends import FakeClock


def _breaker(clock: FakeClock, **kw: float) -> CircuitBreaker:
    config = BreakerConfig(**{"window_seconds": 10, "min_calls": 4, "error_rate": 0.5, "open_seconds": 5,
                              "half_open_calls": 1, **kw})
    return CircuitBreaker(config, name="llm", clock=clock)


def test_breaker_opens_on_error_rate_once_enough_calls_were_seen() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.acquire()
        breaker.record(failed=True)
    assert breaker.state is BreakerState.CLOSED  # 3 of 3 failed, but min_calls is 4
    breaker.acquire()
    breaker.record(failed=False)
    assert breaker.state is BreakerState.OPEN  # 3 of 4 >= 50%
    with pytest.raises(CircuitOpenError, match="circuit open"):
        breaker.acquire()


def test_breaker_stays_closed_below_the_error_rate_and_forgets_old_outcomes() -> None:
    clock = FakeClock()
    breaker = _breaker(clock)
    for failed in (True, False, False, False, True):
        breaker.record(failed=failed)
    assert breaker.state is BreakerState.CLOSED  # 2 of 5
    clock.advance(11)  # the window moves on
    for _ in range(3):
        breaker.record(failed=True)
    assert breaker.state is BreakerState.CLOSED  # only 3 calls in the window


def test_breaker_half_opens_after_open_seconds_with_bounded_probes() -> None:
    clock = FakeClock()
    breaker = _breaker(clock, min_calls=1)
    breaker.record(failed=True)
    assert breaker.state is BreakerState.OPEN and not breaker.allows()
    clock.advance(5)
    assert breaker.state is BreakerState.HALF_OPEN and breaker.allows()
    breaker.acquire()  # the one probe
    with pytest.raises(CircuitOpenError):
        breaker.acquire()
    breaker.record(failed=True)  # probe failed: open again
    assert breaker.state is BreakerState.OPEN
    clock.advance(5)
    breaker.acquire()
    breaker.record(failed=False)  # probe succeeded: closed
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot()["times_opened"] == 2


def test_adaptive_timeout_follows_the_latency_percentile_within_bounds() -> None:
    timeout = AdaptiveTimeout(TimeoutConfig(initial=30, min=1, max=20, percentile=95, multiplier=3, samples=10))
    assert timeout.current() == 30
    for _ in range(10):
        timeout.observe(0.1)
    assert timeout.current() == 1  # 3 x 0.1 is below the floor
    for _ in range(10):
        timeout.observe(2.0)
    assert timeout.current() == pytest.approx(6.0)
    for _ in range(200):
        timeout.observe(50.0)
    assert timeout.current() == 20  # ceiling


def test_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("3") == 3
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < parse_retry_after(later) <= 30


SCHEMA = {"type": "object", "required": ["items"], "additionalProperties": False,
          "properties": {"items": {"type": "array", "maxItems": 2,
                                   "items": {"type": "string", "enum": ["a", "b"]}}}}


def test_json_answers_are_repaired_locally_when_possible() -> None:
    assert parse_json_answer('{"items": ["a"]}', SCHEMA) == {"items": ["a"]}
    assert parse_json_answer('Here you go:\n```json\n{"items": ["a", "b",]}\n```', SCHEMA) == {"items": ["a", "b"]}


@pytest.mark.parametrize(("text", "reason"), [
    ('{"items": ["a"', "invalid JSON"),
    ('{"items": ["c"]}', "not one of"),
    ('{"items": ["a", "b", "a"]}', r"\$\.items: .* is too long"),
    ('{"items": [], "extra": 1}', "'extra' was unexpected"),
    ('{}', "'items' is a required property"),
    ("no json here", "no JSON|invalid JSON"),
])
def test_json_answers_that_do_not_fit_say_why(text: str, reason: str) -> None:
    with pytest.raises(ModelOutputError, match=reason):
        parse_json_answer(text, SCHEMA)


def test_json_answers_are_checked_against_every_keyword_of_the_schema() -> None:
    # the hand-written subset validator this replaced ignored keywords it did not know
    schema = {"type": "object", "properties": {"ids": {"type": "array", "uniqueItems": True,
                                                      "items": {"type": "string", "pattern": "^s[0-9]+$"}}}}
    assert parse_json_answer('{"ids": ["s1", "s2"]}', schema) == {"ids": ["s1", "s2"]}
    with pytest.raises(ModelOutputError, match="non-unique"):
        parse_json_answer('{"ids": ["s1", "s1"]}', schema)
    with pytest.raises(ModelOutputError, match="does not match"):
        parse_json_answer('{"ids": ["x1"]}', schema)


def test_usage_object_keeps_its_keys_when_nothing_was_called() -> None:
    empty = usage_dict(ppb.ModelUsage())
    assert empty == {"calls": 0, "cache_hits": 0, "prompt_tokens": 0, "output_tokens": 0, "backend_seconds": 0.0,
                     "retries": 0, "failures": 0, "fallbacks": 0, "by_task": {}}
    recorder = UsageRecorder()
    recorder.task("concept_extraction").calls = 2
    recorder.task("concept_extraction").prompt_tokens = 100
    recorder.task("embedding").cache_hits = 5
    recorder.task("vision_summary")  # nothing happened: left out
    item = ppb.WorkItem()
    add_to_proto(item.model_usage, recorder)
    add_to_proto(item.model_usage, recorder)  # a second stage adds to it
    out = usage_dict(item.model_usage)
    assert (out["calls"], out["cache_hits"], out["prompt_tokens"]) == (4, 10, 200)
    assert sorted(out["by_task"]) == ["concept_extraction", "embedding"]
    assert set(out["by_task"]["embedding"]) == set(empty) - {"by_task"}
