"""W3C trace context (``traceparent``) carried in Kafka headers and gRPC metadata.

Every message a stage publishes carries the trace id of the message it consumed
(or of the Submit call) and a fresh span id, so one document's path through the
six services is one trace. When an OpenTelemetry span is being recorded (see
:mod:`osmose.telemetry.tracing`), :func:`child_of` hands out that span's context instead
of a random span id, so the next hop's span is parented on a span that exists.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

__all__ = ["HEADER", "TraceContext", "child_of", "current", "from_headers", "parse"]

HEADER = "traceparent"
_FORMAT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """Same trace, new span (what a consumer uses for the messages it produces)."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.flags)

    @classmethod
    def new(cls) -> TraceContext:
        return cls(secrets.token_hex(16), secrets.token_hex(8))


def parse(value: str | bytes | None) -> TraceContext | None:
    """A traceparent header, or None when absent or malformed (all-zero ids are invalid)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    match = _FORMAT.match(value.strip().lower())
    if not match or match.group(1) == "ff":
        return None
    _, trace_id, span_id, flags = match.groups()
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return TraceContext(trace_id, span_id, flags)


def from_headers(headers: list[tuple[str, bytes]] | None) -> TraceContext | None:
    for key, value in headers or ():
        if key.lower() == HEADER:
            return parse(value)
    return None


def current() -> TraceContext | None:
    """The OpenTelemetry span being recorded in this context, if any."""
    from opentelemetry import trace

    span = trace.get_current_span()
    if not span.is_recording():
        return None
    context = span.get_span_context()
    return TraceContext(format(context.trace_id, "032x"), format(context.span_id, "016x"),
                        format(int(context.trace_flags), "02x"))


def child_of(parent: TraceContext | None) -> TraceContext:
    """A span continuing `parent`, or the root of a new trace when there is none; the recorded
    OpenTelemetry span of this context when it continues the same trace."""
    active = current()
    if active is not None and (parent is None or active.trace_id == parent.trace_id):
        return active
    return parent.child() if parent else TraceContext.new()
