"""Hooks of the model backends (:mod:`osmose.models`): GenAI metrics, queue wait, retries, cache.

Labels come from the call (endpoint, task, operation) and from the document being worked on
(:func:`osmose.telemetry.context.current_document`: the tier). The breaker state and the
concurrency in use are read at scrape time (:class:`~osmose.telemetry.collectors.ModelRuntimeCollector`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import REGISTRY

from osmose.telemetry import metrics
from osmose.telemetry.collectors import ModelRuntimeCollector
from osmose.telemetry.context import current_document

if TYPE_CHECKING:
    from osmose.models.runtime import ModelRuntime

__all__ = ["observe_attempt", "observe_cache", "observe_queue_wait", "observe_retry", "observe_tokens",
           "outcome_of", "track_runtime"]

_RUNTIMES = ModelRuntimeCollector()
REGISTRY.register(_RUNTIMES)


def _declare() -> None:
    """Zero series for the stages' tasks, so ratios (cache hits / lookups) have both sides."""
    from osmose.models.usage import TASKS

    for task in TASKS:
        for result in ("hit", "miss"):
            metrics.MODEL_CACHE.labels(task, result)


_declare()


def track_runtime(runtime: ModelRuntime) -> None:
    """Export the runtime's breakers and concurrency while it lives."""
    _RUNTIMES.track(runtime)


def outcome_of(exc: BaseException | None) -> str:
    """``ok``, or the error class as a bounded code (timeout, overloaded, unavailable, rejected, error)."""
    if exc is None:
        return "ok"
    from osmose.models.exceptions import (
        ModelOverloadedError,
        ModelRequestError,
        ModelTimeoutError,
        ModelUnavailableError,
    )

    for kind, name in ((ModelTimeoutError, "timeout"), (ModelOverloadedError, "overloaded"),
                       (ModelRequestError, "rejected"), (ModelUnavailableError, "unavailable")):
        if isinstance(exc, kind):
            return name
    return "error"


def observe_attempt(*, endpoint: str, task: str, seconds: float, exc: BaseException | None) -> None:
    operation = "embeddings" if task == "embedding" else "chat"
    metrics.GEN_AI_DURATION.labels(operation, endpoint, task, current_document().tier,
                                   outcome_of(exc)).observe(seconds)


def observe_queue_wait(*, endpoint: str, task: str, seconds: float) -> None:
    metrics.MODEL_QUEUE_WAIT.labels(endpoint, task, current_document().tier).observe(seconds)


def observe_retry(*, endpoint: str, task: str) -> None:
    metrics.MODEL_RETRIES.labels(endpoint, task).inc()


def observe_cache(*, task: str, hit: bool) -> None:
    metrics.MODEL_CACHE.labels(task, "hit" if hit else "miss").inc()


def observe_tokens(*, operation: str, task: str, input_tokens: int, output_tokens: int) -> None:
    tier = current_document().tier
    if input_tokens:
        metrics.GEN_AI_TOKENS.labels("input", operation, task, tier).observe(input_tokens)
    if output_tokens:
        metrics.GEN_AI_TOKENS.labels("output", operation, task, tier).observe(output_tokens)
