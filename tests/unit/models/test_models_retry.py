"""The retry policy on its own (osmose.models.retry): which errors are retried, how long it
waits, and the per-document budget, with a sleep that records the delays instead of waiting."""

from __future__ import annotations

import pytest

from osmose.models.config import RetryConfig
from osmose.models.exceptions import (
    CircuitOpenError,
    ModelOverloadedError,
    ModelRequestError,
    ModelServerError,
    ModelUnavailableError,
)
from osmose.models.retry import RetryBudget, retrying

pytestmark = pytest.mark.anyio


class RecordedSleep:
    """Stands in for asyncio.sleep: the delays the policy asked for, and no waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def _call(config: RetryConfig, failures: list[Exception], *, budget: RetryBudget | None = None
                ) -> tuple[int, RecordedSleep]:
    """Runs one call that raises `failures` in turn, then succeeds; the attempts it took."""
    sleep = RecordedSleep()
    attempts = 0
    async for attempt in retrying(config, budget or RetryBudget(100), sleep=sleep):
        with attempt:
            attempts += 1
            if failures:
                raise failures.pop(0)
    return attempts, sleep


def _overloaded(retry_after: float | None) -> ModelOverloadedError:
    return ModelOverloadedError("429", endpoint="llm", retry_after=retry_after)


async def test_the_wait_is_the_servers_retry_after_not_the_backoff() -> None:
    config = RetryConfig(attempts=3, backoff_initial=0.01, backoff_max=0.04, jitter=0.01, max_retry_after=10)
    attempts, sleep = await _call(config, [_overloaded(0.4), _overloaded(0.4)])
    assert attempts == 3 and sleep.delays == [0.4, 0.4]


async def test_without_retry_after_the_backoff_doubles_up_to_its_cap_plus_jitter() -> None:
    config = RetryConfig(attempts=5, backoff_initial=1, backoff_max=4, jitter=0.5)
    sleep = RecordedSleep()
    with pytest.raises(ModelServerError):
        async for attempt in retrying(config, RetryBudget(100), sleep=sleep):
            with attempt:
                raise ModelServerError("500", endpoint="llm", status=500)
    assert len(sleep.delays) == 4   # 5 attempts, 4 waits
    for delay, base in zip(sleep.delays, [1, 2, 4, 4], strict=True):
        assert base <= delay <= base + 0.5, sleep.delays


async def test_a_retry_after_beyond_the_limit_fails_at_once() -> None:
    config = RetryConfig(attempts=4, max_retry_after=10)
    sleep = RecordedSleep()
    with pytest.raises(ModelOverloadedError):
        async for attempt in retrying(config, RetryBudget(100), sleep=sleep):
            with attempt:
                raise _overloaded(120)
    assert sleep.delays == []


@pytest.mark.parametrize("error", [CircuitOpenError("open", endpoint="llm"),
                                   ModelRequestError("400 bad request"), ValueError("a bug")])
async def test_only_unavailable_servers_are_retried(error: Exception) -> None:
    sleep = RecordedSleep()
    with pytest.raises(type(error)):
        async for attempt in retrying(RetryConfig(attempts=4), RetryBudget(100), sleep=sleep):
            with attempt:
                raise error
    assert sleep.delays == []


async def test_the_document_budget_caps_retries_over_its_calls() -> None:
    config = RetryConfig(attempts=4, backoff_initial=0.5, backoff_max=1, jitter=0)
    budget = RetryBudget(3)
    first, sleep = await _call(config, [ModelUnavailableError("down")] * 2, budget=budget)
    assert first == 3 and sleep.delays == [0.5, 1.0] and budget.left == 1
    second, _ = await _call(config, [ModelUnavailableError("down")] * 1, budget=budget)
    assert second == 2 and budget.left == 0
    with pytest.raises(ModelUnavailableError):   # no retry left for this document
        await _call(config, [ModelUnavailableError("down")], budget=budget)
