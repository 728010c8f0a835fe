"""W3C trace context (``traceparent``) carried in Kafka headers and gRPC metadata.

Every message a stage publishes carries the trace id of the message it consumed
(or of the Submit call) and a fresh span id, so one document's path through the
six services is one trace. No tracing SDK here: OpenTelemetry can adopt the same
header later without changing the wire.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

__all__ = ["HEADER", "TraceContext", "child_of", "from_headers", "parse"]

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


def child_of(parent: TraceContext | None) -> TraceContext:
    """A span continuing `parent`, or the root of a new trace when there is none."""
    return parent.child() if parent else TraceContext.new()
