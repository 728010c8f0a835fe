"""Hooks of the stage worker (:mod:`osmose.hosts.service_worker`): one :class:`MessageScope` per message.

It opens the message's CONSUMER span (parented on the producer's context), counts the
message in flight, and once the envelope is known (:meth:`MessageScope.bind`) labels the
work with the document's tier, tenant class and lane (for the model metrics), records the
Kafka wait and puts the ids on the span. The outcome (``ok``, ``failed``, ``skipped``, ``lookahead``)
is counted when the scope closes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from osmose.telemetry import metrics, tracing
from osmose.telemetry.context import DocumentLabels, bind_document
from osmose.telemetry.labels import lane_of, tenant_class_of, tier_label

if TYPE_CHECKING:
    from osmose.bus.consumer import Delivery
    from osmose.v1 import envelope_pb2 as epb

__all__ = ["MessageScope", "declare_stage", "message_scope", "observe_dead_letter", "observe_lookahead", "observe_retry", "observe_stage_time"]


@dataclass
class MessageScope:
    stage: str
    lane: str
    span: object
    outcome: str = "ok"
    _stack: ExitStack = field(default_factory=ExitStack)

    def bind(self, envelope: epb.Envelope, *, produced_ms: int = -1) -> None:
        """The envelope is decoded: label what follows with its document."""
        tier = tier_label(envelope.tier)
        labels = DocumentLabels(tier=tier, tenant_class=tenant_class_of(envelope), lane=lane_of(envelope.priority),
                                stage=self.stage)
        self._stack.enter_context(bind_document(labels))
        tracing.document_attributes(self.span, job_id=envelope.job_id, tenant=envelope.tenant,  # type: ignore[arg-type]
                                    doc_id=envelope.doc_id, stage=self.stage, tier=tier)
        if produced_ms > 0:
            waited = max(0.0, time.time() - produced_ms / 1000)
            metrics.STAGE_KAFKA_WAIT.labels(self.stage, tier, labels.lane).observe(waited)


    def mark_lookahead(self) -> None:
        """The message is a look-ahead (:mod:`osmose.hosts.streaming`): counted with outcome
        ``lookahead``, and its span (in the job's trace) says so."""
        self.outcome = "lookahead"
        span = self.span
        if getattr(span, "is_recording", lambda: False)():
            span.set_attribute("osmose.lookahead", True)  # type: ignore[attr-defined]


@contextmanager
def message_scope(stage: str, group: str, delivery: Delivery) -> Iterator[MessageScope]:
    with tracing.consumer_span(topic=delivery.topic, group=group, partition=delivery.partition,
                               offset=delivery.offset, key=delivery.key, headers=delivery.headers) as span:
        scope = MessageScope(stage=stage, lane=delivery.priority, span=span)
        gauge = metrics.STAGE_IN_FLIGHT.labels(stage, delivery.priority)
        gauge.inc()
        try:
            with scope._stack:
                yield scope
        except BaseException:
            scope.outcome = "failed"
            raise
        finally:
            gauge.dec()
            metrics.STAGE_MESSAGES.labels(stage, delivery.priority, scope.outcome).inc()


def declare_stage(stage: str) -> None:
    """Zero series for a stage's counters (no retry yet is a 0, not an absence)."""
    metrics.STAGE_RETRIES.labels(stage)
    for lane in ("high", "bulk"):
        metrics.STAGE_IN_FLIGHT.labels(stage, lane)


def observe_stage_time(stage: str, *, tier: int, outcome: str, seconds: float) -> None:
    metrics.STAGE_DURATION.labels(stage, tier_label(tier), outcome).observe(seconds)


def observe_lookahead(stage: str, outcome: str) -> None:
    metrics.LOOKAHEAD_ITEMS.labels(stage, outcome).inc()


def observe_retry(stage: str) -> None:
    metrics.STAGE_RETRIES.labels(stage).inc()


def observe_dead_letter(stage: str, reason: str) -> None:
    metrics.DEAD_LETTERS.labels(stage, reason).inc()
