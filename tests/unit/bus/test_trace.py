"""W3C traceparent: parsed strictly, propagated as a child span, generated when absent."""

from __future__ import annotations

from osmose.bus.trace import TraceContext, child_of, from_headers, parse

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_parse_and_render() -> None:
    ctx = parse(VALID)
    assert ctx is not None and ctx.traceparent == VALID
    assert parse(VALID.encode()) == ctx
    assert parse(VALID.upper()) == ctx


def test_invalid_values_are_ignored() -> None:
    for bad in (None, "", "garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"):
        assert parse(bad) is None


def test_child_keeps_the_trace_and_a_missing_parent_starts_one() -> None:
    parent = parse(VALID)
    child = child_of(parent)
    assert child.trace_id == parent.trace_id and child.span_id != parent.span_id
    root = child_of(None)
    assert parse(root.traceparent) == root
    assert child_of(None).trace_id != root.trace_id


def test_from_headers() -> None:
    assert from_headers([("osmose-job", b"x"), ("traceparent", VALID.encode())]) == parse(VALID)
    assert from_headers(None) is None
    assert isinstance(TraceContext.new(), TraceContext)
